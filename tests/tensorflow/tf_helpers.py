"""Helpers shared by the TensorFlow tests, which run INSIDE the tensorflow environment:

    .cache/envs/tensorflow/bin/python -m pytest tests/tensorflow -q

A uniquely named module (not conftest.py: tests/torch and tests/host have their own).  pytest puts this folder on
sys.path, and the repository root (`runners`, `models`) is on it by pyproject's pytest `pythonpath`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from runners.protocol import Budget, RunRequest  # noqa: E402  (after TF_CPP_MIN_LOG_LEVEL)

SMALL = Budget(warmup_iterations=1, min_iterations=2)
TF_CPU = "tensorflow/native/cpu"
ORT_CPU = "onnxruntime/onnx-from-tensorflow/cpu"


def make_request(tmp_path: Path, runtime: str = TF_CPU, model: str = "mobilenet_v2", batch_size: int = 1,
                 **kwargs) -> RunRequest:
    kwargs.setdefault("budget", SMALL)
    name = kwargs.pop("run_id", f"{model}-{batch_size}")
    return RunRequest(run_id=name, runtime=runtime, model=model, batch_size=batch_size,
                      result_path=str(tmp_path / f"{name}.result.json"), **kwargs)


def run_cli(command: str, request: dict, tmp_path: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """`python -m runners <command> --request FILE` in a fresh interpreter of this environment, from the repo root."""
    path = tmp_path / f"{command}-request.json"
    path.write_text(json.dumps(request))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "runners", command, "--request", str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
