"""An existing interpreter given instead of a built venv (`interpreters` in a sweep config, `--python`): whether it
starts as a Python 3. It is run once in a subprocess, which is why this lives with the environments and not in
planning; the config's check and the CLI's --python check both ask here, so they say the same.
"""
from __future__ import annotations

import functools
import shutil
import subprocess


# The module each environment's framework is imported as: an interpreter named for an environment must have it.
_MODULES = {"torch": "torch", "tensorflow": "tensorflow", "mxnet": "mxnet", "openvino": "openvino",
            "litert": "ai_edge_litert"}


def framework_module(environment: str) -> str | None:
    """The module an interpreter for `environment` must import (onnxruntime-<ep> environments: onnxruntime)."""
    return "onnxruntime" if environment.startswith("onnxruntime") else _MODULES.get(environment)


@functools.lru_cache(maxsize=64)
def interpreter_refusal(value: str, environments: tuple[str, ...] = ()) -> str | None:
    """Why `value` cannot run greenrt's runner for `environments` (not found, not executable, does not start, lacks
    the framework module an environment is named for); None when it can. The modules are looked up, not imported:
    finding them takes milliseconds where importing TensorFlow takes seconds."""
    if not value or "\0" in value:
        return "not a path or a command name"
    try:
        found = shutil.which(value)
    except (OSError, ValueError):
        found = None
    if not found:
        return "not found or not executable"
    modules = sorted({m for m in map(framework_module, environments) if m})
    probe = ("import sys, importlib.util; print(sys.version_info[0]); "
             f"print(' '.join(m for m in {modules!r} if importlib.util.find_spec(m) is None))")
    try:
        done = subprocess.run([found, "-c", probe], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"does not run ({type(exc).__name__}: {exc})"
    said = done.stdout.splitlines()
    if done.returncode != 0 or not said or said[0].strip() != "3":
        error = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return f"does not run as a Python 3 interpreter (exit {done.returncode}: {error})"
    missing = said[1].split() if len(said) > 1 else []
    if missing:
        return f"has no {', '.join(missing)} module (what {', '.join(sorted(environments))} runs on)"
    return None
