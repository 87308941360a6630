"""ONNX and TFLite export from TensorFlow (runs in the tensorflow environment): `export_onnx(ExportRequest) ->
ExportResult`, and `export_tflite` for LiteRT (at the end of this module).

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

The flow is models.export_flow's: before the file enters the cache it is loaded in ONNX Runtime (CPU) and run on
make_inputs(seed 0, batch 2) against TensorFlow's own outputs on the same inputs; models.fidelity.compare_outputs
decides.  max_abs_diff is recorded.
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
from pathlib import Path
from typing import Any

from models.export_flow import ExportError, SourceExporter, run_export
from runners.protocol import ExportRequest, ExportResult, Weights


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


class TensorFlowExporter(SourceExporter):
    framework = "tensorflow"
    source = "TensorFlow"
    exporters = ("tf2onnx",)
    distributions = ("tensorflow", "keras", "keras-hub", "tf2onnx", "onnx", "onnxruntime", "protobuf")
    ids_dtype = "int64"  # the token ids ONNX graphs take (cast to Keras-Hub's int32 inside the graph)

    def __init__(self) -> None:
        self._log = _ErrorLog()
        self._fn = None  # the tf.function the reference ran, converted next
        self._signature = None
        self._mode = "lean"

    def describe(self, exporter: str, versions: dict[str, str]) -> str:
        described = f"tf2onnx.convert.from_function (tf2onnx {versions.get('tf2onnx', '?')})"
        return described if self._mode == "lean" else f"{described} [{self._mode}]"

    def load(self, spec, options: dict[str, Any], weights: Weights):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
        import tensorflow as tf

        _hide_gpus(tf)
        from models.tensorflow_models import build_tensorflow_model

        return build_tensorflow_model(spec.name, options, weights)

    def reference(self, model, spec, options: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        """TensorFlow's outputs on the registry's inputs (images transposed NCHW -> NHWC as the adapter does), from
        the tf.function that convert() hands to tf2onnx."""
        import numpy as np
        import tensorflow as tf

        from models.tensorflow_models import input_signature, serving_function

        self._signature = input_signature(spec, None, options, layout="NHWC", ids_dtype=self.ids_dtype)
        self._fn = tf.function(serving_function(model, spec), input_signature=self._signature)
        kinds = {i.name: i.kind for i in spec.inputs}
        feed = {}
        for name, array in inputs.items():
            if kinds[name] == "image":
                array = np.ascontiguousarray(np.transpose(array, (0, 2, 3, 1)))
            elif kinds[name] != "user" and np.issubdtype(array.dtype, np.integer):  # a user's: as declared
                array = array.astype(self.ids_dtype)  # the signature's: int64 for ONNX, int32 for TFLite
            feed[name] = tf.constant(array)
        return {name: t.numpy() for name, t in self._fn(**feed).items()}

    def convert(self, model, spec, options, inputs, reference, opset, exporter, workdir: Path):
        import tf2onnx

        nchw = [i.name for i in spec.inputs if i.kind == "image"]
        tf2onnx_logger = logging.getLogger("tf2onnx")
        tf2onnx_logger.addHandler(self._log)
        try:
            model_proto, self._mode = _convert(tf2onnx, self._fn, self._signature, opset, nchw)
        finally:
            tf2onnx_logger.removeHandler(self._log)
            self._fn = None  # with the flow's reference to the model, the last one: its memory goes before the write
            gc.collect()
        _set_interface(model_proto, [i.name for i in spec.inputs], list(spec.outputs))
        return model_proto

    def verification_context(self) -> str | None:
        # what tf2onnx could not convert is the cause of what ONNX Runtime refuses
        return f"tf2onnx: {'; '.join(self._log.messages[:3])}" if self._log.messages else None


def export_onnx(request: ExportRequest) -> ExportResult:
    """Export request.model to request.output_path; every failure becomes an error result (never raises)."""
    return run_export(request, TensorFlowExporter())


# -- TFLite, for LiteRT -------------------------------------------------------------------------------------------
#
# Converter: tf.lite.TFLiteConverter.from_concrete_functions on the same tf.function of the Keras model, its
# variables frozen into constants first (convert_variables_to_constants_v2).  Given the Keras 3 model as its
# trackable object instead, the converter keeps every weight as a resource variable (VAR_HANDLE/READ_VARIABLE ops,
# a 0.2 MB file for MobileNetV2) that nothing initialises: the interpreter returns NaN (seen 2026-12, TF 2.21).
# Builtin TFLite ops only (TFLITE_BUILTINS): what LiteRT runs by itself.  A model that needs TensorFlow's own ops
# (SELECT_TF_OPS, the Flex delegate LiteRT's wheel does not carry) fails with the converter's own words.
#
# Interface: the registry's input and output names (the signature serving_default); images NHWC, as TensorFlow's
# native runtime takes them (the LiteRT adapter transposes outside the window, as the native adapter does); token
# ids int32 (Keras-Hub's); axis 0 of every input and output dynamic (-1), so one file serves every batch size.
# fp32: no optimisation (quantization) is asked of the converter.


class TensorFlowLiteExporter(TensorFlowExporter):
    target = "tflite"
    exporters = ("tflite-converter",)
    distributions = ("tensorflow", "keras", "keras-hub", "flatbuffers", "protobuf")
    ids_dtype = "int32"

    def resolve_opset(self, requested: int | None) -> int | None:
        if requested is not None:
            raise ExportError(f"opset {requested!r}: an opset is an ONNX version; a TFLite conversion takes none",
                              "bad-request")
        return None

    def describe(self, exporter: str, versions: dict[str, str]) -> str:
        return (f"tf.lite.TFLiteConverter.from_concrete_functions, frozen, TFLITE_BUILTINS "
                f"(tensorflow {versions.get('tensorflow', '?')})")

    def convert(self, model, spec, options, inputs, reference, opset, exporter, workdir: Path) -> bytes:
        import tensorflow as tf
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        concrete = self._fn.get_concrete_function()
        frozen = convert_variables_to_constants_v2(concrete)
        structure = concrete.structured_outputs

        # The frozen function returns a flat list; this one gives the outputs their registry names again (the
        # signature's output names) and takes the inputs by the signature's TensorSpec names.
        @tf.function(input_signature=self._signature)
        def serving(*args):
            return tf.nest.pack_sequence_as(structure, frozen(*args))  # noqa: F821 (del'd in finally, after use)

        converter = tf.lite.TFLiteConverter.from_concrete_functions([serving.get_concrete_function()], tf.Module())
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            return converter.convert()
        finally:
            self._fn = None
            del frozen, serving, converter
            gc.collect()

    def verification_context(self) -> str | None:
        return None


def export_tflite(request: ExportRequest) -> ExportResult:
    """Convert request.model to a .tflite file at request.output_path; every failure becomes an error result."""
    return run_export(request, TensorFlowLiteExporter())
