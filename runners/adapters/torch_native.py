"""torch/native/{cpu,cuda}: eager PyTorch under torch.inference_mode().

Math, device and threads as every torch adapter's (runners/adapters/torch_common.py): set before the model is built,
read back into runtime_facts["math"]; torch/inductor inherits them before compiling.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from runners.adapters.contract import Adapter
from runners.adapters.torch_common import TorchPlacement
from runners.protocol import RunRequest

class TorchNativeAdapter(TorchPlacement, Adapter):
    def __init__(self) -> None:
        self.torch = None
        self.model = None
        self.device = None
        self.dtype = None
        self.output_names: tuple[str, ...] = ()
        self.math: dict[str, Any] | None = None

    def load(self, request: RunRequest) -> None:
        torch = self.place(request)
        from models.registry import get_model

        self.output_names = get_model(request.model).outputs
        self.dtype = torch.float16 if request.precision == "fp16" else torch.float32
        model = self.build_model(request).to(self.device)
        if request.precision == "fp16":
            model = model.half()
        self.model = model.eval()

    def build_model(self, request: RunRequest) -> Any:
        """The registry's model as an eager nn.Module on the CPU (torch/inductor compiles this same module)."""
        from models.torch_models import build_torch_model

        return build_torch_model(request.model, request.model_options, request.weights)

    def prepare(self, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        torch = self.torch
        prepared = {}
        for name, array in inputs.items():
            tensor = torch.from_numpy(np.ascontiguousarray(array)).to(self.device)
            if tensor.is_floating_point():
                tensor = tensor.to(self.dtype)
            prepared[name] = tensor
        self.synchronize()
        return prepared

    def run(self, prepared: dict[str, Any]) -> Any:
        return self.model(**prepared)

    def to_numpy(self, outputs: Any) -> dict[str, np.ndarray]:
        if not isinstance(outputs, (tuple, list)):
            outputs = (outputs,)
        if len(outputs) != len(self.output_names):
            raise RuntimeError(f"model returned {len(outputs)} outputs, registry names {len(self.output_names)}")
        return {name: t.detach().cpu().numpy() for name, t in zip(self.output_names, outputs)}
