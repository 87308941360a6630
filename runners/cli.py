"""`python -m runners run|export|quantize --request FILE` and `python -m runners versions` (argparse, standard library only).

Exit status: 0 when the result says "ok"; 1 when it says "error" (the result file is still written); 2 when the
request file cannot be read or does not follow the protocol (an error result is written if its result_path can be
found); 3 when the result itself cannot be written.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from runners.protocol import (ExportRequest, ExportResult, ProtocolError, RunError, RunRequest, RunResult,
                              read_json, to_dict, write_json_atomic)
from runners.protocol import QuantizeRequest, QuantizeResult
from runners.runtimes_table import EXPORTERS as CONVERTERS, ONNX_EXPORTERS

# framework -> "module:function" converting that framework's models to ONNX, run in that framework's environment
# (the runtimes table's exporters).
EXPORTERS = ONNX_EXPORTERS

# Distributions `versions` reports when installed (metadata only: nothing is imported).
KNOWN_DISTRIBUTIONS = (
    "torch", "tensorflow", "tensorflow-cpu", "keras", "keras-hub", "mxnet", "mxnet-cu117", "gluonnlp",
    "onnxruntime", "onnxruntime-gpu", "onnx", "onnxscript", "tf2onnx", "transformers", "safetensors", "tensorrt",
    "tensorrt-cu13-libs", "numpy", "openvino", "onnxruntime-openvino", "ai-edge-litert",
)


def _fail(message: str) -> None:
    print(f"runners: {message}".replace("\n", " "), file=sys.stderr)


def _raw(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(path: str, result) -> bool:
    try:
        write_json_atomic(path, to_dict(result))
        return True
    except OSError as exc:
        _fail(f"cannot write the result to {path}: {exc}")
        return False


def _read_request(cls: type, path: str, refusal: Callable[[dict[str, Any], RunError], Any]):
    """The request in `path`, or None when it does not follow the protocol: then the failure is said on stderr and,
    where the file still names a result_path, `refusal(raw request, bad-request error)` is written there."""
    try:
        return read_json(cls, path)
    except ProtocolError as exc:
        _fail(f"bad request: {exc}")
        raw = _raw(path)
        if isinstance(raw.get("result_path"), str) and raw["result_path"]:
            _write(raw["result_path"], refusal(raw, RunError(kind="bad-request", message=str(exc))))
        return None


def _refused_run(raw: dict[str, Any], error: RunError) -> RunResult:
    bs = raw.get("batch_size")
    return RunResult(run_id=str(raw.get("run_id", "")), runtime=str(raw.get("runtime", "")),
                     model=str(raw.get("model", "")), batch_size=bs if isinstance(bs, int) else 0, status="error",
                     error=error)


def _refused_export(raw: dict[str, Any], error: RunError) -> ExportResult:
    return ExportResult(framework=str(raw.get("framework", "")), model=str(raw.get("model", "")), status="error",
                        output_path=str(raw.get("output_path", "")), error=error)


def _summary(result: RunResult) -> str:
    if result.status != "ok":
        return f"{result.run_id}: error ({result.error.kind}): {result.error.message}".splitlines()[0][:400]
    lat = sorted(result.latencies_ns)
    median = lat[len(lat) // 2] / 1e6 if lat else float("nan")
    return (f"{result.run_id}: ok, {result.iterations} iterations, median {median:.3f} ms, "
            f"provider {result.provider_used}, threads {result.threads}")


def cmd_run(args: argparse.Namespace) -> int:
    request = _read_request(RunRequest, args.request, _refused_run)
    if request is None:
        return 2
    from runners.loop import execute

    result = execute(request)
    return _answered(request.result_path, result, _summary(result))


def _answered(result_path: str, result, said: str) -> int:
    """Write the result where the request asks, say one line of it on stderr, and return the exit status."""
    if not _write(result_path, result):
        return 3
    print(said, file=sys.stderr)
    return 0 if result.status == "ok" else 1


def _failed(what: str, result) -> str:
    return "runners: " + f"{what} failed ({result.error.kind}): {result.error.message}".splitlines()[0][:400]


def _export_error(request: ExportRequest, kind: str, message: str) -> ExportResult:
    return ExportResult(framework=request.framework, model=request.model, status="error",
                        output_path=request.output_path, error=RunError(kind=kind, message=message))


def _register_user_model(request: ExportRequest) -> ExportResult | None:
    """The exporter's registry learns a user's model from the request; a bad entry is a bad-request result."""
    if request.user_model is None:
        return None
    from models.user_models import ensure_registered

    try:
        ensure_registered(request.user_model)
    except (ValueError, KeyError, TypeError) as exc:
        return _export_error(request, "bad-request", f"user model {request.model}: {exc}")
    return None


def cmd_export(args: argparse.Namespace) -> int:
    request = _read_request(ExportRequest, args.request, _refused_export)
    if request is None:
        return 2
    target = CONVERTERS.get((request.framework, request.target))
    refused = _register_user_model(request)
    if refused is not None:
        result = refused
    elif target is None:
        result = _export_error(request, "unsupported", f"no {request.target} exporter for framework "
                               f"{request.framework!r}; supported: "
                               f"{', '.join(f'{f} -> {t}' for f, t in sorted(CONVERTERS))}")
    else:
        module_name, func_name = target.split(":")
        try:
            import importlib

            export = getattr(importlib.import_module(module_name), func_name)
        except ModuleNotFoundError as exc:
            result = _export_error(request, "unsupported",
                                   f"the {request.framework} exporter cannot be imported in this environment ({exc})")
        else:
            result = export(request)
    return _answered(request.result_path, result, _failed("export", result) if result.status != "ok" else
                     f"{request.model}: exported to {result.output_path} (opset {result.opset}, {result.exporter}, "
                     f"max |{request.target} - {request.framework}| {result.max_abs_diff})")


def _refused_quantize(raw: dict[str, Any], error: RunError) -> QuantizeResult:
    return QuantizeResult(model=str(raw.get("model", "")), status="error", output_path=str(raw.get("output_path", "")),
                          error=error)


def cmd_quantize(args: argparse.Namespace) -> int:
    """An fp32 ONNX model to INT8 (models.quantize), in an environment with onnxruntime and onnx."""
    request = _read_request(QuantizeRequest, args.request, _refused_quantize)
    if request is None:
        return 2
    from models.quantize import run_quantize

    result = run_quantize(request)
    return _answered(request.result_path, result, _failed("quantize", result) if result.status != "ok" else
                     f"{request.model}: quantized ({request.method}) to {result.output_path} in "
                     f"{result.seconds:.1f} s: {result.quantization.get('quantized_op_types')}")


def installed_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in KNOWN_DISTRIBUTIONS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def cmd_versions(args: argparse.Namespace) -> int:
    print(json.dumps(installed_versions(), indent=1, sort_keys=True))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m runners", description="greenrt runner (runs inside a runtime)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute a RunRequest and write its RunResult")
    run.add_argument("--request", required=True, help="RunRequest JSON file")
    run.set_defaults(func=cmd_run)
    export = sub.add_parser("export", help="convert a model to ONNX (ExportRequest -> ExportResult)")
    export.add_argument("--request", required=True, help="ExportRequest JSON file")
    export.set_defaults(func=cmd_export)
    quantize = sub.add_parser("quantize", help="quantize an fp32 ONNX model to INT8 (QuantizeRequest -> QuantizeResult)")
    quantize.add_argument("--request", required=True, help="QuantizeRequest JSON file")
    quantize.set_defaults(func=cmd_quantize)
    versions = sub.add_parser("versions", help="print the versions of the installed frameworks as JSON")
    versions.set_defaults(func=cmd_versions)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
