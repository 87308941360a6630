"""ONNX export from TensorFlow (tf2onnx) and the ONNX Runtime adapter on it.  No BERT conversion here: it needs
many GB of RAM (see FINDINGS); its interface is checked on a tiny graph instead."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import tf_helpers  # noqa: F401  (sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads)
from models.export_flow import ExportError, verify_onnx
from models.fidelity import compare_outputs
from models.inputs import make_inputs
from models.registry import get_model
from models.tensorflow_export import export_onnx
from runners.loop import execute
from runners.protocol import ExportRequest, ExportResult, read_json
from tf_helpers import ORT_CPU, make_request, run_cli


@pytest.fixture(scope="module")
def mobilenet_onnx(tmp_path_factory):
    """mobilenet_v2 exported once through `python -m runners export` (the EXPORTERS entry of runners.cli)."""
    tmp = tmp_path_factory.mktemp("onnx")
    request = {"framework": "tensorflow", "model": "mobilenet_v2", "output_path": str(tmp / "mnv2" / "model.onnx"),
               "result_path": str(tmp / "mnv2" / "export.json")}
    proc = run_cli("export", request, tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "mnv2" / "model.onnx", read_json(ExportResult, request["result_path"])


def test_export_has_the_registry_interface_and_records_what_it_wrote(mobilenet_onnx):
    path, result = mobilenet_onnx
    assert result.status == "ok" and result.output_path == str(path)
    assert "tf2onnx" in result.exporter and result.versions["tf2onnx"] == "1.17.0"
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert result.opset == next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-4
    assert sorted(p.name for p in path.parent.iterdir()) == ["export.json", "model.onnx"]  # no .data, no temporaries
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    assert [i.name for i in inputs] == ["pixel_values"] and [o.name for o in model.graph.output] == ["logits"]
    dims = inputs[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [3, 224, 224]  # NCHW, like torch
    assert inputs[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    out_dims = model.graph.output[0].type.tensor_type.shape.dim
    assert out_dims[0].dim_param == "batch" and out_dims[1].dim_value == 1000


def test_onnxruntime_adapter_on_the_export_is_faithful_to_tensorflow(tmp_path, mobilenet_onnx):
    """Same NCHW inputs into both runtimes: the native adapter transposes in prepare(), the ONNX graph inside."""
    path, _ = mobilenet_onnx
    tf_out, ort_out = tmp_path / "tf.npz", tmp_path / "ort.npz"
    # batch 3: neither the verification batch (2) nor 1, so a batch axis frozen at export would fail here
    ref = execute(make_request(tmp_path, batch_size=3, run_id="tf", outputs_path=str(tf_out)))
    got = execute(make_request(tmp_path, runtime=ORT_CPU, batch_size=3, run_id="ort", artifact_path=str(path),
                               outputs_path=str(ort_out), threads=1))
    assert ref.status == "ok", ref.error
    assert got.status == "ok", got.error
    assert got.provider_used == "CPUExecutionProvider" and got.threads == 1
    with np.load(tf_out) as a, np.load(ort_out) as b:
        reference, converted = dict(a), dict(b)
    assert reference["logits"].shape == converted["logits"].shape == (3, 1000)
    report = compare_outputs(reference, converted)
    assert report["faithful"] and report["top1_agreement"] == 1.0, report
    assert got.output_digest["outputs"]["logits"]["shape"] == ref.output_digest["outputs"]["logits"]["shape"]


def test_a_perturbed_weight_is_caught_as_not_faithful(tmp_path, mobilenet_onnx):
    """Perturb ONE initializer of the exported file: fidelity must say no, and the exporter's check must refuse it."""
    path, _ = mobilenet_onnx
    model = onnx.load(str(path))
    target = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)) if t.data_type == 1 else 0)
    weights = numpy_helper.to_array(target)
    rng = np.random.default_rng(0)
    perturbed = (weights + 0.05 * weights.std() * rng.standard_normal(weights.shape)).astype(weights.dtype)
    target.CopyFrom(numpy_helper.from_array(perturbed, target.name))
    bad = tmp_path / "perturbed.onnx"
    onnx.save(model, str(bad))

    spec = get_model("mobilenet_v2")
    inputs = make_inputs(spec, 2, 0)
    good_out, bad_out = tmp_path / "good.npz", tmp_path / "bad.npz"
    for artifact, out in ((path, good_out), (bad, bad_out)):
        result = execute(make_request(tmp_path, runtime=ORT_CPU, batch_size=2, artifact_path=str(artifact),
                                      outputs_path=str(out), run_id=out.stem))
        assert result.status == "ok", result.error
    with np.load(good_out) as g, np.load(bad_out) as b:
        good, perturbed_out = dict(g), dict(b)
    verdict = compare_outputs(good, perturbed_out)
    assert not verdict["faithful"]
    assert verdict["max_abs_error"] > verdict["outputs"][0]["tolerance"]
    # the exporter's own gate, given TensorFlow's reference outputs, refuses the perturbed file
    with pytest.raises(ExportError, match="not faithful"):
        verify_onnx(bad, good, inputs, "TensorFlow")
    assert verify_onnx(path, good, inputs, "TensorFlow")["faithful"]


def test_a_model_onnx_runtime_refuses_fails_the_export_with_its_message(tmp_path):
    """FINDINGS: transformers' TFBertModel exported an Erfc op that ONNX Runtime has no kernel for.  Such a model
    must fail verification with ONNX Runtime's own message, never be cached."""
    node = helper.make_node("Erfc", ["x"], ["y"])
    graph = helper.make_graph([node], "erfc", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])])
    path = tmp_path / "erfc.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]), str(path))
    x = {"x": np.zeros(2, np.float32)}
    with pytest.raises(ExportError) as info:
        verify_onnx(path, {"y": np.ones(2, np.float32)}, x)
    assert "cannot load" in str(info.value) and "Erfc" in str(info.value)


def test_explicit_opset_is_the_one_written(tmp_path):
    out = tmp_path / "o17" / "model.onnx"
    result = export_onnx(ExportRequest(framework="tensorflow", model="mobilenet_v2", output_path=str(out),
                                       result_path=str(tmp_path / "x.json"), opset=17))
    assert result.status == "ok", result.error
    assert result.opset == 17 and result.max_abs_diff < 1e-4 and result.seconds > 0
    assert next(o.version for o in onnx.load(str(out)).opset_import if o.domain in ("", "ai.onnx")) == 17


def test_bad_export_requests_fail_cleanly_and_leave_no_file(tmp_path):
    out = tmp_path / "m.onnx"
    cases = [({"model": "vgg16"}, "bad-request", "vgg16"),
             ({"model": "mobilenet_v2", "exporter": "keras"}, "bad-request", "tf2onnx"),
             ({"model": "mobilenet_v2", "opset": 3}, "bad-request", "opset"),
             ({"model": "mobilenet_v2", "framework": "torch"}, "unsupported", "tensorflow")]
    for kwargs, kind, words in cases:
        kwargs = {"framework": "tensorflow", **kwargs}
        result = export_onnx(ExportRequest(output_path=str(out), result_path="unused", **kwargs))
        assert result.status == "error" and result.error.kind == kind and words in result.error.message, result.error
    assert not list(tmp_path.iterdir())
