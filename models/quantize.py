"""INT8 quantization of an fp32 ONNX model with ONNX Runtime's own tool (onnxruntime.quantization).

A quantized model is a converted model derived from the fp32 ONNX artifact: produced once per (fp32 artifact,
settings) by `python -m runners quantize` in an environment with onnxruntime and onnx (images/onnxruntime), cached
by orchestrator/execution/quantized.py, and then loaded by every runtime that reads QDQ ONNX (ONNX Runtime CPU,
OpenVINO).

- Vision classifiers: static quantization in QDQ format (QuantizeLinear/DequantizeLinear pairs around the float
  ops, which ORT's CPU provider fuses into integer kernels and OpenVINO reads as its own low-precision graph),
  weights int8 per output channel, activations uint8, ranges calibrated (MinMax) on seeded synthetic inputs from
  models.inputs with a seed of their own, so that the measured inputs (the sweep's seed) are not the calibration's.
- BERT: dynamic quantization (int8 weights, activations quantized per batch at run time): the usual choice for
  transformer encoders, and it needs no calibration set.

What was done is recorded (QuantizeResult.quantization) and written into the model's metadata (METADATA_KEY), so
that a runner can tell a quantized model from an fp32 one and report the facts without the orchestrator.

Standard library, runners.protocol and models.registry at import time (the orchestrator reads settings_for);
numpy, onnx and onnxruntime are imported where they are used, in the quantizing environment.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from models.registry import get_model
from runners.protocol import QuantizeRequest, QuantizeResult, RunError

METADATA_KEY = "greenrt.quantization"  # the model's metadata_props entry holding the quantization facts (JSON)
STATIC_QDQ = "static-qdq"
DYNAMIC = "dynamic"
METHODS = (STATIC_QDQ, DYNAMIC)
# A seed of its own, far from the sweep seeds people use (0, 1, 42 ...): the calibration never sees the measured
# inputs, as a deployed model's calibration set is not its test set.
CALIBRATION_SEED = 1_000_003
CALIBRATION_SIZE = 16
QUANT_TYPES = ("QInt8", "QUInt8")
CALIBRATE_METHODS = ("MinMax", "Entropy", "Percentile", "Distribution")
_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnx", "numpy")
# Ops of a dynamically quantized graph that do integer work (the tool's IntegerOps output).
_INTEGER_OPS = frozenset({"MatMulInteger", "ConvInteger", "DynamicQuantizeLinear", "DynamicQuantizeMatMul",
                          "QAttention", "QGemm", "QLinearMatMul", "QEmbedLayerNormalization",
                          "DynamicQuantizeLSTM", "GatherBlockQuantized"})


@dataclass(frozen=True)
class QuantizationSettings:
    """How a model is quantized: every field is part of the quantized artifact's cache key."""

    method: str
    per_channel: bool
    activation_type: str
    weight_type: str
    calibrate_method: str | None  # None for dynamic quantization (no calibration)
    calibration_seed: int | None
    calibration_size: int | None
    op_types: tuple[str, ...] | None = None  # None: every op type the tool quantizes by default

    def to_request_fields(self) -> dict[str, Any]:
        data = asdict(self)
        data["op_types"] = list(self.op_types) if self.op_types is not None else None
        return data


def settings_for(model: str) -> QuantizationSettings:
    """The quantization greenrt measures for a registry model (pure): static QDQ for image classifiers, dynamic
    for the rest (BERT)."""
    spec = get_model(model)
    if spec.task == "image-classification":
        return QuantizationSettings(method=STATIC_QDQ, per_channel=True, activation_type="QUInt8",
                                    weight_type="QInt8", calibrate_method="MinMax",
                                    calibration_seed=CALIBRATION_SEED, calibration_size=CALIBRATION_SIZE)
    return QuantizationSettings(method=DYNAMIC, per_channel=False, activation_type="QUInt8", weight_type="QInt8",
                                calibrate_method=None, calibration_seed=None, calibration_size=None)


class QuantizeError(RuntimeError):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def validate(request: QuantizeRequest) -> None:
    """Refuse (bad-request) what the tool would misread, before anything is imported."""
    def bad(message: str) -> QuantizeError:
        return QuantizeError("bad-request", message)

    if request.method not in METHODS:
        raise bad(f"method {request.method!r} is not one of {', '.join(METHODS)}")
    for name in ("activation_type", "weight_type"):
        if getattr(request, name) not in QUANT_TYPES:
            raise bad(f"{name} {getattr(request, name)!r} is not one of {', '.join(QUANT_TYPES)}")
    if request.method == STATIC_QDQ:
        if request.calibrate_method not in CALIBRATE_METHODS:
            raise bad(f"calibrate_method {request.calibrate_method!r} is not one of {', '.join(CALIBRATE_METHODS)}")
        if not isinstance(request.calibration_size, int) or request.calibration_size < 1:
            raise bad(f"calibration_size must be a positive integer, not {request.calibration_size!r}")
        if not isinstance(request.calibration_seed, int):
            raise bad(f"calibration_seed must be an integer, not {request.calibration_seed!r}")
    try:
        get_model(request.model).resolve_options(request.model_options)
    except ValueError as exc:
        raise bad(str(exc)) from None
    if not Path(request.source_path).is_file():
        raise QuantizeError("load", f"fp32 model {request.source_path} does not exist")


def _op_counts(model) -> Counter:
    return Counter(node.op_type for node in model.graph.node)


def quantized_op_types(model, method: str) -> dict[str, int]:
    """The op types that compute on quantized tensors (pure on a ModelProto): in QDQ, the ops that read a
    DequantizeLinear's output (ORT fuses each such DQ -> op -> Q into an integer kernel); in a dynamically
    quantized graph, its integer ops."""
    if method == DYNAMIC:
        return dict(sorted(Counter(n.op_type for n in model.graph.node if n.op_type in _INTEGER_OPS).items()))
    dequantized = {out for n in model.graph.node if n.op_type == "DequantizeLinear" for out in n.output}
    counts = Counter(n.op_type for n in model.graph.node
                     if n.op_type not in ("QuantizeLinear", "DequantizeLinear") and dequantized.intersection(n.input))
    return dict(sorted(counts.items()))


def _fixed_batch(model) -> int | None:
    """The first input's batch dimension where the graph fixes it (a dim_value), else None (symbolic)."""
    dims = model.graph.input[0].type.tensor_type.shape.dim if model.graph.input else []
    return int(dims[0].dim_value) if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0 else None


def calibration_batches(model_name: str, options: dict[str, Any], seed: int, size: int, batch: int):
    """The calibration set: make_inputs(batch=size, seed) split into consecutive batches of `batch` rows (a last
    smaller batch dropped only where the graph fixes its batch size). Deterministic: same seed, same set."""
    from models.inputs import make_inputs

    spec = get_model(model_name)
    arrays = make_inputs(spec, size, seed, options)
    for start in range(0, size, batch):
        chunk = {name: a[start:start + batch] for name, a in arrays.items()}
        if next(iter(chunk.values())).shape[0] == batch:
            yield chunk


def _reader(batches, input_names: set[str]):
    from onnxruntime.quantization import CalibrationDataReader

    class SeededReader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(batches)
            self.seen = 0

        def get_next(self):
            batch = next(self.batches, None)
            if batch is None:
                return None
            self.seen += 1
            return {k: v for k, v in batch.items() if k in input_names}

    return SeededReader()


def _quantize(request: QuantizeRequest, staging: Path) -> dict[str, Any]:
    """Quantize request.source_path into staging/model.onnx; returns the facts recorded."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = onnx.load(request.source_path, load_external_data=False)
    input_names = {i.name for i in source.graph.input}
    op_types = list(request.op_types) if request.op_types is not None else None
    pre = staging / "preprocessed.onnx"
    # ORT's recommended pre-processing (shape inference + basic graph optimisation, so that Conv+BN and the like
    # are folded before ranges are taken). Symbolic shape inference needs sympy, which the environment lacks.
    quant_pre_process(request.source_path, str(pre), skip_symbolic_shape=True)
    out = staging / "model.onnx"
    facts: dict[str, Any] = {
        "method": request.method, "format": "QDQ" if request.method == STATIC_QDQ else "IntegerOps (dynamic)",
        "per_channel": request.per_channel, "weight_type": request.weight_type,
        "activation_type": request.activation_type if request.method == STATIC_QDQ else "QUInt8 (dynamic, per batch)",
        "op_types_requested": op_types or "the tool's default",
        "preprocess": "quant_pre_process (ONNX shape inference, ORT basic optimisation; no symbolic shape inference)",
    }
    if request.method == STATIC_QDQ:
        batch = _fixed_batch(source) or 1
        reader = _reader(calibration_batches(request.model, request.model_options, request.calibration_seed,
                                             request.calibration_size, batch), input_names)
        quantize_static(str(pre), str(out), reader, quant_format=QuantFormat.QDQ, op_types_to_quantize=op_types,
                        per_channel=request.per_channel, activation_type=QuantType[request.activation_type],
                        weight_type=QuantType[request.weight_type],
                        calibrate_method=CalibrationMethod[request.calibrate_method])
        facts["calibration"] = {
            "method": request.calibrate_method, "seed": request.calibration_seed, "size": request.calibration_size,
            "batch": batch, "batches_seen": reader.seen,
            "inputs": f"models.inputs.make_inputs({request.model}, batch={request.calibration_size}, "
                      f"seed={request.calibration_seed}) in batches of {batch}"}
    else:
        quantize_dynamic(str(pre), str(out), op_types_to_quantize=op_types, per_channel=request.per_channel,
                         weight_type=QuantType[request.weight_type])
        facts["calibration"] = None
    pre.unlink(missing_ok=True)
    quantized = onnx.load(str(out))
    counts = _op_counts(quantized)
    facts["quantized_op_types"] = quantized_op_types(quantized, request.method)
    facts["quantize_nodes"] = counts.get("QuantizeLinear", 0) + counts.get("DynamicQuantizeLinear", 0)
    facts["dequantize_nodes"] = counts.get("DequantizeLinear", 0)
    facts["source_nodes"], facts["nodes"] = len(source.graph.node), len(quantized.graph.node)
    if not facts["quantized_op_types"]:
        raise QuantizeError("export", f"the tool quantized no op of {request.model} ({request.method}); the graph "
                                      f"has {', '.join(sorted(counts))}")
    entry = quantized.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(facts, sort_keys=True)
    onnx.save(quantized, str(out))
    facts["bytes"], facts["source_bytes"] = out.stat().st_size, _model_bytes(Path(request.source_path))
    return facts


def _model_bytes(path: Path) -> int:
    """The fp32 model's size with its external-data file(s) beside it."""
    return path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(path.name + "*.data"))


def read_quantization(path: str | os.PathLike) -> dict[str, Any] | None:
    """The facts a quantized model carries (METADATA_KEY), or None for a model greenrt did not quantize."""
    import onnx

    for entry in onnx.load(str(path), load_external_data=False).metadata_props:
        if entry.key == METADATA_KEY:
            return json.loads(entry.value)
    return None


def installed_versions() -> dict[str, str]:
    out = {}
    for dist in _DISTRIBUTIONS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def run_quantize(request: QuantizeRequest) -> QuantizeResult:
    """Quantize, then rename the model into request.output_path: a half-written model never carries that name."""
    t0 = time.monotonic()
    result = QuantizeResult(model=request.model, status="error", output_path=request.output_path,
                            method=request.method, versions=installed_versions())
    try:
        validate(request)
        output = Path(request.output_path)
        output.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=output.parent, prefix=".quantize.") as tmp:
            facts = _quantize(request, Path(tmp))
            os.replace(Path(tmp) / "model.onnx", output)
    except QuantizeError as exc:
        result.error = RunError(kind=exc.kind, message=str(exc))
    except ModuleNotFoundError as exc:
        result.error = RunError(kind="unsupported", message=f"quantization needs onnxruntime and onnx in this "
                                                            f"environment ({exc})")
    except Exception as exc:  # the tool's own words, with its kind
        import traceback

        result.error = RunError(kind="export", message=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    else:
        result.status, result.quantization = "ok", facts
    result.seconds = time.monotonic() - t0
    return result
