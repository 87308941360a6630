"""Helpers of the LiteRT tests, which run INSIDE the litert environment:

    .cache/envs/litert/bin/python -m pytest tests/litert -q

The litert environment has no TensorFlow, and the repository holds no binary model: the .tflite file and the
TensorFlow reference outputs are made by the tensorflow environment's own runner (`python -m runners export` /
`run`), started from here.  Its interpreter is $GREENRT_TENSORFLOW_PYTHON, else the tensorflow venv under the cache
($GREENRT_CACHE, else .cache/), which `make test-litert` builds first (TEST_ENVS).
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LITERT_CPU = "litert/tflite-from-tensorflow/cpu"


def tensorflow_python() -> Path:
    configured = os.environ.get("GREENRT_TENSORFLOW_PYTHON")
    if configured:
        return Path(configured)
    return Path(os.environ.get("GREENRT_CACHE", ROOT / ".cache")) / "envs" / "tensorflow" / "bin" / "python"


def runner(python: Path | str, command: str, request: dict, folder: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m runners <command> --request FILE` with `python`, from the repository root."""
    path = folder / f"{command}-{request.get('run_id', request.get('model'))}.request.json"
    path.write_text(json.dumps(request))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([str(python), "-m", "runners", command, "--request", str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
