"""Helpers shared by the MXNet tests, which run INSIDE the mxnet environment:

    .cache/envs/mxnet/bin/python -m pip install pytest==9.2.0 pytest-timeout==2.4.0
    .cache/envs/mxnet/bin/python -m pytest tests/mxnet -q

(a unique module name: tests/host and tests/torch have helpers of their own).
"""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

from runners.protocol import Budget, ExportRequest, ExportResult, RunRequest

SMALL = Budget(warmup_iterations=1, min_iterations=2)


def make_request(tmp_path: Path, runtime: str = "mxnet/native/cpu", model: str = "mobilenet_v2", batch_size: int = 1,
                 **kwargs) -> RunRequest:
    kwargs.setdefault("budget", SMALL)
    name = kwargs.pop("run_id", f"{model}-{batch_size}")
    return RunRequest(run_id=name, runtime=runtime, model=model, batch_size=batch_size,
                      result_path=str(tmp_path / f"{name}.result.json"), **kwargs)


@functools.lru_cache(maxsize=None)
def exported_mobilenet() -> tuple[Path, ExportResult]:
    """mobilenet_v2 exported once per test session (seed-0 random weights): (path, ExportResult)."""
    from models.mxnet_export import export_onnx

    workdir = Path(tempfile.mkdtemp(prefix="greenrt-mx-tests-"))
    atexit.register(shutil.rmtree, workdir, True)
    out = workdir / "mobilenet_v2" / "model.onnx"
    result = export_onnx(ExportRequest(framework="mxnet", model="mobilenet_v2", output_path=str(out),
                                       result_path=str(out.with_suffix(".json"))))
    assert result.status == "ok", result.error
    return out, result
