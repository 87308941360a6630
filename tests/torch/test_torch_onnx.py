"""ONNX export from torch and the ONNX Runtime adapter on it."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

from torch_helpers import ROOT, make_request
from models.export_flow import run_export
from models.torch_export import TorchExporter, export_onnx
from runners.loop import execute
from runners.protocol import Budget, ExportRequest, ExportResult, read_json

ORT_CPU = "onnxruntime/onnx-from-torch/cpu"


def test_export_records_the_opset_written_and_matches_torch(mobilenet_onnx):
    path, result = mobilenet_onnx
    assert result.status == "ok" and result.output_path == str(path)
    model = onnx.load(str(path))  # self-contained: no side .onnx.data file to lose
    assert not list(path.parent.glob("*.data"))
    assert result.opset == next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    assert result.exporter and "torch" in result.versions and result.max_abs_diff < 1e-4
    assert [i.name for i in model.graph.input] == ["pixel_values"]
    assert [o.name for o in model.graph.output] == ["logits"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_onnxruntime_adapter_matches_torch(tmp_path, mobilenet_onnx):
    path, _ = mobilenet_onnx
    torch_out, ort_out = tmp_path / "torch.npz", tmp_path / "ort.npz"
    # batch 3: neither the export example (2) nor 1, so a batch axis frozen at export time would fail here
    ref = execute(make_request(tmp_path, batch_size=3, run_id="torch", outputs_path=str(torch_out)))
    got = execute(make_request(tmp_path, runtime=ORT_CPU, batch_size=3, run_id="ort", artifact_path=str(path),
                               outputs_path=str(ort_out), threads=1))
    assert ref.status == "ok", ref.error
    assert got.status == "ok", got.error
    assert got.provider_used == "CPUExecutionProvider" and got.threads == 1 and "onnxruntime" in got.versions
    with np.load(torch_out) as a, np.load(ort_out) as b:
        assert a["logits"].shape == b["logits"].shape == (3, 1000)
        np.testing.assert_allclose(b["logits"], a["logits"], atol=1e-4, rtol=0)
    assert got.output_digest["outputs"]["logits"]["shape"] == [3, 1000]


@pytest.mark.parametrize("provider, ep", [("cuda", "CUDAExecutionProvider"), ("tensorrt", "TensorrtExecutionProvider")])
def test_gpu_provider_on_a_cpu_host_is_unsupported_not_a_cpu_measurement(tmp_path, mobilenet_onnx, provider, ep):
    path, _ = mobilenet_onnx
    result = execute(make_request(tmp_path, runtime=f"onnxruntime/onnx-from-torch/{provider}",
                                  artifact_path=str(path)))
    assert result.status == "error" and result.error.kind == "unsupported"
    assert ep in result.error.message and "CPUExecutionProvider" in result.error.message  # names what is available
    assert result.iterations == 0 and result.latencies_ns == [] and result.provider_used is None


def test_silent_fallback_to_the_cpu_is_refused(tmp_path, mobilenet_onnx, monkeypatch):
    """A build that lists CUDA but cannot enable it falls back to the CPU: that must not be measured."""
    import onnxruntime

    path, _ = mobilenet_onnx
    available = onnxruntime.get_available_providers()
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", *available])
    result = execute(make_request(tmp_path, runtime="onnxruntime/onnx-from-torch/cuda", artifact_path=str(path)))
    assert result.status == "error" and result.error.kind == "unsupported"
    assert "fallback" in result.error.message and result.latencies_ns == []


def test_missing_artifact_path_is_a_bad_request(tmp_path):
    result = execute(make_request(tmp_path, runtime=ORT_CPU))
    assert result.status == "error" and result.error.kind == "bad-request" and "artifact_path" in result.error.message


def test_dynamo_exporter_option_also_gives_a_matching_model(tmp_path):
    out = tmp_path / "dynamo" / "model.onnx"
    result = export_onnx(ExportRequest(framework="torch", model="mobilenet_v2", output_path=str(out),
                                       result_path=str(tmp_path / "x.json"), exporter="dynamo", opset=18))
    assert result.status == "ok", result.error
    assert "dynamo=True" in result.exporter and result.opset == 18 and result.max_abs_diff < 1e-4
    assert out.is_file() and not list(out.parent.glob("*.data"))


def test_unknown_exporter_or_model_is_a_bad_request_and_leaves_no_file(tmp_path):
    out = tmp_path / "m.onnx"
    for kwargs in ({"model": "mobilenet_v2", "exporter": "tf2onnx"}, {"model": "vgg16"}):
        result = export_onnx(ExportRequest(framework="torch", output_path=str(out), result_path="unused", **kwargs))
        assert result.status == "error" and result.error.kind == "bad-request"
    assert "torchscript" in export_onnx(ExportRequest(framework="torch", model="mobilenet_v2", output_path=str(out),
                                                      result_path="unused", exporter="x")).error.message
    assert not out.exists() and not list(tmp_path.iterdir())


def test_export_cli_writes_the_result(tmp_path):
    request = {"framework": "torch", "model": "mobilenet_v2", "output_path": str(tmp_path / "a" / "model.onnx"),
               "result_path": str(tmp_path / "a" / "export.json")}
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    proc = subprocess.run([sys.executable, "-m", "runners", "export", "--request", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = read_json(ExportResult, request["result_path"])
    assert result.status == "ok" and result.opset and (tmp_path / "a" / "model.onnx").is_file()


def test_ort_run_records_budget_and_window(tmp_path, mobilenet_onnx):
    path, _ = mobilenet_onnx
    result = execute(make_request(tmp_path, runtime=ORT_CPU, artifact_path=str(path),
                                  budget=Budget(warmup_iterations=2, min_iterations=5)))
    assert result.status == "ok" and result.iterations == 5 and result.warmup_iterations == 2
    assert sum(result.latencies_ns) <= result.window_end_ns - result.window_start_ns


class _BentExporter(TorchExporter):
    """The torch exporter with one hook bent, to see what the shared flow (models.export_flow) makes of it."""

    def __init__(self, bend):
        self.bend = bend

    def reference(self, model, spec, options, inputs):
        reference = super().reference(model, spec, options, inputs)
        return {k: v * 1.01 for k, v in reference.items()} if self.bend == "reference" else reference

    def convert(self, model, spec, options, inputs, reference, opset, exporter, workdir):
        proto = super().convert(model, spec, options, inputs, reference, opset, exporter, workdir)
        if self.bend == "opset":
            next(o for o in proto.opset_import if o.domain in ("", "ai.onnx")).version = opset + 1
        return proto


@pytest.mark.parametrize("bend, words", [("reference", "not faithful to torch"), ("opset", "not the requested 17")])
def test_an_unfaithful_or_mislabelled_conversion_fails_the_export_and_leaves_no_file(tmp_path, bend, words):
    """One criterion for every framework: models.fidelity.compare_outputs against the source's own outputs."""
    out = tmp_path / "m.onnx"
    result = run_export(ExportRequest(framework="torch", model="mobilenet_v2", output_path=str(out),
                                      result_path="unused", opset=17), _BentExporter(bend))
    assert result.status == "error" and result.error.kind == "export" and words in result.error.message, result.error
    assert result.opset == (17 if bend == "reference" else 18) and result.seconds > 0
    assert not list(tmp_path.iterdir())  # no temporary file, no work folder
