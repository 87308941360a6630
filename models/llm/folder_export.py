"""The flow a generative conversion shares: a Hugging Face checkpoint folder in, a runtime's model folder out.

`run_folder_export(request, conversion) -> ExportResult` owns what every such conversion does the same way:
- validation (`bad-request`): the precision against the runtime's own, the checkpoint folder (config.json and a
  .safetensors file), a writable output's parent;
- the write: the runtime's converter writes into a temporary sibling of output_path, the folder is loaded and run
  in the runtime (the conversion's `verify`), and only then renamed into place, so a half-written or unloadable
  folder never stands at output_path;
- the record: seconds (conversion and verification apart), the installed versions, and what the conversion says of
  itself (the runtime's quantization scheme: CTranslate2's compute type, ORT GenAI's block size and accuracy level).

Fidelity against torch is not the converter's: the orchestrator's reference run judges each run (models/fidelity).
Standard library and runners/ at import time; each conversion imports its runtime inside its functions.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

from models.export_flow import installed_versions
from runners.failures import BadRequestError, RunnerError, classify, error_of
from runners.protocol import ExportRequest, ExportResult


@dataclass(frozen=True)
class FolderConversion:
    """One runtime's conversion: its target, precisions and the two steps only it knows."""

    target: str  # ExportRequest.target: "ort-genai", "ct2"
    exporter: str  # how the result names the tool ("onnxruntime_genai.models.builder", ...)
    precisions: dict[str, str]  # greenrt precision -> the runtime's own name for it ("int4" -> "int4", "int8" -> ...)
    distributions: tuple[str, ...]  # recorded versions
    # (checkpoint folder, temporary output folder, the runtime's precision name) -> facts about what was written.
    convert: Callable[[Path, Path, str], dict[str, Any]]
    # (written folder) -> facts of a real load and run in the runtime; raises when it does not load or run.
    verify: Callable[[Path], dict[str, Any]]


def checkpoint_refusal(source: str | None) -> str | None:
    """Why `source` is not a Hugging Face checkpoint folder a converter can read (None when it is). Pure but for
    reading the folder's listing."""
    if not source:
        return "source_path (the Hugging Face checkpoint folder) is required for a generative conversion"
    folder = Path(source)
    if not folder.is_dir():
        return f"source_path {source} is not a folder"
    if not (folder / "config.json").is_file():
        return f"source_path {source} has no config.json (not a Hugging Face checkpoint folder)"
    if not any(folder.glob("*.safetensors")):
        return f"source_path {source} has no .safetensors weights"
    return None


def _error(request: ExportRequest, exc: BaseException, kind: str) -> ExportResult:
    return ExportResult(framework=request.framework, model=request.model, status="error",
                        output_path=request.output_path, error=error_of(exc, classify(exc, kind)),
                        target=request.target)


def _with_facts(result: ExportResult, facts: dict[str, Any]) -> ExportResult:
    # The protocol's field for what a conversion says of itself (llm-core's ExportResult.quantization).
    names = {f.name for f in fields(ExportResult)}
    if "quantization" in names:
        result.quantization = facts
    return result


def run_folder_export(request: ExportRequest, conversion: FolderConversion) -> ExportResult:
    """Convert request.source_path into request.output_path (a folder) for one runtime; never raises."""
    precision = getattr(request, "precision", "fp32")
    try:
        if request.target != conversion.target:
            raise BadRequestError(f"this converter writes {conversion.target!r}, not {request.target!r}")
        if precision not in conversion.precisions:
            raise BadRequestError(f"{conversion.target}: precision {precision!r} is not one of "
                                  f"{', '.join(conversion.precisions)}")
        refusal = checkpoint_refusal(getattr(request, "source_path", None))
        if refusal:
            raise BadRequestError(refusal)
        out = Path(request.output_path)
        if not out.parent.is_dir():
            raise BadRequestError(f"output_path's folder {out.parent} does not exist")
    except RunnerError as exc:
        return _error(request, exc, "bad-request")

    temp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    try:
        t0 = time.monotonic()
        facts = conversion.convert(Path(request.source_path), temp, conversion.precisions[precision])
        t1 = time.monotonic()
        verified = conversion.verify(temp)
        t2 = time.monotonic()
        if out.exists():  # a stale folder of an earlier, interrupted preparation: the new one replaces it whole
            shutil.rmtree(out)
        os.replace(temp, out)
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a result; interrupts re-raised
        shutil.rmtree(temp, ignore_errors=True)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return _error(request, exc, "export")
    result = ExportResult(framework=request.framework, model=request.model, status="ok", output_path=str(out),
                          exporter=conversion.exporter, versions=installed_versions(conversion.distributions),
                          seconds=t2 - t0, target=request.target)
    return _with_facts(result, {"precision": precision, **facts, "conversion_seconds": t1 - t0,
                                "verify_seconds": t2 - t1, "verified": verified})
