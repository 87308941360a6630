"""ONNX export from MXNet, and ONNX Runtime (runners.adapters.onnxruntime_session) on the exported file."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from mx_helpers import exported_mobilenet, make_request
from models.export_flow import ExportError, verify_onnx
from models.fidelity import compare_outputs
from models.mxnet_export import export_onnx
from runners.loop import execute
from runners.protocol import ExportRequest, Weights

ORT_CPU = "onnxruntime/onnx-from-mxnet/cpu"


def test_export_writes_registry_names_without_weights_among_the_inputs():
    path, result = exported_mobilenet()
    assert result.status == "ok" and result.output_path == str(path)
    assert result.versions["mxnet"] and result.versions["onnxruntime"] and "mxnet.onnx.export_model" in result.exporter
    model = onnx.load(str(path))
    assert result.opset == 13 == next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    initializers = {t.name for t in model.graph.initializer}
    assert len(initializers) > 100
    assert [i.name for i in model.graph.input] == ["pixel_values"]  # no weight is a graph input any more
    assert [o.name for o in model.graph.output] == ["logits"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, 224, 224]
    assert [d.dim_param or d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim] == ["batch", 1000]
    assert 0 <= result.max_abs_diff < 1e-4
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_onnxruntime_reproduces_mxnet(tmp_path):
    path, _ = exported_mobilenet()
    mx_out, ort_out = tmp_path / "mx.npz", tmp_path / "ort.npz"
    # batch 3: neither the export's example batch (2) nor 1, so a batch axis frozen at export time fails here
    ref = execute(make_request(tmp_path, batch_size=3, run_id="mx", outputs_path=str(mx_out)))
    got = execute(make_request(tmp_path, runtime=ORT_CPU, batch_size=3, run_id="ort", artifact_path=str(path),
                               outputs_path=str(ort_out), threads=1))
    assert ref.status == "ok", ref.error
    assert got.status == "ok", got.error
    assert got.provider_used == "CPUExecutionProvider"
    with np.load(mx_out) as a, np.load(ort_out) as b:
        report = compare_outputs({"logits": a["logits"]}, {"logits": b["logits"]})
    assert report["faithful"], report
    assert report["top1_agreement"] == 1.0 and report["min_cosine_similarity"] > 0.99999


def test_a_perturbed_initializer_is_not_faithful(tmp_path):
    path, _ = exported_mobilenet()
    model = onnx.load(str(path))
    # the first convolution's weight: every later activation depends on it
    first_conv = next(n for n in model.graph.node if n.op_type == "Conv")
    index = next(i for i, t in enumerate(model.graph.initializer) if t.name == first_conv.input[1])
    weight = numpy_helper.to_array(model.graph.initializer[index]).copy()
    weight.flat[0] += 1.0
    model.graph.initializer[index].CopyFrom(numpy_helper.from_array(weight, model.graph.initializer[index].name))
    perturbed = tmp_path / "perturbed.onnx"
    onnx.save(model, str(perturbed))

    outs = {}
    for name, artifact in (("original", path), ("perturbed", perturbed)):
        npz = tmp_path / f"{name}.npz"
        result = execute(make_request(tmp_path, runtime=ORT_CPU, run_id=name, batch_size=2, artifact_path=str(artifact),
                                      outputs_path=str(npz)))
        assert result.status == "ok", result.error
        with np.load(npz) as f:
            outs[name] = {"logits": f["logits"]}
    report = compare_outputs(outs["original"], outs["perturbed"])
    assert not report["faithful"] and report["max_abs_error"] > report["outputs"][0]["tolerance"]
    # ... and the exporter's own check refuses such a file
    with pytest.raises(ExportError, match="not faithful to MXNet"):
        verify_onnx(perturbed, outs["original"], _inputs(2), "MXNet")


def _inputs(batch):
    from models.inputs import make_inputs
    from models.registry import get_model

    return make_inputs(get_model("mobilenet_v2"), batch, 0)


@pytest.mark.parametrize("kwargs, kind, words", [
    ({"model": "mobilenet_v2", "opset": 18}, "bad-request", "valid: 12, 13"),
    ({"model": "mobilenet_v2", "exporter": "tf2onnx"}, "bad-request", "mx2onnx"),
    ({"model": "vgg16"}, "bad-request", "unknown model"),
    ({"model": "mobilenet_v2", "framework": "torch"}, "unsupported", "mxnet"),
])
def test_requests_the_exporter_cannot_serve_fail_cleanly_and_leave_no_file(tmp_path, kwargs, kind, words):
    out = tmp_path / "m.onnx"
    request = {"framework": "mxnet", "output_path": str(out), "result_path": "unused", **kwargs}
    result = export_onnx(ExportRequest(**request))
    assert result.status == "error" and result.error.kind == kind and words in result.error.message
    assert not list(tmp_path.iterdir())


def test_an_unusable_weights_file_is_a_load_error(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"not MXNet")
    result = export_onnx(ExportRequest(framework="mxnet", model="mobilenet_v2", output_path=str(tmp_path / "m.onnx"),
                                       result_path="unused", weights=Weights(kind="file", path=str(tmp_path / "x.pt"))))
    assert result.status == "error" and result.error.kind == "load" and ".params" in result.error.message
    assert not (tmp_path / "m.onnx").exists()
