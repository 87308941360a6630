"""INT8 quantization (models.quantize) of small ONNX models built here with onnx's helper API, in a real ONNX Runtime.

Runs in the torch environment, which holds the same onnxruntime and onnx pins as the onnxruntime environment the
sweep quantizes in (images/torch and images/onnxruntime requirements).
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from models.fidelity import compare_outputs
from models.inputs import make_inputs
from models.quantize import DYNAMIC, STATIC_QDQ, read_quantization, run_quantize, settings_for
from models.registry import get_model
from runners.protocol import QuantizeRequest

CLASSES = 10


def _tiny_classifier(path, batch: int | str = "batch") -> None:
    """pixel_values [N,3,224,224] -> Conv(8, 3x3, stride 4) -> Relu -> GlobalAveragePool -> Flatten -> Gemm(10):
    the registry's image input, so that calibration reads models.inputs like the real models'."""
    rng = np.random.default_rng(7)
    conv_w = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3, "conv_w")
    conv_b = numpy_helper.from_array(rng.standard_normal(8).astype(np.float32) * 0.1, "conv_b")
    fc_w = numpy_helper.from_array(rng.standard_normal((CLASSES, 8)).astype(np.float32), "fc_w")
    fc_b = numpy_helper.from_array(rng.standard_normal(CLASSES).astype(np.float32) * 0.1, "fc_b")
    nodes = [helper.make_node("Conv", ["pixel_values", "conv_w", "conv_b"], ["c"], strides=[4, 4], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]), helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], transB=1)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT,
                                                                            [batch, 3, 224, 224])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, CLASSES])],
                              [conv_w, conv_b, fc_w, fc_b])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _tiny_encoder(path) -> None:
    """x [N,64] -> MatMul(64x64) -> Add -> Relu -> MatMul(64x32): what dynamic quantization turns into integer ops."""
    rng = np.random.default_rng(3)
    w1 = numpy_helper.from_array(rng.standard_normal((64, 64)).astype(np.float32) * 0.2, "w1")
    b1 = numpy_helper.from_array(rng.standard_normal(64).astype(np.float32) * 0.1, "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((64, 32)).astype(np.float32) * 0.2, "w2")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Add", ["h", "b1"], ["a"]),
             helper.make_node("Relu", ["a"], ["r"]), helper.make_node("MatMul", ["r", "w2"], ["last_hidden_state"])]
    graph = helper.make_graph(nodes, "enc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 64])],
                              [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["n", 32])],
                              [w1, b1, w2])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _request(tmp_path, source, model: str, name: str = "int8", **overrides) -> QuantizeRequest:
    fields = {**settings_for(model).to_request_fields(), **overrides}
    return QuantizeRequest(model=model, source_path=str(source), output_path=str(tmp_path / name / "model.onnx"),
                           result_path=str(tmp_path / name / "quantize.json"), **fields)


def _run(path, feed: dict[str, np.ndarray]) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)[0]


@pytest.fixture()
def classifier(tmp_path):
    path = tmp_path / "fp32.onnx"
    _tiny_classifier(path)
    return path


def test_static_qdq_is_calibrated_on_the_recorded_seeded_set_and_stays_close(tmp_path, classifier):
    request = _request(tmp_path, classifier, "mobilenet_v2", calibration_size=6)
    result = run_quantize(request)
    assert result.status == "ok", result.error
    facts = result.quantization
    assert facts["method"] == STATIC_QDQ and facts["format"] == "QDQ" and facts["per_channel"] is True
    assert facts["calibration"]["seed"] == request.calibration_seed and facts["calibration"]["size"] == 6
    assert facts["calibration"]["batches_seen"] == 6 and facts["calibration"]["method"] == "MinMax"
    assert {"Conv", "Gemm"} <= set(facts["quantized_op_types"])
    assert facts["quantize_nodes"] > 0 and facts["dequantize_nodes"] > 0
    assert read_quantization(result.output_path) == {k: v for k, v in facts.items()
                                                     if k not in ("bytes", "source_bytes")}
    assert read_quantization(classifier) is None  # an fp32 model carries no quantization facts
    # The quantized graph really computes in int8 (QDQ around the ops) and stays near the fp32 outputs.
    ops = {n.op_type for n in onnx.load(result.output_path).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    feed = {"pixel_values": make_inputs(get_model("mobilenet_v2"), 4, 0)["pixel_values"]}
    fp32, int8 = _run(classifier, feed), _run(result.output_path, feed)
    assert not np.array_equal(fp32, int8)
    report = compare_outputs({"logits": fp32}, {"logits": int8}, precision="int8")
    assert report["criterion"] == "quantized" and report["faithful"] is None
    assert report["min_cosine_similarity"] > 0.99, report["verdict"]


def test_the_calibration_seed_decides_the_scales(tmp_path, classifier):
    """Same seed, same file; another seed, other ranges: the calibration set is what the facts say it is."""
    def scales(name: str, seed: int) -> bytes:
        result = run_quantize(_request(tmp_path, classifier, "mobilenet_v2", name, calibration_size=2,
                                       calibration_seed=seed))
        assert result.status == "ok", result.error
        model = onnx.load(result.output_path)
        return b"".join(t.raw_data or np.asarray(numpy_helper.to_array(t)).tobytes()
                        for t in model.graph.initializer if "scale" in t.name)

    assert scales("a", 11) == scales("b", 11)
    assert scales("a", 11) != scales("c", 12)


def test_a_fixed_batch_graph_is_calibrated_in_its_batch(tmp_path):
    source = tmp_path / "fixed.onnx"
    _tiny_classifier(source, batch=2)
    result = run_quantize(_request(tmp_path, source, "resnet50", calibration_size=5))
    assert result.status == "ok", result.error
    # 5 rows in batches of 2: two whole batches; the graph cannot take the last row alone.
    assert result.quantization["calibration"]["batch"] == 2
    assert result.quantization["calibration"]["batches_seen"] == 2


def test_dynamic_quantization_needs_no_calibration(tmp_path):
    source = tmp_path / "enc.onnx"
    _tiny_encoder(source)
    request = _request(tmp_path, source, "bert-base-uncased")
    assert request.method == DYNAMIC
    result = run_quantize(request)
    assert result.status == "ok", result.error
    assert result.quantization["calibration"] is None
    assert set(result.quantization["quantized_op_types"]) & {"MatMulInteger", "DynamicQuantizeMatMul"}
    x = np.random.default_rng(0).standard_normal((3, 64)).astype(np.float32)
    report = compare_outputs({"last_hidden_state": _run(source, {"x": x})},
                             {"last_hidden_state": _run(result.output_path, {"x": x})}, precision="int8")
    assert report["top1_agreement"] is None and report["acceptable"], report["verdict"]


@pytest.mark.parametrize("change, words", [
    ({"method": "static"}, "method 'static' is not one of static-qdq, dynamic"),
    ({"weight_type": "int8"}, "weight_type 'int8' is not one of QInt8, QUInt8"),
    ({"calibration_size": 0}, "calibration_size must be a positive integer"),
])
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, classifier, change, words):
    request = _request(tmp_path, classifier, "mobilenet_v2", **change)
    result = run_quantize(request)
    assert result.status == "error" and result.error.kind == "bad-request" and words in result.error.message
    assert not (tmp_path / "int8").exists()


def test_onnx_runtime_measures_int8_only_on_a_quantized_file_and_reports_its_facts(tmp_path, classifier):
    from runners.loop import execute
    from runners.protocol import Budget, RunRequest

    def run(path, name):
        return execute(RunRequest(run_id=name, runtime="onnxruntime/onnx-from-torch/cpu", model="mobilenet_v2",
                                  batch_size=1, precision="int8", result_path=str(tmp_path / f"{name}.json"),
                                  budget=Budget(warmup_iterations=1, min_iterations=2), artifact_path=str(path)))

    refused = run(classifier, "fp32-file")
    assert refused.status == "error" and refused.error.kind == "unsupported"
    assert "int8 needs a quantized artifact" in refused.error.message
    quantized = run_quantize(_request(tmp_path, classifier, "mobilenet_v2", calibration_size=2))
    measured = run(quantized.output_path, "int8-file")
    assert measured.status == "ok", measured.error
    assert measured.runtime_facts["quantization"]["method"] == STATIC_QDQ
