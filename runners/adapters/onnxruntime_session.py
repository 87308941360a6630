"""onnxruntime/onnx-from-<framework>/{cpu,cuda,tensorrt,openvino}: an ONNX Runtime InferenceSession on
request.artifact_path.

The requested execution provider must be the one ONNX Runtime actually puts first; a silent fallback to the CPU
would measure the wrong thing, so it is reported as "unsupported" instead.  On cuda/tensorrt the inputs are bound
once as device OrtValues and the outputs are bound to the device (IO binding): no transfer inside the window.
openvino is Intel's OpenVINO execution provider on the CPU (device_type CPU; the onnxruntime-openvino wheel, in its
own environment): host memory, no binding; it takes each supported subgraph as one fused node.

ONNX Runtime also gives each graph node it cannot run on the requested provider to the next one in the chain (CUDA,
then the CPU), silently.  The session is therefore built with its log at VERBOSE, fd 2 captured (only during
construction), and the "Node placements" section ORT prints there is recorded per run (node_placement), with the
verdict of runners.adapters.ort_placement: ORT's deliberate CPU placement of shape computations apart from the
fallback of compute nodes, and CUDA-EP nodes inside a tensorrt run.  `session.*` keys in provider_options are ORT
session config entries; with session.disable_cpu_ep_fallback = "1" a GPU session that would put any node on the CPU
is refused.
"""
from __future__ import annotations

import contextlib
import json
import re
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from models.quantize import METADATA_KEY as QUANTIZATION_METADATA_KEY
from runners.adapters.contract import Adapter, import_framework
from runners.adapters.ort_options import (CUDA_EP, cuda_ep_options, engine_build_facts, engine_files,
                                          policy_overrides, session_math, tensorrt_profile)
from runners.adapters.ort_placement import (CPU_EP, OPENVINO_EP, PlacementParseError,  # noqa: F401 - re-exported
                                            captured_stderr_fd, cpu_reasons, log_passthrough, missing_kernel_ops,
                                            parse_node_placements, placement_line, placement_summary)
from runners.failures import BadRequestError, RunnerError, UnsupportedError
from runners.hostinfo import cpu_device, nvidia_gpu_name
from runners.math_policy import apply_environment, jit_cache_facts, policy_for
from runners.math_policy import facts as math_facts
from runners.protocol import RunRequest
from runners.runtimes_table import DISABLE_CPU_FALLBACK, SESSION_CONFIG_PREFIX

EP_NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider",
            "openvino": "OpenVINOExecutionProvider"}
# Providers whose inputs and outputs live in CUDA memory (IO binding, CUDA libraries preloaded).
CUDA_PROVIDERS = ("cuda", "tensorrt")

# ONNX tensor types -> numpy dtypes, for casting inputs to what the graph declares.
_ONNX_TO_NUMPY = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


# The CUDA, cuDNN and TensorRT wheels a GPU environment may hold (CUDA 13 names first, then CUDA 12's).
CUDA_DISTRIBUTIONS = ("tensorrt-cu13-libs", "tensorrt-cu13-bindings", "nvidia-cudnn-cu13", "nvidia-cuda-runtime",
                      "nvidia-cublas", "tensorrt", "tensorrt-cu12", "nvidia-cudnn-cu12", "nvidia-cuda-runtime-cu12",
                      "nvidia-cublas-cu12")


def _preload_cuda_libraries(ort: Any) -> str:
    """Load the CUDA and cuDNN libraries of the nvidia-* wheels before the session asks for them.

    On Linux the CUDA provider dlopens libcudnn.so.9 and friends by name; in a venv (the local launcher) nothing
    puts the wheels' folders on the loader's path (the images do it with ldconfig), so without this the provider
    fails to load and the run is refused. Returns what happened, for the record.
    """
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return "not available in this ONNX Runtime"
    try:
        preload(cuda=True, cudnn=True, msvc=False)
    except Exception as exc:  # the session's own error, if any, says more; keep this one for the record
        return f"failed: {type(exc).__name__}: {exc}"
    return "ok"


def _bundled_openvino(ort: Any) -> str | None:
    """The OpenVINO version the onnxruntime-openvino wheel carries (its capi/libopenvino.so.<version>), or None.

    That wheel loads its own copy of OpenVINO's libraries, not the `openvino` wheel's: the version measured is this
    one."""
    capi = Path(ort.__file__).parent / "capi"
    found = sorted(m["v"] for f in capi.glob("libopenvino.so.*")
                   if (m := re.fullmatch(r"libopenvino\.so\.(?P<v>\d+\.\d+\.\d+)", f.name)))
    return found[-1] if found else None


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
    # The math policy (runners/math_policy.py): use_tf32 by the precision, cuDNN's exhaustive search (autotuning).
    cuda = cuda_ep_options(device_id, policy_for(request.precision))
    if provider == "cpu":
        chain = [("CPUExecutionProvider", {})]
    elif provider == "cuda":
        chain = [("CUDAExecutionProvider", cuda), ("CPUExecutionProvider", {})]
    elif provider == "tensorrt":
        # A sweep gives an engine folder per (model, source, batch, precision, seq_len) and one timing cache per
        # math mode (orchestrator/execution/sweep.py build_request); alone, a run keeps both beside its result.
        default_cache = str(Path(request.result_path).resolve().parent / "trt_cache")
        trt = {
            "device_id": device_id,
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": default_cache,
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": default_cache,
            "trt_fp16_enable": request.precision == "fp16",
            **tensorrt_profile(request.model, request.batch_size, request.model_options),
        }
        chain = [("TensorrtExecutionProvider", trt), ("CUDAExecutionProvider", cuda), ("CPUExecutionProvider", {})]
    elif provider == "openvino":
        # The EP's own thread count; SessionOptions' intra-op threads only reach the nodes left to the CPU provider.
        threads = {"num_of_threads": str(request.threads)} if request.threads is not None else {}
        chain = [(OPENVINO_EP, {"device_type": "CPU", **threads}), ("CPUExecutionProvider", {})]
    else:
        raise UnsupportedError(f"onnxruntime has no provider {provider!r} here; valid: {', '.join(EP_NAMES)}")
    per_ep = {k: v for k, v in opts.items() if k.endswith("ExecutionProvider") and isinstance(v, dict)}
    flat = {k: v for k, v in opts.items() if k not in per_ep and not k.startswith(SESSION_CONFIG_PREFIX)}
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


def session_config_entries(provider_options: dict[str, Any]) -> dict[str, str]:
    """The `session.*` keys of provider_options as ORT session config entries (strings; booleans as "1"/"0")."""
    entries = {}
    for key, value in provider_options.items():
        if key.startswith(SESSION_CONFIG_PREFIX):
            entries[key] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    return entries


def _refusal_message(exc: Exception, chain: list[str], lines: list[str]) -> str | None:
    """A clear message when ORT refused the session because disable_cpu_ep_fallback met a node for the CPU."""
    text = str(exc)
    if "fallback to CPU EP has been explicitly disabled" not in text and "assigned to the default CPU EP" not in text:
        return None
    ops = missing_kernel_ops(lines)
    reasons = cpu_reasons(lines)
    shape = sum(reason == "shape" for reason in reasons.values())
    if shape and not ops and all(reason == "shape" for reason in reasons.values()):
        # Only ORT's own choice stands in the way: the option refuses a placement ORT means to run (not a fallback).
        return (f"refused: {DISABLE_CPU_FALLBACK} = 1 and ONNX Runtime put {shape} shape-computation node(s) on "
                f"CPUExecutionProvider on purpose (GetCpuPreferredNodes: faster there than on {chain[0]}); no node "
                f"lacks a {chain[0]} kernel. This option refuses that deliberate placement: leave it unset to measure "
                f"this model (node_placement then records those nodes as shape computations, not as fallback). "
                f"ONNX Runtime: {text.strip()}")
    hint = f"; op types without a kernel there: {', '.join(ops)}" if ops else ""
    return (f"refused: {DISABLE_CPU_FALLBACK} = 1 and ONNX Runtime would run graph node(s) on CPUExecutionProvider "
            f"that {' / '.join(chain)} cannot take (a CPU fallback inside a {chain[0]} measurement){hint}. "
            f"ONNX Runtime: {text.strip()}")


class OnnxRuntimeAdapter(Adapter):
    def __init__(self) -> None:
        self.ort = None
        self.session = None
        self.providers_used: list[str] = []
        self.device_id = 0
        self.binding = None
        self.output_names: list[str] = []
        self.input_types: dict[str, str] = {}
        self.provider_options: list[tuple[str, dict[str, Any]]] = []
        self.placement: dict[str, Any] | None = None
        self.run_options = None
        self.math: dict[str, Any] | None = None
        self.engine: dict[str, Any] | None = None
        self._engine: tuple | None = None
        self._run_seconds: list[float] | None = None

    def load(self, request: RunRequest) -> None:
        ort = self.ort = import_framework("onnxruntime")
        provider = request.provider
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

        entries = session_config_entries(request.provider_options)
        refuse_cpu = entries.get(DISABLE_CPU_FALLBACK) == "1"
        if refuse_cpu and provider == "cpu":
            raise BadRequestError(f"{DISABLE_CPU_FALLBACK} = 1 refuses every node on the CPU provider, which is all "
                                  f"{request.runtime} runs on; it is for cuda, tensorrt and openvino runtimes")
        chain = provider_chain(provider, request)
        if refuse_cpu:  # ORT refuses an explicit CPU provider with fallback disabled; it adds it implicitly instead
            chain = [(name, opts) for name, opts in chain if name != CPU_EP]
        self.provider_options = chain
        self.device_id = int(chain[0][1].get("device_id", 0))
        self._apply_math(request, chain)  # its environment before CUDA's libraries are loaded
        if provider in CUDA_PROVIDERS:
            self.preloaded = _preload_cuda_libraries(ort)
        engines_before = engine_files(chain[0][1].get("trt_engine_cache_path")) if provider == "tensorrt" else set()
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if request.threads is not None:
            so.intra_op_num_threads = request.threads
        self.n_threads = request.threads
        for key, value in entries.items():
            so.add_session_config_entry(key, value)
        # VERBOSE during construction only, so that ORT prints where it placed each node; the log goes to a
        # temporary file (not runner.log): its warnings and errors are passed on, plus one placement line.
        so.log_severity_level = 0
        names = [name for name, _ in chain]
        log: list[str] = []
        started = time.monotonic()
        try:
            with captured_stderr_fd(log):
                self.session = ort.InferenceSession(str(artifact), sess_options=so, providers=names,
                                                    provider_options=[opts for _, opts in chain])
            session_seconds = time.monotonic() - started  # ORT's TensorRT EP builds its engine in here
        except Exception as exc:
            self._pass_on(log)
            refusal = _refusal_message(exc, names, log)
            if refusal:
                raise UnsupportedError(refusal) from None
            raise
        finally:
            so.log_severity_level = 3
        self._pass_on(log)
        self.placement = placement_summary(log, ep) if log else {
            "status": "unknown", "requested": ep,
            "reason": "nothing was captured from ONNX Runtime's log (file descriptor 2 could not be redirected)"}
        print(placement_line(self.placement), file=sys.stderr, flush=True)
        # A run's logger takes the session logger's severity (VERBOSE here) unless RunOptions sets one: errors only,
        # as the session had before.
        self.run_options = ort.RunOptions()
        self.run_options.log_severity_level = 3
        self.providers_used = self.session.get_providers()
        self._read_back_math()
        if provider == "tensorrt":
            self._engine = (chain[0][1], engines_before, engine_files(chain[0][1].get("trt_engine_cache_path")),
                            session_seconds)
            self._run_seconds = []
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
        self.quantization = None
        if request.precision == "int8":
            # An fp32 file labelled int8 must never be measured as int8: the quantizer stamps what it did.
            facts = self.session.get_modelmeta().custom_metadata_map.get(QUANTIZATION_METADATA_KEY)
            if facts is None:
                raise UnsupportedError(f"onnxruntime/{provider}: int8 needs a quantized artifact (models.quantize "
                                       f"stamps {QUANTIZATION_METADATA_KEY!r} in it); this file has none")
            self.quantization = json.loads(facts)

    def _apply_math(self, request: RunRequest, chain: list[tuple[str, dict[str, Any]]]) -> None:
        """The math policy's environment for the session's NVIDIA libraries, and the record of it."""
        gpu = request.provider in CUDA_PROVIDERS
        effective, settings = session_math(request.precision, request.provider, chain)
        environment, kept = apply_environment(effective, gpu, request.cuda_jit_cache)
        policy = policy_for(request.precision)
        self.math = math_facts(policy, gpu, settings, environment, policy_overrides(chain, policy), kept)
        if gpu:
            self.math["cuda_jit_cache"] = jit_cache_facts(request.cuda_jit_cache, gpu)

    def _read_back_math(self) -> None:
        """The CUDA EP's options as the session holds them (ORT's get_provider_options), beside what was asked."""
        if not self.math or self.provider_options[0][0] == CPU_EP:
            return
        with contextlib.suppress(Exception):
            held = self.session.get_provider_options().get(CUDA_EP) or {}
            self.math["read_back"] = {f"{CUDA_EP}.{k}": held.get(k) for k in ("use_tf32", "cudnn_conv_algo_search")
                                      if k in held}

    def on_window_start(self) -> None:
        if self._engine is not None:
            trt_options, before, after, seconds = self._engine
            self.engine = engine_build_facts(trt_options, before, after, seconds, self._run_seconds or [])
            self._run_seconds = None  # only warm-up runs are timed here

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

    @staticmethod
    def _pass_on(lines: list[str]) -> None:
        kept = log_passthrough(lines)
        if kept:
            print("\n".join(kept), file=sys.stderr, flush=True)

    def prepare(self, inputs: dict[str, np.ndarray]) -> Any:
        feed = self._feed(inputs)
        if self.provider not in CUDA_PROVIDERS:
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
            return self.session.run(self.output_names, prepared, self.run_options)
        if self._run_seconds is not None:  # tensorrt warm-up: the first run's cost is recorded
            started = time.monotonic()
            self.session.run_with_iobinding(prepared, self.run_options)
            self._run_seconds.append(time.monotonic() - started)
            return prepared
        self.session.run_with_iobinding(prepared, self.run_options)
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
        if self.provider == "openvino" and ort is not None:
            with contextlib.suppress(Exception):
                bundled = _bundled_openvino(ort)
                if bundled:
                    out["onnxruntime_openvino_libraries"] = bundled
        if self.provider in CUDA_PROVIDERS:
            for d in CUDA_DISTRIBUTIONS:
                with contextlib.suppress(metadata.PackageNotFoundError):
                    out[d] = metadata.version(d)
            if getattr(self, "preloaded", None):
                out["onnxruntime_preload_dlls"] = self.preloaded
        return out

    def devices(self) -> list[str]:
        if self.provider is None:
            return []
        if self.provider not in CUDA_PROVIDERS:
            return [cpu_device()]
        return [nvidia_gpu_name(self.device_id)]

    def provider_used(self) -> str | None:
        return self.providers_used[0] if self.provider else None

    def runtime_facts(self) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        if getattr(self, "quantization", None):
            out["quantization"] = self.quantization
        if getattr(self, "math", None):
            out["math"] = self.math
        if self.engine is None and self._engine is not None:  # the run ended before its window: what it had
            self.on_window_start()
        if self.engine:
            out["tensorrt"] = self.engine
        return out or None

    def node_placement(self) -> dict[str, Any] | None:
        return self.placement

    def peak_device_bytes(self) -> int | None:
        return None
