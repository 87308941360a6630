"""torch/native/{cpu,cuda}: eager PyTorch under torch.inference_mode().

Math (runners/math_policy.py): TF32 off for matmuls and cuDNN convolutions (allow_tf32 False, float32 matmul
precision "highest") unless the precision is tf32; cudnn.benchmark on (autotuning: shapes are fixed per run).  Set
before the model is built, read back into runtime_facts["math"]; torch/inductor inherits them before compiling.
"""
from __future__ import annotations

import contextlib
from importlib import metadata
from typing import Any

import numpy as np

from runners.adapters.contract import Adapter, import_framework
from runners.failures import UnsupportedError
from runners.hostinfo import cpu_device
from runners.math_policy import MathPolicy, apply_environment, jit_cache_facts, policy_for
from runners.math_policy import facts as math_facts
from runners.protocol import RunRequest


def apply_torch_math(torch: Any, policy: MathPolicy, gpu: bool) -> dict[str, Any]:
    """Set torch's TF32 and autotuning switches by the policy; what torch reports back afterwards."""
    tf32 = policy.tf32 and gpu
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    torch.backends.cudnn.benchmark = policy.autotune
    settings: dict[str, Any] = {
        "torch.backends.cuda.matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "torch.backends.cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "torch.backends.cudnn.benchmark": torch.backends.cudnn.benchmark,
    }
    # torch >= 2.9 also keeps the state under its newer fp32_precision names ("ieee" | "tf32" | "none").
    with contextlib.suppress(AttributeError):
        settings["torch.backends.cuda.matmul.fp32_precision"] = torch.backends.cuda.matmul.fp32_precision
    with contextlib.suppress(AttributeError):
        settings["torch.backends.cudnn.conv.fp32_precision"] = torch.backends.cudnn.conv.fp32_precision
    return settings


class TorchNativeAdapter(Adapter):
    def __init__(self) -> None:
        self.torch = None
        self.model = None
        self.device = None
        self.dtype = None
        self.output_names: tuple[str, ...] = ()
        self.math: dict[str, Any] | None = None

    def load(self, request: RunRequest) -> None:
        gpu = request.provider == "cuda"
        policy = policy_for(request.precision)
        # Before torch loads cuBLAS/cuDNN or initialises CUDA: they read these once.
        environment, kept = apply_environment(policy, gpu, request.cuda_jit_cache)
        torch = self.torch = import_framework("torch")
        self.math = math_facts(policy, gpu, apply_torch_math(torch, policy, gpu), environment,
                               kept_environment=kept)
        if gpu:
            self.math["cuda_jit_cache"] = jit_cache_facts(request.cuda_jit_cache, gpu)
        from models.registry import get_model

        provider = request.provider
        if provider == "cuda":
            if not torch.cuda.is_available():
                raise UnsupportedError(
                    f"{request.runtime}: CUDA is not available (torch {torch.__version__}, built for CUDA "
                    f"{torch.version.cuda or 'none'}, {torch.cuda.device_count()} device(s))")
            device_id = int(request.provider_options.get("device_id", 0))
            self.device = torch.device("cuda", device_id)
            torch.cuda.set_device(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.device = torch.device("cpu")
        if request.threads is not None:
            torch.set_num_threads(request.threads)
        self.provider = provider
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

    def context(self) -> contextlib.AbstractContextManager:
        return self.torch.inference_mode()

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

    def synchronize(self) -> None:
        if self.provider == "cuda":
            self.torch.cuda.synchronize(self.device)

    def to_numpy(self, outputs: Any) -> dict[str, np.ndarray]:
        if not isinstance(outputs, (tuple, list)):
            outputs = (outputs,)
        if len(outputs) != len(self.output_names):
            raise RuntimeError(f"model returned {len(outputs)} outputs, registry names {len(self.output_names)}")
        return {name: t.detach().cpu().numpy() for name, t in zip(self.output_names, outputs)}

    def versions(self) -> dict[str, str]:
        out = {}
        for dist in ("torch", "transformers", "safetensors"):
            with contextlib.suppress(metadata.PackageNotFoundError):
                out[dist] = metadata.version(dist)
        torch = self.torch
        if torch is not None:
            out["torch"] = torch.__version__
            if torch.version.cuda:
                out["cuda"] = str(torch.version.cuda)
            with contextlib.suppress(Exception):
                if torch.backends.cudnn.is_available():
                    out["cudnn"] = str(torch.backends.cudnn.version())
        return out

    def devices(self) -> list[str]:
        if self.provider is None:
            return []
        if self.provider == "cuda":
            return [f"{self.device}: {self.torch.cuda.get_device_name(self.device)}"]
        return [cpu_device()]

    def runtime_facts(self) -> dict[str, Any] | None:
        return {"math": self.math} if self.math is not None else None

    def threads(self) -> int | None:
        return self.torch.get_num_threads() if self.torch is not None else None

    def peak_device_bytes(self) -> int | None:
        if self.provider == "cuda":
            return int(self.torch.cuda.max_memory_allocated(self.device))
        return None
