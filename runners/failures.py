"""Failures with a kind: the errors a runner or an exporter raises on purpose, and the kind any exception reports.

The bottom of the runner side (standard library and runners.protocol only), so that the measured loop
(runners.loop) and the ONNX exporters (models/) classify failures the same way without importing each other.
"""
from __future__ import annotations

import traceback

from runners.protocol import ERROR_KINDS, RunError


class RunnerError(Exception):
    """A failure with a known kind (one of protocol.ERROR_KINDS)."""

    kind = "runtime"

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            if kind not in ERROR_KINDS:
                raise ValueError(f"unknown error kind {kind!r}; valid: {', '.join(ERROR_KINDS)}")
            self.kind = kind


class UnsupportedError(RunnerError):
    """This environment cannot run what was asked (provider, device, precision, framework missing)."""

    kind = "unsupported"


class BadRequestError(RunnerError):
    """The request itself is wrong (unknown model, invalid option, missing artifact path)."""

    kind = "bad-request"


_OOM_MARKERS = (
    "out of memory",
    "failed to allocate memory",
    "cublas_status_alloc_failed",
    "cudnn_status_alloc_failed",
    "std::bad_alloc",
    "cudaerrormemoryallocation",
    "oom when allocating",
)


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or "OutOfMemory" in type(exc).__name__:
        return True
    text = str(exc).lower()
    return any(marker in text for marker in _OOM_MARKERS)


def classify(exc: BaseException, phase_kind: str) -> str:
    """The error kind of `exc` raised during a phase whose failures are `phase_kind` by default."""
    if is_out_of_memory(exc):
        return "out-of-memory"
    if isinstance(exc, RunnerError):
        return exc.kind
    return phase_kind


def error_of(exc: BaseException, kind: str, tail_lines: int = 30, tail_chars: int = 4000) -> RunError:
    """The protocol's error record: a RunnerError's own message, any other exception's type and message."""
    message = str(exc) if isinstance(exc, RunnerError) else f"{type(exc).__name__}: {exc}".strip()
    lines = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).splitlines()
    tail = "\n".join(lines[-tail_lines:])[-tail_chars:]
    return RunError(kind=kind, message=message[:2000], traceback=tail)
