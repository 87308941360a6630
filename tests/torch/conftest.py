"""Tests that run INSIDE the torch environment: `$(greenrt env python torch) -m pytest tests/torch`."""
from __future__ import annotations

import pytest

from runners.protocol import ExportRequest


@pytest.fixture(scope="session")
def mobilenet_onnx(tmp_path_factory):
    """mobilenet_v2 exported once with the default exporter: (path, ExportResult)."""
    from models.torch_export import export_onnx

    out = tmp_path_factory.mktemp("onnx") / "mobilenet_v2" / "model.onnx"
    result = export_onnx(ExportRequest(framework="torch", model="mobilenet_v2", output_path=str(out),
                                       result_path=str(out.with_suffix(".json"))))
    assert result.status == "ok", result.error
    return out, result
