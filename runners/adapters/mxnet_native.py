"""mxnet/native/{cpu,cuda}: a hybridised Gluon block (static_alloc, static_shape) in MXNet 1.9.

MXNet is asynchronous: a call on the block only pushes operators onto MXNet's dependency engine and returns at once;
the work runs on the engine's threads.  `synchronize` therefore waits for the engine (mx.nd.waitall()), and the loop
calls it after every iteration, so each latency covers the computation, not its scheduling.

Graph backend (request.provider_options["backend"], cpu only): by default the block is hybridised as shipped,
hybridize(static_alloc=True, static_shape=True), operators one by one.  {"backend": "MKLDNN"} partitions the graph
for oneDNN first (hybridize(backend="MKLDNN", ...): convolution + BatchNorm + activation fused, as MXNet recommends
for CPU inference): MobileNetV2 at batch 1 on 2 cores went from ~56 ms to ~8 ms, ResNet-50 v1 from ~73 to ~57,
BERT from ~274 to ~255, with the same outputs to float rounding.  A sweep opts in explicitly; the result records it
(versions["mxnet_backend"]).  MXNET_SUBGRAPH_BACKEND in the environment has no effect on Gluon blocks.

cuda needs a CUDA build of MXNet (the `mxnet` wheel on PyPI is the CPU build) and a visible GPU; without either
the run is refused as "unsupported", never measured on the CPU instead.  fp16 is measured on cuda only.

Threads (request.threads): MXNet's CPU operators (oneDNN/MKLDNN convolutions and matrix products, its own OpenMP
kernels) and the bundled OpenBLAS (built with OpenMP) size their thread pools from OpenMP, which reads
OMP_NUM_THREADS once, when libgomp is loaded with `import mxnet`; MXNET_OMP_MAX_THREADS caps MXNet's own OpenMP
kernels.  The adapter sets both before importing MXNet.  MXNET_CPU_WORKER_NTHREADS (engine worker threads that run
independent operators concurrently, default 1) is left at its default.  Where MXNet was already imported with
other settings, the request is refused ("unsupported") rather than measured with a thread count it did not ask for.
With threads unset, MXNet's default is all the CPUs the process may run on (omp_get_num_procs), which is reported.

Math (runners/math_policy.py), cuda: MXNet 1.9 has no TF32 switch of its own; cuBLAS and cuDNN, which it calls,
honour NVIDIA_TF32_OVERRIDE=0 (set for every precision but tf32), and cuDNN autotuning is on
(MXNET_CUDNN_AUTOTUNE_DEFAULT=1: the fastest algorithm within MXNet's workspace limit), both set before the import.
MXNet's tensor-core switches (MXNET_CUDA_ALLOW_TENSOR_CORE, on by default, for fp16) are recorded as found.
"""
from __future__ import annotations

import contextlib
import os
import sys
from importlib import metadata
from typing import Any

import numpy as np

from runners.adapters.contract import Adapter, import_framework
from runners.failures import BadRequestError, UnsupportedError
from runners.hostinfo import cpu_device, nvidia_gpu_name
from runners.math_policy import apply_environment, jit_cache_facts, policy_for
from runners.math_policy import facts as math_facts
from runners.protocol import RunRequest

BACKENDS = {"cpu": ("MKLDNN",), "cuda": ()}  # graph backends a request may ask for (provider_options["backend"])
PROVIDER_OPTIONS = ("backend", "device_id")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MXNET_OMP_MAX_THREADS")
AUTOTUNE_VARIABLE = "MXNET_CUDNN_AUTOTUNE_DEFAULT"  # 0 off, 1 fastest within the workspace limit, 2 fastest
TENSOR_CORE_VARIABLES = ("MXNET_CUDA_ALLOW_TENSOR_CORE", "MXNET_CUDA_TENSOR_OP_MATH_ALLOW_CONVERSION")


def _set_threads(threads: int | None) -> None:
    """Export the thread settings MXNet reads at import; refuse if MXNet was imported with others."""
    if threads is None:
        return
    wanted = {name: str(threads) for name in THREAD_VARIABLES}
    if "mxnet" in sys.modules:
        current = {name: os.environ.get(name) for name in THREAD_VARIABLES}
        if current != wanted:
            raise UnsupportedError(
                f"mxnet/native: threads={threads} must be set before MXNet is imported (OpenMP reads "
                f"OMP_NUM_THREADS once); this process imported it with "
                f"{', '.join(f'{k}={v}' for k, v in current.items())}: run it in a fresh process")
        return
    os.environ.update(wanted)


def _default_threads() -> int:
    """What MXNet uses when OMP_NUM_THREADS is unset: omp_get_num_procs(), the CPUs this process may use."""
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class MxnetNativeAdapter(Adapter):
    def __init__(self) -> None:
        self.mx = None
        self.block = None
        self.ctx = None
        self.device_id = 0
        self.float_dtype = "float32"
        self.input_names: tuple[str, ...] = ()
        self.output_names: tuple[str, ...] = ()
        self.backend: str | None = None
        self.math: dict[str, Any] | None = None

    def check_request(self, request: RunRequest) -> None:
        super().check_request(request)  # provider and precision, from the runtimes table
        provider = request.provider
        unknown = sorted(set(request.provider_options) - set(PROVIDER_OPTIONS))
        if unknown:
            raise BadRequestError(f"mxnet/native: unknown provider option(s) {', '.join(unknown)}; valid: "
                                  f"{', '.join(PROVIDER_OPTIONS)}")
        backend = request.provider_options.get("backend")
        if backend is not None and backend not in BACKENDS[provider]:
            raise UnsupportedError(f"mxnet/native/{provider}: graph backend {backend!r} is not one of "
                                   f"{', '.join(BACKENDS[provider]) or 'none'}")

    def load(self, request: RunRequest) -> None:
        provider = request.provider
        backend = request.provider_options.get("backend")
        _set_threads(request.threads)
        gpu = provider == "cuda"
        policy = policy_for(request.precision)
        environment, kept = apply_environment(policy, gpu, request.cuda_jit_cache,
                                        {AUTOTUNE_VARIABLE: "1" if policy.autotune else "0"})
        # MXNet reads these from the environment (no API to read them back): recorded as the process has them.
        settings = {name: os.environ.get(name) for name in (AUTOTUNE_VARIABLE, *TENSOR_CORE_VARIABLES)} if gpu else {}
        self.math = math_facts(policy, gpu, settings, environment, kept_environment=kept)
        if gpu:
            self.math["cuda_jit_cache"] = jit_cache_facts(request.cuda_jit_cache, gpu)
        mx = self.mx = import_framework("mxnet")
        from models.mxnet_models import build_mxnet_model
        from models.registry import get_model

        if provider == "cuda":
            features = mx.runtime.Features()
            if not features.is_enabled("CUDA"):
                raise UnsupportedError(
                    f"mxnet/native/cuda: this MXNet ({mx.__version__}, distribution "
                    f"{_mxnet_distribution() or 'unknown'}) is built without CUDA; the GPU builds were published as "
                    f"mxnet-cu<version> wheels")
            n_gpus = mx.context.num_gpus()
            self.device_id = int(request.provider_options.get("device_id", 0))
            if self.device_id >= n_gpus:
                raise UnsupportedError(f"mxnet/native/cuda: GPU {self.device_id} is not visible "
                                       f"({n_gpus} GPU(s) visible to MXNet)")
            self.ctx = mx.gpu(self.device_id)
        else:
            self.ctx = mx.cpu()
        self.n_threads = request.threads if request.threads is not None else _default_threads()
        spec = get_model(request.model)
        self.input_names = tuple(i.name for i in spec.inputs)
        self.output_names = spec.outputs
        block = build_mxnet_model(request.model, request.model_options, request.weights, ctx=self.ctx,
                                  hybridize=False)
        if request.precision == "fp16":
            block.cast("float16")
            self.float_dtype = "float16"
        if backend is not None:
            block.hybridize(backend=backend, static_alloc=True, static_shape=True)
        else:
            block.hybridize(static_alloc=True, static_shape=True)
        self.backend = backend
        self.block = block
        self.provider = provider
        mx.nd.waitall()

    def context(self) -> contextlib.AbstractContextManager:
        return self.mx.autograd.predict_mode()

    def prepare(self, inputs: dict[str, np.ndarray]) -> list[Any]:
        mx = self.mx
        prepared = []
        for name in self.input_names:
            array = np.ascontiguousarray(inputs[name])
            dtype = self.float_dtype if np.issubdtype(array.dtype, np.floating) else array.dtype
            prepared.append(mx.nd.array(array, ctx=self.ctx, dtype=dtype))
        self.synchronize()
        return prepared

    def run(self, prepared: list[Any]) -> Any:
        return self.block(*prepared)

    def synchronize(self) -> None:
        # MXNet is asynchronous (see the module docstring): wait until the engine has run everything pushed so far.
        self.mx.nd.waitall()

    def to_numpy(self, outputs: Any) -> dict[str, np.ndarray]:
        if not isinstance(outputs, (tuple, list)):
            outputs = (outputs,)
        if len(outputs) != len(self.output_names):
            raise RuntimeError(f"model returned {len(outputs)} outputs, registry names {len(self.output_names)}")
        return {name: o.asnumpy() for name, o in zip(self.output_names, outputs)}

    def versions(self) -> dict[str, str]:
        out = {}
        for dist in ("mxnet", "gluonnlp"):
            with contextlib.suppress(metadata.PackageNotFoundError):
                out[dist] = metadata.version(dist)
        dist = _mxnet_distribution()
        if dist:
            out["mxnet_package"] = dist
        mx = self.mx
        if mx is not None:
            out["mxnet"] = mx.__version__
            with contextlib.suppress(Exception):
                features = mx.runtime.Features()
                out["mxnet_features"] = ",".join(sorted(k for k, f in features.items() if f.enabled))
            if self.block is not None:
                out["mxnet_backend"] = self.backend or "none (hybridize static_alloc, static_shape)"
        for name in THREAD_VARIABLES + ("MXNET_CPU_WORKER_NTHREADS",):
            if os.environ.get(name):
                out[f"env.{name}"] = os.environ[name]
        return out

    def devices(self) -> list[str]:
        if self.provider is None:
            return []
        if self.provider == "cuda":
            return [nvidia_gpu_name(self.device_id)]
        return [cpu_device()]

    def runtime_facts(self) -> dict[str, Any] | None:
        return {"math": self.math} if self.math is not None else None

    def peak_device_bytes(self) -> int | None:
        return None  # MXNet 1.9 reports free/total GPU memory only, no peak of its own allocations


def _mxnet_distribution() -> str | None:
    for dist in ("mxnet", "mxnet-cu112", "mxnet-cu110", "mxnet-cu102", "mxnet-mkl", "mxnet-native"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            return f"{dist}=={metadata.version(dist)}"
    return None
