"""The one export flow, for every source framework and target format: `run_export(ExportRequest, SourceExporter)
-> ExportResult`.  ONNX is every framework's target; TFLite (for LiteRT) is TensorFlow's too.

The flow owns what every export does the same way:
- validation: the framework, the model and its options, the exporter, the opset (`bad-request`, `unsupported`);
- the recorded versions (from the installed distributions' metadata) and the time the export took;
- the phases, which give an exception its kind (`load` while the model is built, `export` after), classified by
  runners.failures as the measured loop classifies a run's failures;
- the write: temporary names next to the output, renamed into place only once verified (ONNX external data in
  `<name>.data` for a model above protobuf's 2 GB, renamed first, so the .onnx never points at a missing file);
- the opset read back from the written file, which must be the one asked for (ONNX; a TFLite file has none);
- the verification: the written file run in ONNX Runtime CPU (graph optimisation ALL) on make_inputs(seed 0,
  batch 2) against the source framework's own outputs on the same inputs, judged by models.fidelity.compare_outputs
  (the one fidelity criterion); a model ONNX Runtime refuses, or whose outputs are not faithful, fails the export
  with kind "export" and ONNX Runtime's / the comparison's own words.  max_abs_diff is recorded (None where
  onnxruntime is not importable in the source environment).  A .tflite file is verified the same way in the
  TFLite interpreter with its default XNNPACK delegate (runners.adapters.litert_interpreter.TfliteModel, what
  the LiteRT runtime runs), on the same inputs, against the same criterion.

A framework's exporter (models.torch_export, models.tensorflow_export, models.mxnet_export) is a SourceExporter
that fills in only what differs: its exporters and opsets, building the model, running it for the reference
outputs, and converting it to an ONNX ModelProto (or, for target "tflite", the .tflite flatbuffer's bytes) with the
registry's interface.

Standard library and runners.protocol/runners.failures at import time; numpy, onnx and onnxruntime are imported
where they are used, inside the source framework's environment.
"""
from __future__ import annotations

import contextlib
import gc
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from runners.failures import RunnerError, classify, error_of
from runners.protocol import ExportRequest, ExportResult, Weights

VERIFY_BATCH = 2  # >1, so that a batch axis the converter specialised to a constant fails verification
MIN_OPSET = 7
TWO_GB = 2**31 - 1  # protobuf's limit on one serialised message


class ExportError(RunnerError):
    """A failed export with its kind (runners.protocol.ERROR_KINDS): bad-request, unsupported, load or export."""

    kind = "export"


def installed_versions(distributions: tuple[str, ...]) -> dict[str, str]:
    """Versions of the distributions that are installed (from their metadata: nothing is imported)."""
    out = {}
    for dist in distributions:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def written_opset(path: str | os.PathLike) -> int | None:
    """The default-domain opset recorded in an ONNX file (weights not loaded)."""
    import onnx

    for entry in onnx.load(str(path), load_external_data=False).opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return None


class SourceExporter:
    """What one source framework's export needs beyond the shared flow; subclasses set the names and the hooks."""

    framework: str  # the ExportRequest.framework it serves
    target: str = "onnx"  # the ExportRequest.target it serves: a key of TARGETS
    source: str  # the framework as messages name it ("torch", "TensorFlow", "MXNet")
    exporters: tuple[str, ...]  # valid ExportRequest.exporter values, the default first
    distributions: tuple[str, ...]  # recorded in ExportResult.versions
    # A format the exporter writes and verifies itself (models/torch_artifacts.py); None: TARGETS[target].
    target_format: TargetFormat | None = None

    def resolve_opset(self, requested: int | None) -> int | None:
        """The opset to convert to (None: the converter's default); ExportError (bad-request) for an invalid one."""
        if requested is not None and (not isinstance(requested, int) or isinstance(requested, bool)
                                      or requested < MIN_OPSET):
            raise ExportError(f"opset must be an integer >= {MIN_OPSET}, not {requested!r}", "bad-request")
        return requested

    def describe(self, exporter: str, versions: dict[str, str]) -> str:
        """ExportResult.exporter: the converter, as called; asked once the request is valid, and again after
        convert() (which may have learnt more about how it converted)."""
        raise NotImplementedError

    def load(self, spec, options: dict[str, Any], weights: Weights) -> Any:
        """The source model (failures here are kind "load")."""
        raise NotImplementedError

    def reference(self, model: Any, spec, options: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        """The source model's outputs on the registry's (NCHW) inputs, as numpy arrays named by spec.outputs."""
        raise NotImplementedError

    def convert(self, model: Any, spec, options: dict[str, Any], inputs: dict[str, Any], reference: dict[str, Any],
                opset: int | None, exporter: str, workdir: Path):
        """An onnx ModelProto with the registry's interface: its input and output names, outputs in spec.outputs'
        order, axis 0 of each the symbolic "batch".  `workdir` is a scratch folder, removed afterwards."""
        raise NotImplementedError

    def verification_context(self) -> str | None:
        """What the converter said that explains a failed verification (appended to the error), if anything."""
        return None


def run_export(request: ExportRequest, source: SourceExporter) -> ExportResult:
    """Export request.model to request.output_path; every failure becomes an error result (never raises)."""
    result = ExportResult(framework=request.framework, model=request.model, status="error",
                          output_path=request.output_path, target=request.target)
    result.versions = installed_versions(source.distributions)
    phase = "bad-request"
    temps: list[Path] = []
    workdir: Path | None = None
    t0 = time.monotonic()
    try:
        from models.inputs import make_inputs
        from models.registry import UnknownModelError, get_model

        if request.framework != source.framework:
            raise ExportError(f"{type(source).__module__} exports {source.framework} models, not "
                              f"{request.framework!r}", "unsupported")
        if request.target != source.target:
            raise ExportError(f"{type(source).__name__} converts to {source.target}, not {request.target!r}",
                              "unsupported")
        target = source.target_format or TARGETS[source.target]
        try:
            spec = get_model(request.model)
            options = spec.resolve_options(request.model_options)
        except UnknownModelError as exc:
            raise ExportError(str(exc), "bad-request") from None
        exporter = request.exporter or source.exporters[0]
        if exporter not in source.exporters:
            raise ExportError(f"unknown exporter {exporter!r}; valid: {', '.join(source.exporters)}", "bad-request")
        opset = source.resolve_opset(request.opset)
        result.exporter = source.describe(exporter, result.versions)

        phase = "load"
        model = source.load(spec, options, request.weights)

        phase = "export"
        inputs = make_inputs(spec, VERIFY_BATCH, 0, options)
        reference = source.reference(model, spec, options, inputs)
        out = Path(request.output_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.stem}.work."))
        model_proto = source.convert(model, spec, options, inputs, reference, opset, exporter, workdir)
        result.exporter = source.describe(exporter, result.versions)
        del model  # the converters hold copies of the graph: free the source model before writing (TF BERT)
        gc.collect()
        temps = target.write(model_proto, out)
        del model_proto
        gc.collect()
        result.opset = target.written_opset(temps[0])
        if opset is not None and result.opset != opset:
            raise ExportError(f"the converter wrote opset {result.opset}, not the requested {opset}")
        try:
            report = target.verify(temps[0], reference, inputs, source.source)
        except ExportError as exc:
            context = source.verification_context()
            if context:
                raise ExportError(f"{exc} [{context}]") from exc
            raise
        if report is not None:
            result.max_abs_diff = float(report["max_abs_error"])
        _rename_into_place(temps, out)
        temps = []
        result.status = "ok"
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a result
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        kind = exc.kind if isinstance(exc, ExportError) else classify(exc, phase)
        result.error = error_of(exc, kind)
    finally:
        _remove(temps)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
        result.seconds = time.monotonic() - t0
    return result


def verify_onnx(path: str | os.PathLike, reference: dict[str, Any], inputs: dict[str, Any],
                source: str = "the source framework") -> dict[str, Any] | None:
    """compare_outputs(source framework, ONNX Runtime CPU) on the same inputs: the report, or None where onnxruntime
    is not importable here.  ExportError if ONNX Runtime cannot load or run the model, or it is not faithful."""
    try:
        import onnxruntime as ort
    except ModuleNotFoundError:
        return None
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
        got = session.run(names, {k: v for k, v in inputs.items() if k in declared})
    except Exception as exc:  # noqa: BLE001 - NOT_IMPLEMENTED, a kernel failing at run time, ...
        raise ExportError(f"ONNX Runtime {ort.__version__} cannot run the converted model: "
                          f"{type(exc).__name__}: {' '.join(str(exc).split())}") from exc
    del session
    return judged_faithful(reference, dict(zip(names, got)), source, "the exported model", "ONNX Runtime CPU")


def judged_faithful(reference: dict, got: dict, source: str, what: str, where: str) -> dict:
    """The fidelity report of a converted model's outputs against its source's; ExportError unless faithful."""
    from models.fidelity import compare_outputs

    try:
        report = compare_outputs(reference, got)
    except ValueError as exc:  # a shape differs
        raise ExportError(f"the converted model does not reproduce {source}: {exc}") from exc
    if not report["faithful"]:
        worst = "; ".join(f"{o['name']}: max |diff| {o['max_abs_error']:.3g} (tolerance {o['tolerance']:.3g}), "
                          f"cosine {o['cosine_similarity']:.6f}" for o in report["outputs"] if not o["faithful"])
        raise ExportError(f"{what} is not faithful to {source} in {where}: {worst}")
    return report


def _write(model_proto, out: Path) -> list[Path]:
    """Write `model_proto` under temporary names next to `out`; returns [onnx tmp, (data tmp)] for the rename.

    One self-contained file below 2 GB; otherwise ONNX external data in `<out.name>.data`, its location relative to
    the model, both in a temporary folder next to `out`."""
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".onnx")
    os.close(fd)
    tmp = Path(name)
    if model_proto.ByteSize() < TWO_GB:
        try:
            tmp.write_bytes(model_proto.SerializeToString())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return [tmp]
    import onnx

    tmp.unlink()
    data_name = f"{out.name}.data"
    tmp_dir = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.stem}.data."))
    try:
        onnx.save_model(model_proto, str(tmp_dir / out.name), save_as_external_data=True,
                        all_tensors_to_one_file=True, location=data_name, size_threshold=1024)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return [tmp_dir / out.name, tmp_dir / data_name]


def _rename_into_place(temps: list[Path], out: Path) -> None:
    for tmp in temps:
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the artifact from a container running as another user
    if len(temps) == 2:  # external data first: the .onnx never points at a missing .data
        os.replace(temps[1], out.parent / temps[1].name)
    os.replace(temps[0], out)
    if len(temps) == 2:
        shutil.rmtree(temps[0].parent, ignore_errors=True)


def _remove(temps: list[Path]) -> None:
    for tmp in temps:
        tmp.unlink(missing_ok=True)
    if len(temps) == 2:
        shutil.rmtree(temps[0].parent, ignore_errors=True)


def verify_tflite(path: str | os.PathLike, reference: dict[str, Any], inputs: dict[str, Any],
                  source: str = "the source framework") -> dict[str, Any] | None:
    """compare_outputs(source framework, the TFLite interpreter with its default delegate) on the same inputs: the
    report, or None where no TFLite interpreter is importable here.  ExportError if the interpreter cannot load or
    run the model, or it is not faithful."""
    from runners.adapters.litert_interpreter import TfliteModel, interpreter_class

    found = interpreter_class()
    if found is None:
        return None
    cls, distribution = found
    names = list(reference)
    try:
        model = TfliteModel(cls, str(path), None)
        model.bind(inputs)
        model.invoke()
        got = model.results(names)
    except Exception as exc:  # noqa: BLE001 - the interpreter raises RuntimeError/ValueError with its own words
        raise ExportError(f"the TFLite interpreter ({distribution}) cannot run the converted model: "
                          f"{type(exc).__name__}: {' '.join(str(exc).split())}") from exc
    del model
    return judged_faithful(reference, got, source, "the converted model", "the TFLite interpreter")


def _write_bytes(content: bytes, out: Path) -> list[Path]:
    """A converter's file (a .tflite flatbuffer) under a temporary name next to `out`, for the rename."""
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=out.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return [Path(name)]


@dataclass(frozen=True)
class TargetFormat:
    """How the flow writes, reads back and verifies one target format."""

    write: Callable[[Any, Path], list[Path]]  # (what convert() returned, output path) -> temporary files
    written_opset: Callable[[Path], int | None]
    verify: Callable[..., dict[str, Any] | None]  # (path, reference, inputs, source) -> fidelity report


TARGETS: dict[str, TargetFormat] = {
    "onnx": TargetFormat(_write, written_opset, verify_onnx),
    "tflite": TargetFormat(_write_bytes, lambda path: None, verify_tflite),
}
