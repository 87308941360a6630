"""torch/torchscript/cpu and torch/aoti/cpu: the Python client of a saved torch model (models/torch_artifacts.py),
the file the C++ runner (runners/cpp/, runtime id suffix "@cpp") loads too, so that the two clients are compared on
one artifact.  TorchScript: torch.jit.load; AOTInductor: torch._inductor.aoti_load_package.  Inputs are positional in
the registry's order, as exported; threads by torch.set_num_threads before the load (the compiled code's OpenMP
pool reads it), as the C++ runner does with at::set_num_threads.
"""
from __future__ import annotations

import contextlib
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from runners.adapters.contract import Adapter, import_framework
from runners.failures import BadRequestError, RunnerError
from runners.hostinfo import cpu_device
from runners.protocol import RunRequest


class _TorchArtifactAdapter(Adapter):
    def __init__(self) -> None:
        self.torch = None
        self.module = None
        self.input_names: list[str] = []
        self.output_names: tuple[str, ...] = ()

    def check_request(self, request: RunRequest) -> None:
        super().check_request(request)
        if not request.artifact_path:
            raise BadRequestError(f"{request.runtime} runs a saved model file: the request needs artifact_path")
        if request.provider_options:
            raise BadRequestError(f"{request.runtime} takes no provider options; got {sorted(request.provider_options)}")

    def load(self, request: RunRequest) -> None:
        from models.registry import get_model

        torch = self.torch = import_framework("torch")
        if request.threads is not None:
            torch.set_num_threads(request.threads)
        spec = get_model(request.model)
        self.input_names = [i.name for i in spec.inputs]
        self.output_names = spec.outputs
        if not Path(request.artifact_path).is_file():
            raise RunnerError(f"artifact {request.artifact_path}: no such file", kind="load")
        self.module = self.load_artifact(request.artifact_path)
        self.provider = "cpu"

    def load_artifact(self, path: str) -> Any:
        raise NotImplementedError

    def context(self) -> contextlib.AbstractContextManager:
        return self.torch.inference_mode()

    def prepare(self, inputs: dict[str, np.ndarray]) -> list[Any]:
        return [self.torch.from_numpy(np.ascontiguousarray(inputs[name])) for name in self.input_names]

    def run(self, prepared: list[Any]) -> Any:
        return self.module(*prepared)

    def to_numpy(self, outputs: Any) -> dict[str, np.ndarray]:
        if not isinstance(outputs, (tuple, list)):
            outputs = (outputs,)
        if len(outputs) != len(self.output_names):
            raise RuntimeError(f"artifact returned {len(outputs)} outputs, registry names {len(self.output_names)}")
        return {name: t.detach().numpy() for name, t in zip(self.output_names, outputs)}

    def versions(self) -> dict[str, str]:
        out = {}
        with contextlib.suppress(metadata.PackageNotFoundError):
            out["torch"] = metadata.version("torch")
        return out

    def devices(self) -> list[str]:
        return [cpu_device()] if self.provider else []

    def threads(self) -> int | None:
        return self.torch.get_num_threads() if self.torch is not None else None


class TorchScriptAdapter(_TorchArtifactAdapter):
    def load_artifact(self, path: str) -> Any:
        from models.torch_artifacts import load_torchscript

        return load_torchscript(path)


class AotiAdapter(_TorchArtifactAdapter):
    def load_artifact(self, path: str) -> Any:
        from models.torch_artifacts import load_aoti

        return load_aoti(path)
