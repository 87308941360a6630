"""An existing interpreter given instead of a built venv (`interpreters` in a sweep config, `--python`): whether it
starts as a Python 3. It is run once in a subprocess, which is why this lives with the environments and not in
planning; the config's check and the CLI's --python check both ask here, so they say the same.
"""
from __future__ import annotations

import functools
import shutil
import subprocess


@functools.lru_cache(maxsize=64)
def interpreter_refusal(value: str) -> str | None:
    """Why `value` cannot run greenrt's runner (not found, not executable, does not start); None when it runs."""
    if not value or "\0" in value:
        return "not a path or a command name"
    try:
        found = shutil.which(value)
    except (OSError, ValueError):
        found = None
    if not found:
        return "not found or not executable"
    try:
        done = subprocess.run([found, "-c", "import sys; print(sys.version_info[0])"], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"does not run ({type(exc).__name__}: {exc})"
    if done.returncode != 0 or done.stdout.strip() != "3":
        said = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return f"does not run as a Python 3 interpreter (exit {done.returncode}: {said})"
    return None
