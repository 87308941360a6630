"""A tiny ONNX image classifier built with onnx's helper API, and its outputs computed independently in numpy.

It takes mobilenet_v2's input (pixel_values, N x 3 x 224 x 224, batch dynamic) and gives 1000 logits, so the
registry's seeded inputs and the runner's output names apply; it builds in milliseconds.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from runners.protocol import Budget, RunRequest

ROOT = Path(__file__).resolve().parents[2]
SMALL = Budget(warmup_iterations=2, min_iterations=5)
OV = "openvino/onnx-from-torch/cpu"
CHANNELS, CLASSES = 16, 1000


@dataclass(frozen=True)
class TinyClassifier:
    path: Path
    conv_w: np.ndarray  # (CHANNELS, 3, 1, 1)
    conv_b: np.ndarray
    fc_w: np.ndarray  # (CLASSES, CHANNELS), Gemm transB=1
    fc_b: np.ndarray

    def reference(self, pixel_values: np.ndarray) -> np.ndarray:
        """The model's logits in float64 numpy: 1x1 convolution, ReLU, global average pool, dense."""
        x = pixel_values.astype(np.float64)
        y = np.einsum("nchw,oc->nohw", x, self.conv_w[:, :, 0, 0].astype(np.float64)) + self.conv_b[None, :, None, None]
        pooled = np.maximum(y, 0).mean(axis=(2, 3))
        return pooled @ self.fc_w.T.astype(np.float64) + self.fc_b


def build_tiny_classifier(path: Path, seed: int = 0, fixed_batch: int | None = None) -> TinyClassifier:
    """The classifier at `path`; with fixed_batch, zeros of the constant shape [fixed_batch, CHANNELS, 1, 1] are
    added to its pooled features (the same logits), which ties the graph to that batch (or 1)."""
    rng = np.random.default_rng(seed)
    conv_w = rng.standard_normal((CHANNELS, 3, 1, 1)).astype(np.float32)
    conv_b = rng.standard_normal(CHANNELS).astype(np.float32)
    fc_w = rng.standard_normal((CLASSES, CHANNELS)).astype(np.float32)
    fc_b = rng.standard_normal(CLASSES).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["pixel_values", "conv_w", "conv_b"], ["conv"], kernel_shape=[1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool_in" if fixed_batch else "pool"]),
        *([helper.make_node("Add", ["pool_in", "batch_pin"], ["pool"])] if fixed_batch else []),
        helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny_classifier",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", CLASSES])],
        initializer=[numpy_helper.from_array(a, n) for a, n in
                     ((conv_w, "conv_w"), (conv_b, "conv_b"), (fc_w, "fc_w"), (fc_b, "fc_b"))]
        + ([numpy_helper.from_array(np.zeros((fixed_batch, CHANNELS, 1, 1), np.float32), "batch_pin")]
           if fixed_batch else []))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return TinyClassifier(path, conv_w, conv_b, fc_w, fc_b)


def make_request(tmp_path: Path, artifact: Path, runtime: str = OV, batch_size: int = 1, **kwargs) -> RunRequest:
    kwargs.setdefault("budget", SMALL)
    name = kwargs.pop("run_id", f"tiny-{batch_size}")
    return RunRequest(run_id=name, runtime=runtime, model="mobilenet_v2", batch_size=batch_size,
                      result_path=str(tmp_path / f"{name}.result.json"), artifact_path=str(artifact), **kwargs)
