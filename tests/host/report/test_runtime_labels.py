"""Figures and tables name runtimes by short labels: one label per runtime, whatever runs the converted model."""
from orchestrator.report.figures import runtime_label, sorted_runtimes
from runners.runtimes_table import runtime_names


def test_every_runtime_has_its_own_label():
    names = runtime_names()
    assert len({runtime_label(n) for n in names}) == len(names)
    assert runtime_label("openvino/onnx-from-torch/cpu") == "OV←torch" != runtime_label("onnxruntime/onnx-from-torch/cpu")
    assert runtime_label("litert/tflite-from-tensorflow/cpu") == "LiteRT←TF"
    assert runtime_label("torch/inductor/cuda") == "torch inductor [cuda]"


def test_native_runtimes_come_first_then_their_compilers_then_converted_models():
    order = sorted_runtimes(["onnxruntime/onnx-from-torch/cpu", "torch/inductor/cpu", "tensorflow/native/cpu",
                             "torch/native/cpu", "openvino/onnx-from-torch/cpu"])
    assert order == ["torch/native/cpu", "torch/inductor/cpu", "tensorflow/native/cpu",
                     "onnxruntime/onnx-from-torch/cpu", "openvino/onnx-from-torch/cpu"]
