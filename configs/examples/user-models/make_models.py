"""Makes the example's model files (never committed): `python configs/examples/user-models/make_models.py` writes
tiny.onnx here (with onnx's helper API, in any Python with onnx: the host venv has it) and, when run with the torch
environment's Python (`$(greenrt env python torch) configs/examples/user-models/make_models.py`), also cnn.pt2
(torch.export, batch dynamic) and config.json (a two-layer BERT)."""
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).parent
weights = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32), "W")
graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
                          "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], [weights])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 9
onnx.save(model, str(HERE / "tiny.onnx"))
json.dump({"model_type": "bert", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2,
           "intermediate_size": 128, "vocab_size": 1000, "max_position_embeddings": 64},
          open(HERE / "config.json", "w"), indent=1)
try:
    import torch
except ModuleNotFoundError:
    print("wrote tiny.onnx and config.json; run me with the torch environment's Python for cnn.pt2")
else:
    class CNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.head = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Linear(8, 10)

        def forward(self, image):
            return self.head(torch.relu(self.conv(image)).mean((2, 3)))

    torch.manual_seed(0)
    program = torch.export.export(CNN().eval(), (torch.randn(2, 3, 16, 16),),
                                  dynamic_shapes={"image": {0: torch.export.Dim("batch")}})
    torch.export.save(program, str(HERE / "cnn.pt2"))
    print("wrote tiny.onnx, config.json and cnn.pt2")
