"""ONNX export from PyTorch (runs in the torch environment): `export_onnx(ExportRequest) -> ExportResult`.

One self-contained .onnx file per model (no side .onnx.data file; all three models are far below protobuf's 2 GB),
a dynamic batch axis named "batch" on every input and output, input/output names from the registry, other axes
(image size, seq_len) fixed from the model options.  The opset written is read back from the file.

Exporter: the legacy TorchScript exporter ("torchscript", torch.onnx.export(dynamo=False)) is the default, chosen
by measurement: its graphs ran 5-15% faster in ONNX Runtime CPU (the figures are in the README). The dynamo
exporter ("dynamo") is kept as an option (ExportRequest.exporter).  After exporting, the model is run in ONNX Runtime CPU (when importable) on
make_inputs(seed 0, batch 2) and compared with torch: max_abs_diff is recorded, and a mismatch beyond
1e-3 * max(1, max |torch output|) fails the export.
"""
from __future__ import annotations

import os
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

from models.export_common import ExportError, installed_versions, written_opset
from runners.protocol import ExportRequest, ExportResult, RunError

EXPORTERS = ("torchscript", "dynamo")
DEFAULT_EXPORTER = "torchscript"
VERIFY_BATCH = 2  # >1, so that no exporter specialises the batch axis to a constant
VERIFY_RTOL = 1e-3

RECORDED_DISTRIBUTIONS = ("torch", "transformers", "onnx", "onnxscript", "onnxruntime", "safetensors")


def _export(model, example: dict[str, Any], path: Path, exporter: str, opset: int | None,
            input_names: list[str], output_names: list[str]) -> None:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings and the legacy exporter's deprecation notice
        if exporter == "dynamo":
            batch = torch.export.Dim("batch")
            torch.onnx.export(
                model, (), str(path), kwargs=example, dynamo=True, input_names=input_names,
                output_names=output_names, dynamic_shapes={name: {0: batch} for name in input_names},
                opset_version=opset, external_data=False, optimize=True, verbose=False)
        else:
            dynamic_axes = {name: {0: "batch"} for name in input_names + output_names}
            kwargs = {} if opset is None else {"opset_version": opset}
            torch.onnx.export(
                model, tuple(example[name] for name in input_names), str(path), dynamo=False,
                input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes,
                do_constant_folding=True, **kwargs)


def verify_onnx(path: str | os.PathLike, model, inputs_np: dict[str, Any], output_names: list[str]) -> float | None:
    """max |ONNX Runtime CPU - torch| over all outputs; None if onnxruntime is not importable here."""
    try:
        import onnxruntime as ort
    except ModuleNotFoundError:
        return None
    import numpy as np
    import torch

    with torch.inference_mode():
        ref = model(**{k: torch.from_numpy(v) for k, v in inputs_np.items()})
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    declared = {i.name for i in session.get_inputs()}
    got = session.run(output_names, {k: v for k, v in inputs_np.items() if k in declared})
    worst, scale = 0.0, 1.0
    for name, r, g in zip(output_names, ref, got):
        r = r.numpy()
        if r.shape != g.shape:
            raise ExportError(f"output {name}: ONNX shape {g.shape} != torch shape {r.shape}")
        worst = max(worst, float(np.max(np.abs(r.astype(np.float64) - g.astype(np.float64)))))
        scale = max(scale, float(np.max(np.abs(r))))
    if not np.isfinite(worst) or worst > VERIFY_RTOL * scale:
        raise ExportError(f"ONNX Runtime output differs from torch by {worst:.3g} (limit {VERIFY_RTOL * scale:.3g})")
    return worst


def export_onnx(request: ExportRequest) -> ExportResult:
    """Export request.model to request.output_path; every failure becomes an error result (never raises)."""
    result = ExportResult(framework=request.framework, model=request.model, status="error",
                          output_path=request.output_path)
    result.versions = installed_versions(RECORDED_DISTRIBUTIONS)
    kind = "bad-request"
    tmp: Path | None = None
    t0 = time.monotonic()
    try:
        from models.inputs import make_inputs
        from models.registry import UnknownModelError, get_model

        if request.framework != "torch":
            raise ExportError(f"models.torch_export exports torch models, not {request.framework!r}", "unsupported")
        try:
            spec = get_model(request.model)
            options = spec.resolve_options(request.model_options)
        except UnknownModelError as exc:
            raise ExportError(str(exc), "bad-request") from None
        exporter = request.exporter or DEFAULT_EXPORTER
        if exporter not in EXPORTERS:
            raise ExportError(f"unknown exporter {exporter!r}; valid: {', '.join(EXPORTERS)}", "bad-request")
        result.exporter = f"torch.onnx.export(dynamo={exporter == 'dynamo'})"
        if request.opset is not None and (not isinstance(request.opset, int) or request.opset < 7):
            raise ExportError(f"opset must be an integer >= 7, not {request.opset!r}", "bad-request")

        kind = "load"
        from models.torch_models import build_torch_model

        model = build_torch_model(spec.name, options, request.weights)
        kind = "export"
        inputs_np = make_inputs(spec, VERIFY_BATCH, 0, options)
        import torch

        example = {k: torch.from_numpy(v) for k, v in inputs_np.items()}
        input_names = [i.name for i in spec.inputs]
        output_names = list(spec.outputs)
        out = Path(request.output_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".onnx")
        os.close(fd)
        tmp = Path(name)
        with torch.inference_mode(False), torch.no_grad():
            _export(model, example, tmp, exporter, request.opset, input_names, output_names)
        if Path(f"{tmp}.data").exists():
            raise ExportError("the exporter wrote a side .onnx.data file; expected one self-contained file")
        result.opset = written_opset(tmp)
        result.max_abs_diff = verify_onnx(tmp, model, inputs_np, output_names)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the artifact from a container running as another user
        os.replace(tmp, out)
        tmp = None
        result.status = "ok"
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a result
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        from runners.loop import classify

        k = exc.kind if isinstance(exc, ExportError) else classify(exc, kind)
        tail = "\n".join("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).splitlines()[-30:])
        result.error = RunError(kind=k, message=f"{type(exc).__name__}: {exc}"[:2000], traceback=tail[-4000:])
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
            Path(f"{tmp}.data").unlink(missing_ok=True)
        result.seconds = time.monotonic() - t0
    return result
