"""openvino/onnx-from-<framework>/cpu: OpenVINO's own runtime on a converted ONNX model, CPU plugin.

load reads the .onnx through OpenVINO's ONNX frontend (Core.read_model: the conversion to an ov.Model), fixes its
input shapes to the run's (fix_shapes: the exported batch axis is dynamic) and compiles it for "CPU"
(Core.compile_model); both steps are timed and reported apart in runtime_facts, and both lie inside load_seconds,
outside the window.  What the compiled model settled on (performance hint, streams, inference
threads, inference precision, ...) is read back from it and recorded, beside the device's own defaults and what
greenrt asked for: OpenVINO decides much of this itself, and a run is only comparable with what it really used.

Settings are OpenVINO's defaults except two that the request itself fixes: threads (request.threads ->
INFERENCE_NUM_THREADS) and the precision.  On a CPU with bf16 support the CPU plugin's default inference precision
is bf16, which changes the arithmetic of an fp32 request (MobileNetV2's logits moved by 5e-2, far outside the
fidelity tolerance); an fp32 run therefore asks for f32, and provider option inference_precision_hint overrides it
(the device's default is recorded either way).  The other provider options (PROVIDER_OPTIONS) map to OpenVINO
properties one to one.
"""
from __future__ import annotations

import contextlib
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from runners.adapters.contract import Adapter, import_framework
from runners.failures import BadRequestError, RunnerError, UnsupportedError
from runners.hostinfo import cpu_device
from runners.protocol import RunRequest
from runners.runtimes_table import OPENVINO_OPTIONS

DEVICE = "CPU"
# The choices are the runtimes table's (which a sweep's config is checked against); the numbers are checked here.
_CHOICES = {option.key: option.choices for option in OPENVINO_OPTIONS}
PERFORMANCE_HINTS: tuple[str, ...] = _CHOICES["performance_hint"] or ()
NUM_STREAMS_WORDS = ("AUTO", "NUMA")
PRECISION_HINTS: tuple[str, ...] = _CHOICES["inference_precision_hint"] or ()
# greenrt precision -> the CPU plugin's INFERENCE_PRECISION_HINT asked for unless inference_precision_hint is given.
# int8: the QDQ model's quantized operations run in int8 whatever the hint; f32 keeps the rest as the fp32 model's.
PRECISION_FOR = {"fp32": "f32", "int8": "f32"}

# provider option -> (OpenVINO property, what it accepts: a tuple of words, or "positive-int", or both).
PROVIDER_OPTIONS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "performance_hint": ("PERFORMANCE_HINT", PERFORMANCE_HINTS, False),
    "num_streams": ("NUM_STREAMS", NUM_STREAMS_WORDS, True),
    "inference_num_threads": ("INFERENCE_NUM_THREADS", (), True),
    "inference_precision_hint": ("INFERENCE_PRECISION_HINT", PRECISION_HINTS, False),
}
# Read back from the compiled model (and, where the device has it, its default) for runtime_facts.
READ_BACK = ("PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS", "INFERENCE_PRECISION_HINT",
             "EXECUTION_MODE_HINT", "OPTIMAL_NUMBER_OF_INFER_REQUESTS", "EXECUTION_DEVICES", "ENABLE_CPU_PINNING",
             "ENABLE_HYPER_THREADING", "SCHEDULING_CORE_TYPE")
DEVICE_DEFAULTS = ("PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS", "INFERENCE_PRECISION_HINT",
                   "EXECUTION_MODE_HINT")


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _accepts(words: tuple[str, ...], integer: bool) -> str:
    choices = [*words, *(["a positive integer"] if integer else [])]
    return " | ".join(choices)


def provider_option_refusal(options: dict[str, Any], threads: int | None = None) -> str | None:
    """Why these provider options cannot configure OpenVINO's CPU plugin (one line), or None (pure).

    Unknown keys, values outside each option's choices, and an inference_num_threads that contradicts the
    request's threads are refused, naming what is valid."""
    unknown = sorted(set(options) - set(PROVIDER_OPTIONS))
    if unknown:
        return (f"openvino: unknown provider option(s) {', '.join(unknown)}; valid: "
                f"{', '.join(f'{k} ({_accepts(w, i)})' for k, (_, w, i) in PROVIDER_OPTIONS.items())}")
    for key, value in options.items():
        _, words, integer = PROVIDER_OPTIONS[key]
        if integer and _is_positive_int(value):
            continue
        if isinstance(value, str) and value in words:
            continue
        return f"openvino: provider option {key} = {value!r} is not one of {_accepts(words, integer)}"
    asked = options.get("inference_num_threads")
    if threads is not None and asked is not None and asked != threads:
        return (f"openvino: provider option inference_num_threads = {asked} contradicts threads = {threads} "
                f"(threads sets OpenVINO's INFERENCE_NUM_THREADS): give one of them")
    return None


def compile_config(request: RunRequest) -> dict[str, Any]:
    """The OpenVINO properties greenrt passes to compile_model for this request (pure): the provider options by
    property name, threads, and the precision's inference precision unless the options name one."""
    config = {PROVIDER_OPTIONS[key][0]: value for key, value in request.provider_options.items()}
    if request.threads is not None:
        config["INFERENCE_NUM_THREADS"] = request.threads
    config.setdefault("INFERENCE_PRECISION_HINT", PRECISION_FOR[request.precision])
    return config


def jsonable(value: Any) -> Any:
    """An OpenVINO property value as JSON: element types by their short name (bf16), enums by name."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    type_name = getattr(value, "get_type_name", None)
    if callable(type_name):
        return type_name()
    name = getattr(value, "name", None)
    return name if isinstance(name, str) else str(value)


def _property(source: Any, key: str, *device: str) -> Any:
    """source.get_property(*device, key) as JSON; {"unavailable": why} when OpenVINO does not answer it."""
    try:
        return jsonable(source.get_property(*device, key))
    except Exception as exc:  # noqa: BLE001 - a property this version lacks is said, never fatal
        return {"unavailable": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"}


def fix_shapes(model: Any, request: RunRequest) -> dict[str, Any]:
    """Reshape `model` (an ov.Model, before compile_model) to the request's input shapes; what was done, as JSON.

    An exported model keeps a dynamic batch axis; compiled as it is, the CPU plugin runs a dynamic-shape graph,
    which took about 10 % more CPU time per inference at MobileNetV2 batch 1 (BENCHMARKS.md), where benchmark_app
    compiles the static shape it is given with -shape.  The run's shapes are known here (the registry's, at the
    request's batch and model options), so the model is compiled for exactly those.  A model that refuses the
    reshape is compiled as declared, and the reason is recorded: never a failed run for it."""
    from models.registry import get_model

    spec = get_model(request.model)
    options = spec.resolve_options(request.model_options)
    shapes = {inp.name: list(spec.input_shape(inp, request.batch_size, options)) for inp in spec.inputs}
    by_port = {}
    for port in model.inputs:
        name = next((n for n in shapes if n in port.get_names()), None)
        if name is None:  # an input the registry does not provide: _bind_ports refuses it with the reason
            return {"applied": False, "reason": f"the model's input {port.get_any_name()!r} has no registry shape"}
        by_port[port] = shapes[name]
    try:
        model.reshape(by_port)
    except Exception as exc:  # noqa: BLE001 - OpenVINO's reshape errors have no common type; said, never fatal
        reason = str(exc).strip().splitlines()
        return {"applied": False, "reason": f"{type(exc).__name__}: {reason[0][:200] if reason else ''}"}
    return {"applied": True, "shapes": shapes}


class OpenVinoAdapter(Adapter):
    def __init__(self) -> None:
        self.ov = None
        self.core = None
        self.compiled = None
        self.infer_request = None
        self.inputs: list[tuple[str, Any, np.dtype]] = []  # (registry name, port, dtype)
        self.outputs: list[tuple[str, Any]] = []
        self._arrays: list[np.ndarray] = []  # the prepared inputs, shared with OpenVINO's tensors: kept alive here
        self.facts: dict[str, Any] | None = None

    def check_request(self, request: RunRequest) -> None:
        super().check_request(request)
        reason = provider_option_refusal(request.provider_options, request.threads)
        if reason:
            raise BadRequestError(reason)

    def load(self, request: RunRequest) -> None:
        ov = self.ov = import_framework("openvino")
        if not request.artifact_path:
            raise BadRequestError(f"runtime {request.runtime} needs artifact_path (the exported .onnx model)")
        artifact = Path(request.artifact_path)
        if not artifact.is_file():
            raise RunnerError(f"artifact {artifact} does not exist", kind="load")
        core = self.core = ov.Core()
        if DEVICE not in core.available_devices:
            raise UnsupportedError(f"OpenVINO {ov.get_version()} sees no {DEVICE} device (available: "
                                   f"{', '.join(core.available_devices) or 'none'})")
        defaults = {key: _property(core, key, DEVICE) for key in DEVICE_DEFAULTS}
        config = compile_config(request)
        t0 = time.monotonic_ns()
        model = core.read_model(str(artifact))
        declared = {port.get_any_name(): str(port.get_partial_shape()) for port in model.inputs}
        static = fix_shapes(model, request)
        t1 = time.monotonic_ns()
        self.compiled = core.compile_model(model, DEVICE, config)
        t2 = time.monotonic_ns()
        self.infer_request = self.compiled.create_infer_request()
        self.provider = request.provider
        self._bind_ports(request)
        used = {key: _property(self.compiled, key) for key in READ_BACK}
        threads = used.get("INFERENCE_NUM_THREADS")
        self.n_threads = threads if _is_positive_int(threads) else request.threads
        self.facts = {
            "device": DEVICE,
            "full_device_name": _property(core, "FULL_DEVICE_NAME", DEVICE),
            "read_model_seconds": (t1 - t0) / 1e9,  # the ONNX frontend's conversion to an ov.Model, and its reshape
            "compile_model_seconds": (t2 - t1) / 1e9,
            "compile_model_end_ns": t2,  # time.monotonic_ns(), the window's clock: compiled before the window
            "requested": {k: jsonable(v) for k, v in config.items()},
            "compiled": {key.lower(): value for key, value in used.items()},
            "device_defaults": {key.lower(): value for key, value in defaults.items()},
            "model_inputs": declared,  # as the file declares them (a dynamic batch axis reads "?")
            # The shapes compiled: the request's, fixed before compile_model (fix_shapes), or why they could not be.
            "compiled_inputs": {name: str(port.get_partial_shape()) for name, port, _ in self.inputs},
            "static_shapes": static,
        }

    def _bind_ports(self, request: RunRequest) -> None:
        """Match the compiled model's inputs and outputs with the registry's names (a port has a set of names)."""
        from models.registry import get_model

        spec = get_model(request.model)
        wanted_in = [i.name for i in spec.inputs]
        self.inputs = []
        for port in self.compiled.inputs:
            names = port.get_names()
            name = next((n for n in wanted_in if n in names), None)
            if name is None:
                raise RunnerError(f"the model declares input {port.get_any_name()!r} that the registry does not "
                                  f"provide (have: {', '.join(wanted_in)})", kind="load")
            self.inputs.append((name, port, np.dtype(port.get_element_type().to_dtype())))
        self.outputs = []
        for port in self.compiled.outputs:
            names = port.get_names()
            name = next((n for n in spec.outputs if n in names), None) or port.get_any_name()
            self.outputs.append((name, port))

    def prepare(self, inputs: dict[str, np.ndarray]) -> Any:
        ov = self.ov
        self._arrays = []
        for name, port, dtype in self.inputs:
            array = np.ascontiguousarray(inputs[name], dtype=dtype)
            self._arrays.append(array)
            # Shared memory: the tensor is the array, so nothing is copied per inference.
            self.infer_request.set_tensor(port, ov.Tensor(array, shared_memory=True))
        return self.infer_request

    def run(self, prepared: Any) -> Any:
        prepared.infer()  # synchronous: returns when the outputs are written
        return prepared

    def to_numpy(self, outputs: Any) -> dict[str, np.ndarray]:
        return {name: np.array(outputs.get_tensor(port).data, copy=True) for name, port in self.outputs}

    def versions(self) -> dict[str, str]:
        out = {}
        if self.ov is not None:
            out["openvino"] = self.ov.get_version()
        for dist in ("openvino", "openvino-telemetry"):
            with contextlib.suppress(metadata.PackageNotFoundError):
                out[f"{dist}_package"] = metadata.version(dist)
        return out

    def devices(self) -> list[str]:
        return [cpu_device()] if self.provider else []

    def runtime_facts(self) -> dict[str, Any] | None:
        return self.facts
