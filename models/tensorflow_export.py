"""ONNX export from TensorFlow (runs in the tensorflow environment): `export_onnx(ExportRequest) -> ExportResult`.

Converter: tf2onnx's `convert.from_function` on a tf.function of the Keras model (models.tensorflow_models.
serving_function) whose input_signature has a dynamic batch dimension; the opset is the request's, or tf2onnx's
default, and the opset actually written is read back from the file.

The ONNX graph has the registry's interface, the same as the models exported from the other frameworks, so one
ONNX Runtime runner serves them all:
- images: `pixel_values` float32 NCHW (tf2onnx's inputs_as_nchw puts a Transpose at the graph input, which its
  optimiser then pushes into the convolutions), output `logits`;
- BERT: `input_ids`, `attention_mask`, `token_type_ids` int64 (cast to Keras-Hub's int32 inside the graph),
  outputs `last_hidden_state`, `pooler_output`;
- axis 0 of every input and output is the symbolic dimension "batch".

One self-contained .onnx file when the model is under protobuf's 2 GB (all three are: BERT-base is ~0.44 GB);
above that the weights go to a side `<name>.data` file (ONNX external data).  Files are written under temporary
names and renamed into place.

Before the file enters the cache it is loaded in ONNX Runtime (CPU) and run on make_inputs(seed 0, batch 2) against
TensorFlow's own outputs on the same inputs; models.fidelity.compare_outputs decides.  max_abs_diff is recorded.
A model ONNX Runtime refuses (e.g. an op it has no kernel for: FINDINGS saw `Erfc` from transformers'
TFBertModel), or whose outputs are not faithful, fails the export with kind "export" and the converter's / ONNX
Runtime's own message: a legitimate study outcome, never papered over.

Cost on the 2-core development VM (2026-11, peak RSS of the whole `python -m runners export` process, /usr/bin/time):
mobilenet_v2 8 s / 1.3 GB, resnet50 15 s / 4.8 GB, bert-base-uncased 70 s / 20.7 GB.  tf2onnx holds several
copies of the frozen graph at once; BERT-base needs a machine with ~24 GB free: run at most one such export at a
time, and never beside another memory-heavy process.
"""
from __future__ import annotations

import contextlib
import gc
import logging
import os
import shutil
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from models.export_common import ExportError, installed_versions, written_opset
from runners.protocol import ExportRequest, ExportResult, RunError

EXPORTERS = ("tf2onnx",)
DEFAULT_EXPORTER = "tf2onnx"
VERIFY_BATCH = 2  # >1, so that no converter specialises the batch axis to a constant
TWO_GB = 2**31 - 1


RECORDED_DISTRIBUTIONS = ("tensorflow", "keras", "keras-hub", "tf2onnx", "onnx", "onnxruntime", "protobuf")


class _ErrorLog(logging.Handler):
    """Collects tf2onnx's ERROR records: from_function converts with continue_on_error=True, so an op it cannot
    map is logged and left in the graph, to be refused later by ONNX Runtime."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.messages.append(" ".join(record.getMessage().split())[:300])


def _hide_gpus(tf) -> None:
    """Convert and verify on the CPU (tf2onnx freezes on /cpu:0 anyway); never grab a GPU for an export."""
    with contextlib.suppress(RuntimeError):  # TensorFlow already initialised in this process
        tf.config.set_visible_devices([], "GPU")


def _set_interface(model_proto, input_names: list[str], output_names: list[str]) -> None:
    """Check the graph's inputs/outputs are the registry's, put the outputs in the registry's order, and name axis 0
    of each "batch"."""
    graph = model_proto.graph
    initializers = {i.name for i in graph.initializer}
    got_in = [i.name for i in graph.input if i.name not in initializers]
    got_out = [o.name for o in graph.output]
    if sorted(got_in) != sorted(input_names) or sorted(got_out) != sorted(output_names):
        raise ExportError(f"converted graph has inputs {got_in} and outputs {got_out}; the registry names "
                          f"{input_names} and {output_names}")
    by_name = {o.name: o for o in graph.output}
    ordered = [type(by_name[n])() for n in output_names]
    for copy, name in zip(ordered, output_names):
        copy.CopyFrom(by_name[name])
    del graph.output[:]
    graph.output.extend(ordered)
    for value in [*graph.input, *graph.output]:
        if value.name in initializers:
            continue
        dims = value.type.tensor_type.shape.dim
        if not dims:
            raise ExportError(f"converted graph's {value.name} has no shape")
        if dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            raise ExportError(f"converted graph's {value.name} has a fixed batch axis ({dims[0].dim_value})")
        dims[0].dim_param = "batch"


def _reference(fn, spec, inputs_np: dict[str, Any]) -> dict[str, Any]:
    """TensorFlow's outputs on the registry's inputs (images transposed NCHW -> NHWC as the adapter does)."""
    import numpy as np
    import tensorflow as tf

    kinds = {i.name: i.kind for i in spec.inputs}
    feed = {}
    for name, array in inputs_np.items():
        if kinds[name] == "image":
            array = np.ascontiguousarray(np.transpose(array, (0, 2, 3, 1)))
        feed[name] = tf.constant(array)
    return {name: t.numpy() for name, t in fn(**feed).items()}


def verify_onnx(path: str | os.PathLike, reference: dict[str, Any], inputs_np: dict[str, Any]) -> dict:
    """compare_outputs(TensorFlow, ONNX Runtime CPU) on the same inputs; raises ExportError if ONNX Runtime refuses
    the model or the outputs are not faithful.  onnxruntime is a pinned requirement of the tensorflow environment."""
    import onnxruntime as ort

    from models.fidelity import compare_outputs

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types (Fail, InvalidGraph, ...)
        raise ExportError(f"ONNX Runtime {ort.__version__} cannot load the converted model: "
                          f"{type(exc).__name__}: {' '.join(str(exc).split())}") from exc
    names = list(reference)
    declared = {i.name for i in session.get_inputs()}
    try:
        got = session.run(names, {k: v for k, v in inputs_np.items() if k in declared})
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"ONNX Runtime {ort.__version__} cannot run the converted model: "
                          f"{type(exc).__name__}: {' '.join(str(exc).split())}") from exc
    del session
    try:
        report = compare_outputs(reference, dict(zip(names, got)))
    except ValueError as exc:  # a shape mismatch
        raise ExportError(f"converted model does not reproduce TensorFlow: {exc}") from exc
    if not report["faithful"]:
        worst = [o for o in report["outputs"] if not o["faithful"]]
        detail = "; ".join(f"{o['name']}: max |diff| {o['max_abs_error']:.3g} (tolerance {o['tolerance']:.3g}), "
                           f"cosine {o['cosine_similarity']:.6f}" for o in worst)
        raise ExportError(f"ONNX Runtime output is not faithful to TensorFlow: {detail}")
    return report


def _write(model_proto, out: Path) -> list[Path]:
    """Write `model_proto` under temporary names next to `out`; returns [onnx tmp, (data tmp)] for the rename.

    Single file below 2 GB; otherwise ONNX external data in `<out.name>.data` (location relative to the model)."""
    import onnx

    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".onnx")
    os.close(fd)
    tmp = Path(name)
    if model_proto.ByteSize() < TWO_GB:
        tmp.write_bytes(model_proto.SerializeToString())
        return [tmp]
    data_name = f"{out.name}.data"
    tmp_dir = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.stem}.data."))
    onnx.save_model(model_proto, str(tmp_dir / out.name), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data_name, size_threshold=1024)
    tmp.unlink()
    return [tmp_dir / out.name, tmp_dir / data_name]


@contextlib.contextmanager
def _environ(name: str, value: str):
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


def _raised_in_optimizer(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if f"tf2onnx{os.sep}optimizer" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


def _convert(tf2onnx, fn, signature, opset: int | None, nchw: list[str]):
    """(model_proto, mode): tf2onnx.convert.from_function, first without its optimiser safety net.

    By default tf2onnx deep-copies the whole graph, weights included, before each of its ~20 optimiser passes so it
    can skip a pass that raises; those copies drive peak memory (ResNet-50: 7.8 -> 4.9 GB, measured 2026-11).
    TF2ONNX_CATCH_ERRORS (tf2onnx reads only whether it is set) turns the copies off; the passes and their result are
    the same.  Only if a pass then raises is the conversion redone with tf2onnx's default (mode "optimizer errors
    caught"), so the written model is always what tf2onnx's default conversion gives.
    """
    kwargs = dict(input_signature=signature, opset=opset, inputs_as_nchw=nchw or None)
    try:
        with _environ("TF2ONNX_CATCH_ERRORS", "FALSE"):
            model_proto, _ = tf2onnx.convert.from_function(fn, **kwargs)
        return model_proto, "lean"
    except Exception as exc:  # noqa: BLE001
        if not _raised_in_optimizer(exc):
            raise
        logging.getLogger(__name__).warning("tf2onnx optimiser pass failed (%s); converting again with tf2onnx's "
                                            "default, which skips failing passes", exc)
    gc.collect()
    saved = os.environ.pop("TF2ONNX_CATCH_ERRORS", None)
    try:
        model_proto, _ = tf2onnx.convert.from_function(fn, **kwargs)
    finally:
        if saved is not None:
            os.environ["TF2ONNX_CATCH_ERRORS"] = saved
    return model_proto, "optimizer errors caught"


def export_onnx(request: ExportRequest) -> ExportResult:
    """Export request.model to request.output_path; every failure becomes an error result (never raises)."""
    result = ExportResult(framework=request.framework, model=request.model, status="error",
                          output_path=request.output_path)
    result.versions = installed_versions(RECORDED_DISTRIBUTIONS)
    kind = "bad-request"
    temps: list[Path] = []
    log = _ErrorLog()
    t0 = time.monotonic()
    try:
        from models.inputs import make_inputs
        from models.registry import UnknownModelError, get_model

        if request.framework != "tensorflow":
            raise ExportError(f"models.tensorflow_export exports tensorflow models, not {request.framework!r}",
                              "unsupported")
        try:
            spec = get_model(request.model)
            options = spec.resolve_options(request.model_options)
        except UnknownModelError as exc:
            raise ExportError(str(exc), "bad-request") from None
        exporter = request.exporter or DEFAULT_EXPORTER
        if exporter not in EXPORTERS:
            raise ExportError(f"unknown exporter {exporter!r}; valid: {', '.join(EXPORTERS)}", "bad-request")
        if request.opset is not None and (not isinstance(request.opset, int) or isinstance(request.opset, bool)
                                          or request.opset < 7):
            raise ExportError(f"opset must be an integer >= 7, not {request.opset!r}", "bad-request")
        result.exporter = f"tf2onnx.convert.from_function (tf2onnx {result.versions.get('tf2onnx', '?')})"

        kind = "load"
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
        import tensorflow as tf

        _hide_gpus(tf)
        from models.tensorflow_models import build_tensorflow_model, input_signature, serving_function

        model = build_tensorflow_model(spec.name, options, request.weights)

        kind = "export"
        import tf2onnx

        input_names = [i.name for i in spec.inputs]
        output_names = list(spec.outputs)
        signature = input_signature(spec, None, options, layout="NHWC", ids_dtype="int64")
        fn = tf.function(serving_function(model, spec), input_signature=signature)
        inputs_np = make_inputs(spec, VERIFY_BATCH, 0, options)
        reference = _reference(fn, spec, inputs_np)
        nchw = [i.name for i in spec.inputs if i.kind == "image"]
        tf2onnx_logger = logging.getLogger("tf2onnx")
        tf2onnx_logger.addHandler(log)
        try:
            model_proto, mode = _convert(tf2onnx, fn, signature, request.opset, nchw)
        finally:
            tf2onnx_logger.removeHandler(log)
        if mode != "lean":
            result.exporter += f" [{mode}]"
        del fn, model
        gc.collect()
        _set_interface(model_proto, input_names, output_names)

        out = Path(request.output_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        temps = _write(model_proto, out)
        del model_proto
        gc.collect()
        result.opset = written_opset(temps[0])
        try:
            report = verify_onnx(temps[0], reference, inputs_np)
        except ExportError as exc:
            if log.messages:  # what tf2onnx could not convert is the cause of what ONNX Runtime refuses
                raise ExportError(f"{exc} [tf2onnx: {'; '.join(log.messages[:3])}]") from exc
            raise
        result.max_abs_diff = float(report["max_abs_error"])
        for tmp in temps:
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the artifact from a container running as another user
        if len(temps) == 2:  # external data first: the .onnx never points at a missing .data
            os.replace(temps[1], out.parent / temps[1].name)
        os.replace(temps[0], out)
        if len(temps) == 2:
            shutil.rmtree(temps[0].parent, ignore_errors=True)
        temps = []
        result.status = "ok"
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a result
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        from runners.loop import classify

        k = exc.kind if isinstance(exc, ExportError) else classify(exc, kind)
        message = str(exc) if isinstance(exc, ExportError) else f"{type(exc).__name__}: {exc}"
        tail = "\n".join("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).splitlines()[-30:])
        result.error = RunError(kind=k, message=message[:2000], traceback=tail[-4000:])
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        if len(temps) == 2:
            shutil.rmtree(temps[0].parent, ignore_errors=True)
        result.seconds = time.monotonic() - t0
    return result
