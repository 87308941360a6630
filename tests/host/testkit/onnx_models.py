"""A user's ONNX model made without greenrt's exporters (onnx's helper API), for the user-model tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def onnx_helper_model(path: Path) -> Path:
    """A graph made with onnx's helper API, not with greenrt's exporters: y = relu(x @ W + B), batch symbolic."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32), "W")
    bias = numpy_helper.from_array(np.full(4, 0.5, np.float32), "B")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "B"], ["h2"]),
         helper.make_node("Relu", ["h2"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], [weights, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
