"""onnxruntime/onnx-from-<framework>/{cpu,cuda,tensorrt,openvino}: an ONNX Runtime InferenceSession on
request.artifact_path.

The requested execution provider must be the one ONNX Runtime actually puts first; a silent fallback to the CPU
would measure the wrong thing, so it is reported as "unsupported" instead.  On cuda/tensorrt the inputs are bound
once as device OrtValues and the outputs are bound to the device (IO binding): no transfer inside the window.
openvino is Intel's OpenVINO execution provider on the CPU (device_type CPU; the onnxruntime-openvino wheel, in its
own environment): host memory, no binding; it takes each supported subgraph as one fused node.

ONNX Runtime also gives each graph node it cannot run on the requested provider to the CPU provider, silently.  The
session is therefore built with its log at VERBOSE, fd 2 captured (only during construction), and the "Node
placements" section ORT prints there is recorded per run (node_placement): nodes per provider, and the op types
that went to the CPU.  `session.*` keys in provider_options are ORT session config entries; with
session.disable_cpu_ep_fallback = "1" a GPU session that would put any node on the CPU is refused.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from models.quantize import METADATA_KEY as QUANTIZATION_METADATA_KEY
from runners.adapters.contract import Adapter, import_framework
from runners.adapters.ort_options import (CUDA_EP, cuda_ep_options, engine_build_facts, engine_files,
                                          policy_overrides, session_math, tensorrt_profile)
from runners.failures import BadRequestError, RunnerError, UnsupportedError
from runners.hostinfo import cpu_device, nvidia_gpu_name
from runners.math_policy import apply_environment, jit_cache_facts, policy_for
from runners.math_policy import facts as math_facts
from runners.protocol import RunRequest

EP_NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider",
            "openvino": "OpenVINOExecutionProvider"}
CPU_EP = "CPUExecutionProvider"
OPENVINO_EP = "OpenVINOExecutionProvider"
# Providers whose inputs and outputs live in CUDA memory (IO binding, CUDA libraries preloaded).
CUDA_PROVIDERS = ("cuda", "tensorrt")
SESSION_CONFIG_PREFIX = "session."  # provider_options keys handed to SessionOptions.add_session_config_entry
DISABLE_CPU_FALLBACK = "session.disable_cpu_ep_fallback"

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


# ---------------------------------------------------------------------------------------------------------------
# Where ORT put the nodes: its VERBOSE session log at construction.
#
# onnxruntime/core/framework/session_state.cc, VerifyEachNodeIsAssignedToAnEp (1.32 prints it from line 1598ff):
#   LOGS(logger, VERBOSE) << "Node placements";
#   one provider:  LOGS(logger, VERBOSE) << " All nodes placed on [" << provider << "]. Number of nodes: " << n;
#   otherwise, per provider (unordered_map order):
#                  LOGS(logger, VERBOSE) << " Node(s) placed on [" << provider << "]. Number of nodes: " << n;
#                  and per node LOGS(logger, VERBOSE) << "  " << node.OpType() + " (" + node.Name() + ")";
# Each message follows ORT's default sink prefix "<time> [V:onnxruntime:<logid>, session_state.cc:<line> <function>] ".
# Nodes of subgraphs (If/Loop/Scan bodies) are counted with the main graph's; a TensorRT engine is one fused node.

_PLACEMENT_MESSAGE = re.compile(r"VerifyEachNodeIsAssignedToAnEp\] (?P<message>.*?)(?:\x1b\[m)?\s*$")
_ALL_PLACED = re.compile(r"^\s*All nodes placed on \[(?P<ep>[^\]]+)\]\. Number of nodes: (?P<n>\d+)\s*$")
_SOME_PLACED = re.compile(r"^\s*Node\(s\) placed on \[(?P<ep>[^\]]+)\]\. Number of nodes: (?P<n>\d+)\s*$")
_NO_KERNEL = re.compile(r"kernel not found in registries for Op type: (?P<op>[A-Za-z0-9_.]+)")
_ORT_RECORD = re.compile(r"\[(?P<severity>[VIWEF]):onnxruntime:")
_PY_WARNING = re.compile(r"^\S.*:\d+: \w*Warning: ")
_MEMCPY_OPS = ("MemcpyToHost", "MemcpyFromHost")


class PlacementParseError(ValueError):
    """ORT's construction log has no usable "Node placements" section."""


def parse_node_placements(lines: Iterable[str] | str) -> dict[str, Any]:
    """The last "Node placements" section of an ORT VERBOSE log (pure).

    Returns {"by_provider": {ep: nodes}, "op_types": {ep: {op_type: n}}, "listed": bool, "mismatch": [str]}; op
    types are only listed by ORT when more than one provider holds nodes ("listed" False otherwise); "mismatch" names
    providers whose listed nodes do not add up to ORT's count.  Raises PlacementParseError.
    """
    if isinstance(lines, str):
        lines = lines.splitlines()
    section: dict[str, Any] | None = None
    current: str | None = None
    for line in lines:
        match = _PLACEMENT_MESSAGE.search(line)
        if not match:
            continue
        message = match["message"]
        if message.strip() == "Node placements":
            section, current = {"by_provider": {}, "op_types": {}, "listed": False}, None
            continue
        if section is None:
            continue
        if (m := _ALL_PLACED.match(message)) is not None:
            section["by_provider"][m["ep"]] = int(m["n"])
            current = None
        elif (m := _SOME_PLACED.match(message)) is not None:
            current = m["ep"]
            section["by_provider"][current] = int(m["n"])
            section["op_types"].setdefault(current, Counter())
            section["listed"] = True
        elif current is not None and message.startswith("  ") and message.strip():
            section["op_types"][current][message.strip().split(" (", 1)[0]] += 1
    if section is None:
        raise PlacementParseError("ONNX Runtime's VERBOSE session log has no 'Node placements' section "
                                  "(a minimal build, or a log format this parser does not know)")
    if not section["by_provider"]:
        raise PlacementParseError("ONNX Runtime's 'Node placements' section names no provider")
    # The counts are ORT's; a listing that does not add up to them (a node name across lines) is said, not trusted.
    section["mismatch"] = [f"ORT lists {sum(ops.values())} of the {section['by_provider'][ep]} node(s) on {ep}"
                           for ep, ops in section["op_types"].items() if sum(ops.values()) != section["by_provider"][ep]]
    section["op_types"] = {ep: dict(ops) for ep, ops in section["op_types"].items()}
    return section


def _by_count(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def placement_summary(lines: Iterable[str] | str, requested_ep: str) -> dict[str, Any]:
    """What the run records as node_placement (pure; never raises: an unreadable log is status "unknown").

    cpu_fallback_nodes counts the nodes on CPUExecutionProvider when another provider was requested (0 for a cpu
    run: there the CPU is no fallback); cpu_op_types are their op types, most frequent first.
    """
    try:
        parsed = parse_node_placements(lines)
    except PlacementParseError as exc:
        return {"status": "unknown", "reason": str(exc), "requested": requested_ep}
    except Exception as exc:  # noqa: BLE001 - recording the placement must never fail a run
        return {"status": "unknown", "reason": f"parsing ONNX Runtime's log failed: {type(exc).__name__}: {exc}",
                "requested": requested_ep}
    by_provider = _by_count(parsed["by_provider"])
    fallback = requested_ep != CPU_EP
    summary: dict[str, Any] = {
        "status": "ok", "requested": requested_ep, "by_provider": by_provider,
        "cpu_fallback_nodes": by_provider.get(CPU_EP, 0) if fallback else 0,
        "cpu_op_types": _by_count(parsed["op_types"].get(CPU_EP, {})) if fallback else {},
        "memcpy_nodes": sum(n for ops in parsed["op_types"].values() for op, n in ops.items() if op in _MEMCPY_OPS),
    }
    notes = list(parsed["mismatch"])
    if fallback and summary["cpu_fallback_nodes"] and not parsed["listed"]:
        notes.append("every node is on CPUExecutionProvider; ORT lists no op types when one provider has all")
    if requested_ep == OPENVINO_EP and by_provider.get(OPENVINO_EP):
        notes.append(f"{OPENVINO_EP} runs each subgraph it takes as one fused node: its count is subgraphs, not the "
                     f"model's ONNX nodes")
    if notes:
        summary["note"] = "; ".join(notes)
    return summary


def placement_line(summary: dict[str, Any]) -> str:
    """One line for runner.log."""
    if summary.get("status") != "ok":
        return f"onnxruntime: node placement unknown: {summary.get('reason')}"
    counts = ", ".join(f"{ep} {n}" for ep, n in summary["by_provider"].items())
    line = f"onnxruntime: node placement: {counts}"
    if summary["cpu_fallback_nodes"]:
        ops = ", ".join(f"{op}:{n}" for op, n in summary["cpu_op_types"].items())
        line += f"; CPU fallback: {summary['cpu_fallback_nodes']} node(s)" + (f" ({ops})" if ops else "")
    return line


def log_passthrough(lines: Iterable[str]) -> list[str]:
    """The captured lines worth keeping in runner.log: ORT warnings and errors, and anything not ORT's VERBOSE/INFO.

    A line without an ORT record prefix continues the record before it (multi-line messages), except Python
    warnings, which are kept.
    """
    keep, out = True, []
    for line in lines:
        record = _ORT_RECORD.search(line[:160])
        if record:
            keep = record["severity"] in "WEF"
        elif _PY_WARNING.match(line):
            keep = True
        if keep:
            out.append(line)
    return out


def missing_kernel_ops(lines: Iterable[str]) -> list[str]:
    """Op types an execution provider logged "kernel not found in registries" for (a hint when a session fails)."""
    return sorted({m["op"] for line in lines if (m := _NO_KERNEL.search(line))})


@contextlib.contextmanager
def captured_stderr_fd(lines: list[str]):
    """Capture what is written to file descriptor 2 inside the block (ORT's C++ logger writes there) into `lines`.

    fd 2 is restored on the way out, also when the block raises; where fd 2 cannot be duplicated nothing is
    captured (the placement is then recorded as unknown).
    """
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines[:] = tmp.read().decode("utf-8", errors="replace").splitlines()


def _refusal_message(exc: Exception, chain: list[str], lines: list[str]) -> str | None:
    """A clear message when ORT refused the session because disable_cpu_ep_fallback met a node for the CPU."""
    text = str(exc)
    if "fallback to CPU EP has been explicitly disabled" not in text and "assigned to the default CPU EP" not in text:
        return None
    ops = missing_kernel_ops(lines)
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
