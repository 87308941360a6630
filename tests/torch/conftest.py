"""Tests that run INSIDE the torch environment: `$(greenrt env python torch) -m pytest tests/torch`."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
for path in (str(_HERE.parents[1]), str(_HERE)):  # the repo root (runners, models) and torch_helpers
    if path not in sys.path:
        sys.path.insert(0, path)

from runners.protocol import ExportRequest  # noqa: E402


@pytest.fixture(scope="session")
def mobilenet_onnx(tmp_path_factory):
    """mobilenet_v2 exported once with the default exporter: (path, ExportResult)."""
    from models.torch_export import export_onnx

    out = tmp_path_factory.mktemp("onnx") / "mobilenet_v2" / "model.onnx"
    result = export_onnx(ExportRequest(framework="torch", model="mobilenet_v2", output_path=str(out),
                                       result_path=str(out.with_suffix(".json"))))
    assert result.status == "ok", result.error
    return out, result
