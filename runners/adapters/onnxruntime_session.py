"""onnxruntime/onnx-from-<framework>/{cpu,cuda,tensorrt}: an ONNX Runtime InferenceSession on request.artifact_path.

The requested execution provider must be the one ONNX Runtime actually puts first; a silent fallback to the CPU
would measure the wrong thing, so it is reported as "unsupported" instead.  On cuda/tensorrt the inputs are bound
once as device OrtValues and the outputs are bound to the device (IO binding): no transfer inside the window.
"""
from __future__ import annotations

import contextlib
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from runners.hostinfo import cpu_device, nvidia_gpu_name
from runners.loop import Adapter, BadRequestError, RunnerError, UnsupportedError
from runners.protocol import RunRequest

EP_NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}

# ONNX tensor types -> numpy dtypes, for casting inputs to what the graph declares.
_ONNX_TO_NUMPY = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def _import_ort():
    try:
        import onnxruntime
    except ModuleNotFoundError as exc:
        raise UnsupportedError(f"onnxruntime is not importable in this environment ({exc})") from None
    return onnxruntime


def _ort_distribution() -> str | None:
    for dist in ("onnxruntime-gpu", "onnxruntime", "onnxruntime-directml", "onnxruntime-openvino"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            return f"{dist}=={metadata.version(dist)}"
    return None


def provider_chain(provider: str, request: RunRequest) -> list[tuple[str, dict[str, Any]]]:
    """The execution providers (name, options) for a requested provider, request.provider_options merged in.

    provider_options is either flat (it applies to the requested provider) or keyed by execution-provider name
    ({"CUDAExecutionProvider": {...}, ...}); both forms may be mixed.
    """
    opts = dict(request.provider_options)
    device_id = int(opts.get("device_id", 0))
    cuda = {"device_id": device_id, "cudnn_conv_algo_search": "EXHAUSTIVE", "do_copy_in_default_stream": True}
    if provider == "cpu":
        chain = [("CPUExecutionProvider", {})]
    elif provider == "cuda":
        chain = [("CUDAExecutionProvider", cuda), ("CPUExecutionProvider", {})]
    elif provider == "tensorrt":
        default_cache = str(Path(request.result_path).resolve().parent / "trt_cache")
        trt = {
            "device_id": device_id,
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": default_cache,
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": default_cache,
            "trt_fp16_enable": request.precision == "fp16",
        }
        chain = [("TensorrtExecutionProvider", trt), ("CUDAExecutionProvider", cuda), ("CPUExecutionProvider", {})]
    else:
        raise UnsupportedError(f"onnxruntime has no provider {provider!r} here; valid: {', '.join(EP_NAMES)}")
    per_ep = {k: v for k, v in opts.items() if k.endswith("ExecutionProvider") and isinstance(v, dict)}
    flat = {k: v for k, v in opts.items() if k not in per_ep}
    merged = []
    for i, (name, defaults) in enumerate(chain):
        options = dict(defaults)
        if i == 0:
            options.update(flat)
        options.update(per_ep.get(name, {}))
        merged.append((name, options))
    if provider == "tensorrt":
        for key in ("trt_engine_cache_path", "trt_timing_cache_path"):
            if merged[0][1].get(key):
                Path(merged[0][1][key]).mkdir(parents=True, exist_ok=True)
    return merged


class OnnxRuntimeAdapter(Adapter):
    def __init__(self) -> None:
        self.ort = None
        self.session = None
        self.provider: str | None = None
        self.providers_used: list[str] = []
        self.device_id = 0
        self.binding = None
        self.output_names: list[str] = []
        self.input_types: dict[str, str] = {}
        self.n_threads: int | None = None
        self.provider_options: list[tuple[str, dict[str, Any]]] = []

    def load(self, request: RunRequest) -> None:
        ort = self.ort = _import_ort()
        provider = request.provider
        if provider not in EP_NAMES:
            raise UnsupportedError(f"onnxruntime has no provider {provider!r} here; valid: {', '.join(EP_NAMES)}")
        if not request.artifact_path:
            raise BadRequestError(f"runtime {request.runtime} needs artifact_path (the exported .onnx model)")
        artifact = Path(request.artifact_path)
        if not artifact.is_file():
            raise RunnerError(f"artifact {artifact} does not exist", kind="load")
        ep = EP_NAMES[provider]
        available = ort.get_available_providers()
        if ep not in available:
            raise UnsupportedError(
                f"{ep} is not available in this ONNX Runtime ({_ort_distribution() or ort.__version__}); "
                f"available: {', '.join(available)}")
        if request.precision not in ("fp32", "fp16"):
            raise UnsupportedError(f"onnxruntime: precision {request.precision!r} is not one of fp32, fp16")

        chain = provider_chain(provider, request)
        self.provider_options = chain
        self.device_id = int(chain[0][1].get("device_id", 0))
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if request.threads is not None:
            so.intra_op_num_threads = request.threads
        self.n_threads = request.threads
        so.log_severity_level = 3  # errors only: the fallback warnings are checked below, not printed
        self.session = ort.InferenceSession(
            str(artifact), sess_options=so, providers=[name for name, _ in chain],
            provider_options=[opts for _, opts in chain])
        self.providers_used = self.session.get_providers()
        if not self.providers_used or self.providers_used[0] != ep:
            raise UnsupportedError(
                f"ONNX Runtime did not enable {ep} (session providers: {', '.join(self.providers_used)}; available: "
                f"{', '.join(available)}); refusing to measure the fallback")
        self.provider = provider
        self.input_types = {i.name: i.type for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]
        if request.precision == "fp16" and provider != "tensorrt":
            if not any(t == "tensor(float16)" for t in self.input_types.values()):
                raise UnsupportedError(
                    f"onnxruntime/{provider}: fp16 needs an fp16 artifact (this one takes "
                    f"{', '.join(sorted(set(self.input_types.values())))}); fp16 of an fp32 model is tensorrt only")

    def _feed(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Only the inputs the graph declares, matched by name, cast to the declared element type."""
        missing = sorted(set(self.input_types) - set(inputs))
        if missing:
            raise RunnerError(f"the model declares input(s) {', '.join(missing)} that the registry does not "
                              f"provide (have: {', '.join(sorted(inputs))})", kind="load")
        feed = {}
        for name, onnx_type in self.input_types.items():
            array = inputs[name]
            want = _ONNX_TO_NUMPY.get(onnx_type)
            if want is not None and array.dtype != want:
                array = array.astype(want)
            feed[name] = np.ascontiguousarray(array)
        return feed

    def prepare(self, inputs: dict[str, np.ndarray]) -> Any:
        feed = self._feed(inputs)
        if self.provider == "cpu":
            return feed
        ort = self.ort
        binding = self.session.io_binding()
        self._device_inputs = [ort.OrtValue.ortvalue_from_numpy(a, "cuda", self.device_id) for a in feed.values()]
        for name, value in zip(feed, self._device_inputs):
            binding.bind_ortvalue_input(name, value)
        for name in self.output_names:
            binding.bind_output(name, "cuda", self.device_id)
        binding.synchronize_inputs()
        self.binding = binding
        return binding

    def run(self, prepared: Any) -> Any:
        if self.binding is None:
            return self.session.run(self.output_names, prepared)
        self.session.run_with_iobinding(prepared)
        return prepared

    def synchronize(self) -> None:
        if self.binding is not None:
            self.binding.synchronize_outputs()

    def to_numpy(self, outputs: Any) -> dict[str, np.ndarray]:
        if self.binding is None:
            arrays = outputs
        else:
            arrays = outputs.copy_outputs_to_cpu()
        return {name: np.asarray(a) for name, a in zip(self.output_names, arrays)}

    def versions(self) -> dict[str, str]:
        out = {}
        ort = self.ort
        if ort is not None:
            out["onnxruntime"] = ort.__version__
            with contextlib.suppress(Exception):
                out["onnxruntime_build"] = ort.get_build_info()
            with contextlib.suppress(Exception):
                if ort.cuda_version:
                    out["onnxruntime_cuda"] = str(ort.cuda_version)
        dist = _ort_distribution()
        if dist:
            out["onnxruntime_package"] = dist
        if self.provider in ("cuda", "tensorrt"):
            for d in ("tensorrt", "tensorrt-cu12", "nvidia-cudnn-cu12", "nvidia-cuda-runtime-cu12", "nvidia-cublas-cu12"):
                with contextlib.suppress(metadata.PackageNotFoundError):
                    out[d] = metadata.version(d)
        return out

    def devices(self) -> list[str]:
        if self.provider is None:
            return []
        if self.provider == "cpu":
            return [cpu_device()]
        return [nvidia_gpu_name(self.device_id)]

    def provider_used(self) -> str | None:
        return self.providers_used[0] if self.provider else None

    def threads(self) -> int | None:
        return self.n_threads

    def peak_device_bytes(self) -> int | None:
        return None
