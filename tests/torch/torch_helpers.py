"""Helpers shared by the torch tests (a unique module name: tests/host has its own conftest)."""
from __future__ import annotations

from pathlib import Path

from runners.protocol import Budget, RunRequest

ROOT = Path(__file__).resolve().parents[2]
SMALL = Budget(warmup_iterations=1, min_iterations=2)


def make_request(tmp_path: Path, runtime: str = "torch/native/cpu", model: str = "mobilenet_v2", batch_size: int = 1,
                 **kwargs) -> RunRequest:
    kwargs.setdefault("budget", SMALL)
    name = kwargs.pop("run_id", f"{model}-{batch_size}")
    return RunRequest(run_id=name, runtime=runtime, model=model, batch_size=batch_size,
                      result_path=str(tmp_path / f"{name}.result.json"), **kwargs)
