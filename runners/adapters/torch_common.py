"""What every torch adapter does the same way (torch/native, torch/inductor, torch/transformers): the math policy
(runners/math_policy.py) set before the model is built, the device and the thread count, and how they are reported.

Math: TF32 off for matmuls and cuDNN convolutions (allow_tf32 False, float32 matmul precision "highest") unless the
precision is tf32; cudnn.benchmark on (autotuning: shapes are fixed per run). Read back into runtime_facts["math"].
"""
from __future__ import annotations

import contextlib
from importlib import metadata
from typing import Any

from runners.adapters.contract import import_framework
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


class TorchPlacement:
    """Mixed into an Adapter that drives torch (listed before Adapter): `place` in its load, and the Adapter
    methods that only depend on torch, the device and the math."""

    torch: Any
    device: Any
    math: dict[str, Any] | None
    provider: str | None

    def place(self, request: RunRequest) -> Any:
        """The math policy, torch, its device (CUDA checked) and thread count, for `request`: torch."""
        gpu = request.provider == "cuda"
        policy = policy_for(request.precision)
        # Before torch loads cuBLAS/cuDNN or initialises CUDA: they read these once.
        environment, kept = apply_environment(policy, gpu, request.cuda_jit_cache)
        torch = self.torch = import_framework("torch")
        self.math = math_facts(policy, gpu, apply_torch_math(torch, policy, gpu), environment, kept_environment=kept)
        if gpu:
            self.math["cuda_jit_cache"] = jit_cache_facts(request.cuda_jit_cache, gpu)
            if not torch.cuda.is_available():
                raise UnsupportedError(
                    f"{request.runtime}: CUDA is not available (torch {torch.__version__}, built for CUDA "
                    f"{torch.version.cuda or 'none'}, {torch.cuda.device_count()} device(s))")
            self.device = torch.device("cuda", int(request.provider_options.get("device_id", 0)))
            torch.cuda.set_device(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.device = torch.device("cpu")
        if request.threads is not None:
            torch.set_num_threads(request.threads)
        self.provider = request.provider
        return torch

    def context(self) -> contextlib.AbstractContextManager:
        return self.torch.inference_mode()

    def synchronize(self) -> None:
        if self.provider == "cuda":
            self.torch.cuda.synchronize(self.device)

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
