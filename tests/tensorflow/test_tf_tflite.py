"""TFLite conversion from TensorFlow (tf.lite.TFLiteConverter), for LiteRT, and its verification in the TFLite
interpreter.  No BERT here (memory, see FINDINGS); MobileNetV2 converts in about 5 s."""
from __future__ import annotations

import numpy as np
import pytest

import tf_helpers  # noqa: F401  (sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads)
from models.export_flow import ExportError, run_export, verify_tflite
from models.inputs import make_inputs
from models.registry import get_model
from models.tensorflow_export import TensorFlowLiteExporter, export_tflite
from models.tensorflow_models import build_tensorflow_model
from runners.adapters.litert_interpreter import TfliteModel, interpreter_class
from runners.protocol import ExportRequest, ExportResult, read_json
from tf_helpers import run_cli


@pytest.fixture(scope="module")
def mobilenet_tflite(tmp_path_factory):
    """mobilenet_v2 converted once through `python -m runners export` with target "tflite" (runners.cli's table)."""
    tmp = tmp_path_factory.mktemp("tflite")
    request = {"framework": "tensorflow", "model": "mobilenet_v2", "target": "tflite",
               "output_path": str(tmp / "mnv2" / "model.tflite"), "result_path": str(tmp / "mnv2" / "export.json")}
    proc = run_cli("export", request, tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "mnv2" / "model.tflite", read_json(ExportResult, request["result_path"])


@pytest.fixture(scope="module")
def tensorflow_reference():
    """The Keras model's own outputs on the export flow's verification inputs (seed 0, batch 2), NHWC."""
    spec = get_model("mobilenet_v2")
    inputs = make_inputs(spec, 2, 0)
    model = build_tensorflow_model("mobilenet_v2")
    logits = model(np.transpose(inputs["pixel_values"], (0, 2, 3, 1)), training=False).numpy()
    return inputs, {"logits": logits}


def test_the_conversion_is_verified_and_has_the_registry_interface(mobilenet_tflite):
    path, result = mobilenet_tflite
    assert result.status == "ok", result.error
    assert result.target == "tflite" and result.opset is None and result.output_path == str(path)
    assert "TFLiteConverter" in result.exporter and result.versions["tensorflow"] == "2.21.0"
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-4
    assert sorted(p.name for p in path.parent.iterdir()) == ["export.json", "model.tflite"]  # no temporaries
    assert path.stat().st_size > 10e6  # the 3.5 M float32 weights are in the file, not left as variables
    cls, _ = interpreter_class()
    model = TfliteModel(cls, str(path), None)
    assert list(model.inputs) == ["pixel_values"] and list(model.outputs) == ["logits"]
    assert list(model.inputs["pixel_values"]["shape_signature"]) == [-1, 224, 224, 3]  # NHWC, batch dynamic
    assert list(model.outputs["logits"]["shape_signature"]) == [-1, 1000]


def test_the_file_runs_at_another_batch_and_matches_tensorflow(mobilenet_tflite, tensorflow_reference):
    path, _ = mobilenet_tflite
    inputs, reference = tensorflow_reference
    cls, _ = interpreter_class()
    model = TfliteModel(cls, str(path), 1)
    model.bind({"pixel_values": inputs["pixel_values"][:1]})  # batch 1: the verification ran batch 2
    model.invoke()
    got = model.results(["logits"])["logits"]
    assert got.shape == (1, 1000)
    np.testing.assert_allclose(got, reference["logits"][:1], atol=1e-4, rtol=0)
    assert model.delegation()["delegate_partitions"] >= 1  # XNNPACK took the graph


def _tampered_copy(path, tmp_path, scale: float):
    """The .tflite file with its largest weight buffer scaled (the flatbuffer rewritten by TensorFlow's own tools)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    buffer = max(model.buffers, key=lambda b: 0 if b.data is None else len(b.data))
    weights = np.frombuffer(bytes(buffer.data), dtype=np.float32) * np.float32(scale)
    buffer.data = np.frombuffer(weights.tobytes(), dtype=np.uint8)
    out = tmp_path / "tampered.tflite"
    flatbuffer_utils.write_model(model, str(out))
    return out


def test_a_tampered_weight_buffer_is_caught_by_the_verification(mobilenet_tflite, tensorflow_reference, tmp_path):
    path, _ = mobilenet_tflite
    inputs, reference = tensorflow_reference
    assert verify_tflite(path, reference, inputs, "TensorFlow")["faithful"]  # the untouched file passes
    untouched = _tampered_copy(path, tmp_path, 1.0)  # rewritten, not changed: still faithful
    assert verify_tflite(untouched, reference, inputs, "TensorFlow")["faithful"]
    tampered = _tampered_copy(path, tmp_path, 1.05)
    with pytest.raises(ExportError, match="not faithful to TensorFlow in the TFLite interpreter: logits"):
        verify_tflite(tampered, reference, inputs, "TensorFlow")


class _PerturbingExporter(TensorFlowLiteExporter):
    """Converts a model whose first kernel was changed after the reference outputs were taken: what a converter
    that corrupts a weight would hand over."""

    def convert(self, model, spec, options, inputs, reference, opset, exporter, workdir):
        kernel = next(v for v in model.weights if "kernel" in v.path)
        kernel.assign(kernel.numpy() * 1.1)
        return super().convert(model, spec, options, inputs, reference, opset, exporter, workdir)


def test_a_corrupted_conversion_fails_the_export_and_leaves_no_file(tmp_path):
    out = tmp_path / "model.tflite"
    request = ExportRequest(framework="tensorflow", model="mobilenet_v2", target="tflite", output_path=str(out),
                            result_path=str(tmp_path / "export.json"))
    result = run_export(request, _PerturbingExporter())
    assert result.status == "error" and result.error.kind == "export"
    assert "not faithful to TensorFlow in the TFLite interpreter" in result.error.message
    assert list(tmp_path.iterdir()) == []  # nothing half-verified is left to be taken from the cache


def test_an_opset_or_another_target_is_refused_before_anything_is_built(tmp_path):
    base = dict(framework="tensorflow", model="mobilenet_v2", output_path=str(tmp_path / "m.tflite"),
                result_path=str(tmp_path / "e.json"))
    with_opset = export_tflite(ExportRequest(**base, target="tflite", opset=17))
    assert with_opset.status == "error" and with_opset.error.kind == "bad-request"
    assert "a TFLite conversion takes none" in with_opset.error.message
    wrong_target = export_tflite(ExportRequest(**base, target="onnx"))
    assert wrong_target.status == "error" and wrong_target.error.kind == "unsupported"
    assert "converts to tflite, not 'onnx'" in wrong_target.error.message


def test_the_cli_names_the_exporters_for_an_unknown_target(tmp_path):
    request = {"framework": "tensorflow", "model": "mobilenet_v2", "target": "coreml",
               "output_path": str(tmp_path / "m.mlmodel"), "result_path": str(tmp_path / "e.json")}
    proc = run_cli("export", request, tmp_path)
    assert proc.returncode == 1
    result = read_json(ExportResult, tmp_path / "e.json")
    assert result.error.kind == "unsupported" and "no coreml exporter for framework 'tensorflow'" in result.error.message
    assert "tensorflow -> tflite" in result.error.message and "tensorflow -> onnx" in result.error.message
