"""The runner protocol: what the orchestrator asks of a runner, and what a runner answers.

Both sides import this module, so it uses the standard library only: a runner's environment holds its framework
and numpy, nothing of the orchestrator's.  Requests and results are versioned JSON files.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

# Kinds of failure a runner reports; the orchestrator adds its own (timeout, crash, no-result, ...).
# "output": the run finished but its outputs hold non-finite values (an fp16 overflow, a NaN): not a measurement.
ERROR_KINDS = ("bad-request", "unsupported", "load", "runtime", "out-of-memory", "export", "output")


class ProtocolError(ValueError):
    """A request or result file that does not follow the protocol."""


@dataclass(frozen=True)
class Weights:
    """Seeded random weights (the offline default) or a local file in the framework's own format."""

    kind: str = "random"  # "random" | "file"
    seed: int = 0
    path: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("random", "file"):
            raise ProtocolError(f"weights.kind must be 'random' or 'file', not {self.kind!r}")
        if self.kind == "file" and not self.path:
            raise ProtocolError("weights.kind 'file' needs weights.path")


@dataclass(frozen=True)
class Budget:
    """Warm-up and measurement budget. The window ends once BOTH minimums are met (or max_seconds is reached)."""

    warmup_iterations: int = 5
    warmup_seconds: float = 0.0
    min_iterations: int = 10
    min_seconds: float = 0.0
    max_seconds: float | None = None


@dataclass(frozen=True)
class UserModelInput:
    name: str
    shape: list[int]  # the dimensions after the batch
    dtype: str
    range: list[float] | None = None  # [low, high) of its seeded values; None: standard normal floats, 0/1 ints


@dataclass(frozen=True)
class HfWeights:
    path: str  # a local .safetensors file
    size: int
    sha256: str


@dataclass(frozen=True)
class HfArchitecture:
    model_type: str
    config: dict[str, Any] | None = None  # the config.json's content; None: the model type's defaults
    weights: HfWeights | None = None  # None: seeded random weights


@dataclass(frozen=True)
class UserModel:
    """A user's own model (models.user_models): made from the config's [user_models.<name>] table by
    orchestrator/planning/user_models.py, carried by the config as its JSON and to the runner in a request, where
    it is registered as a model. Its JSON is the dataclass's fields (to_dict)."""

    name: str
    format: str  # "onnx" | "torch" | "keras" | "hf"
    loader: str  # what loads it in the runner
    inputs: list[UserModelInput]
    outputs: list[str]
    path: str | None = None  # the absolute file (hf: its config.json, or None for a model type's defaults)
    size: int | None = None
    sha256: str | None = None
    hf: HfArchitecture | None = None  # hf only
    declared: str = ""  # where the inputs came from (read from the file, the config's, or why the file is unreadable)

    @classmethod
    def from_entry(cls, data: dict[str, Any]) -> UserModel:
        """The typed model of its JSON (a config's entry, a request's user_model); ProtocolError if it is not one."""
        try:
            hf = data.get("hf")
            weights = hf.get("weights") if hf else None
            return cls(**{**data, "inputs": [UserModelInput(**i) for i in data["inputs"]],
                          "outputs": list(data["outputs"]),
                          "hf": HfArchitecture(**{**hf, "weights": HfWeights(**weights) if weights else None})
                          if hf else None})
        except (KeyError, TypeError, AttributeError) as exc:
            raise ProtocolError(f"user_model: not a user model entry ({type(exc).__name__}: {exc})") from None

    def files(self) -> list[str]:
        """The files a runner reads: the model's own file and, for hf, its safetensors weights."""
        return [p for p in (self.path, self.hf.weights.path if self.hf and self.hf.weights else None) if p]


def _typed_user_model(request: Any) -> None:
    # A request may be given the entry as JSON (from a file, a config): it holds the typed model either way.
    if isinstance(request.user_model, dict):
        object.__setattr__(request, "user_model", UserModel.from_entry(request.user_model))


@dataclass(frozen=True)
class RunRequest:
    run_id: str
    runtime: str  # framework/format/provider, e.g. "onnxruntime/onnx-from-torch/cpu"
    model: str
    batch_size: int
    result_path: str
    precision: str = "fp32"
    weights: Weights = field(default_factory=Weights)
    input_seed: int = 0
    budget: Budget = field(default_factory=Budget)
    model_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"seq_len": 128}
    artifact_path: str | None = None  # the model file for runtimes that load a converted model (ONNX)
    outputs_path: str | None = None  # if set, the runner saves the outputs of its last iteration (.npz)
    # The run's inputs written once by the Python side (runners/inputs_file.py: its inputs.json index), for a
    # runner in another language (a `@node` client); the Python runner makes its own and ignores this.
    inputs_path: str | None = None
    threads: int | None = None  # intra-op threads; None keeps the framework's default
    provider_options: dict[str, Any] = field(default_factory=dict)
    # A user's own model (its file, size, sha256, inputs, outputs and loader); None: a built-in model.
    user_model: UserModel | None = None
    # GPU runs: CUDA's JIT cache, kept across the runs of a sweep ({"path": folder, "max_bytes": limit}); None: the
    # driver's default (in a container, a tmpfs or read-only home: thrown away after every run).
    cuda_jit_cache: dict[str, Any] | None = None
    schema: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        _typed_user_model(self)

    @property
    def framework(self) -> str:
        return self.runtime.split("/")[0]

    @property
    def model_format(self) -> str:
        return self.runtime.split("/")[1]

    @property
    def provider(self) -> str:
        return self.runtime.split("/")[2]


@dataclass(frozen=True)
class ExportRequest:
    """Convert a model to ONNX in its SOURCE framework's environment."""

    framework: str
    model: str
    output_path: str
    result_path: str
    opset: int | None = None  # None: the exporter's default, recorded in the result
    weights: Weights = field(default_factory=Weights)
    model_options: dict[str, Any] = field(default_factory=dict)
    exporter: str | None = None  # None: the framework's measured-best exporter (torch: "torchscript" | "dynamo")
    target: str = "onnx"  # the file format converted to: "onnx" | "tflite" (runners.runtimes_table.EXPORTERS)
    user_model: UserModel | None = None  # as RunRequest.user_model
    schema: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        _typed_user_model(self)


@dataclass
class RunError:
    kind: str
    message: str
    traceback: str = ""


@dataclass
class RunResult:
    run_id: str
    runtime: str
    model: str
    batch_size: int
    status: str  # "ok" | "error"
    error: RunError | None = None
    versions: dict[str, str] = field(default_factory=dict)
    devices: list[str] = field(default_factory=list)
    provider_used: str | None = None
    threads: int | None = None
    window_start_ns: int | None = None  # time.monotonic_ns(): the host's clock, shared with containers
    window_end_ns: int | None = None
    iterations: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    load_seconds: float | None = None
    warmup_seconds: float | None = None
    warmup_iterations: int = 0
    engine_build_seconds: float | None = None  # first inference (engine build/autotune), inside warm-up
    peak_host_rss_bytes: int | None = None
    peak_device_bytes: int | None = None
    output_digest: dict[str, Any] | None = None
    # Start-up, on the same clock: the runner's process began, and its first inference (warm-up or window) began.
    process_start_ns: int | None = None
    first_inference_ns: int | None = None
    # ONNX Runtime only (None elsewhere, and in results written before it): where the session put the graph's nodes,
    # from ORT's own log at construction. {"status": "ok", "requested": ep, "by_provider": {ep: nodes},
    # "cpu_fallback_nodes": n, "cpu_op_types": {op: n}, "memcpy_nodes": n} or {"status": "unknown", "reason": ...}.
    node_placement: dict[str, Any] | None = None
    # What the runtime itself decided or saw, as the adapter reports it (None where it reports nothing): settings
    # it chose (OpenVINO's performance hint, streams, threads), a compiler's graphs, breaks and recompilations
    # (torch.compile), a quantized model's calibration. Kept as is in the record; keys are the adapter's.
    runtime_facts: dict[str, Any] | None = None
    schema: int = SCHEMA_VERSION


@dataclass
class ExportResult:
    framework: str
    model: str
    status: str
    output_path: str
    error: RunError | None = None
    opset: int | None = None
    exporter: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    seconds: float | None = None
    # Fidelity check done by the exporter: max |ONNX Runtime CPU - source framework| over all outputs on
    # make_inputs(seed 0, batch 2); None where ONNX Runtime is not importable in the source environment.
    max_abs_diff: float | None = None
    target: str = "onnx"  # the format written; for "tflite", max_abs_diff is the TFLite interpreter's (opset None)
    schema: int = SCHEMA_VERSION


@dataclass(frozen=True)
class QuantizeRequest:
    """Quantize an fp32 ONNX model to INT8 (models.quantize), in an environment with onnxruntime and onnx."""

    model: str  # the registry model (its calibration inputs come from models.inputs)
    source_path: str  # the fp32 .onnx
    output_path: str
    result_path: str
    method: str  # "static-qdq" | "dynamic"
    per_channel: bool = True
    activation_type: str = "QUInt8"  # onnxruntime.quantization.QuantType names
    weight_type: str = "QInt8"
    calibrate_method: str | None = "MinMax"  # static only
    calibration_seed: int | None = None  # static only: make_inputs(batch=calibration_size, seed=calibration_seed)
    calibration_size: int | None = None
    op_types: list[str] | None = None  # None: every op type the tool quantizes by default
    model_options: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION


@dataclass
class QuantizeResult:
    model: str
    status: str
    output_path: str
    error: RunError | None = None
    method: str | None = None
    # What was done: calibration (method, seed, size), per-channel, types, the op types quantized, node counts.
    quantization: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    seconds: float | None = None
    schema: int = SCHEMA_VERSION


_NESTED = {"weights": Weights, "budget": Budget, "error": RunError}


def to_dict(obj: Any) -> dict[str, Any]:
    return asdict(obj)


def from_dict(cls: type, data: dict[str, Any]):
    """Build a protocol dataclass from parsed JSON, refusing unknown fields and foreign schema versions."""
    if not isinstance(data, dict):
        raise ProtocolError(f"{cls.__name__}: expected a JSON object")
    schema = data.get("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION:
        raise ProtocolError(f"{cls.__name__}: schema {schema} is not the supported version {SCHEMA_VERSION}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ProtocolError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    kwargs = {}
    for name, value in data.items():
        nested = _NESTED.get(name)
        kwargs[name] = from_dict(nested, value) if nested and isinstance(value, dict) else value
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a missing required field
        raise ProtocolError(f"{cls.__name__}: {exc}") from None


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def write_json_atomic(path: str | os.PathLike, data: dict[str, Any]) -> None:
    """Write JSON through a temporary file and a rename, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.flush()
            # mkstemp makes the file private; a request must be readable by a container's runner (another uid).
            os.fchmod(fh.fileno(), 0o644 & ~_UMASK)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(cls: type, path: str | os.PathLike):
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ProtocolError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"{path}: not valid JSON ({exc})") from None
    return from_dict(cls, data)
