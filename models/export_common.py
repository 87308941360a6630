"""What every ONNX exporter shares: its error type, the versions it records, and reading back the opset written.

stdlib only at import time; onnx is imported where a file is read, inside the source framework's environment.
"""
from __future__ import annotations

import contextlib
import os
from importlib import metadata


class ExportError(Exception):
    """A failed export with its kind (runners.protocol.ERROR_KINDS): bad-request, unsupported, load or export."""

    def __init__(self, message: str, kind: str = "export") -> None:
        super().__init__(message)
        self.kind = kind


def installed_versions(distributions: tuple[str, ...]) -> dict[str, str]:
    """Versions of the distributions that are installed (from their metadata: nothing is imported)."""
    out = {}
    for dist in distributions:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def opset_of(model) -> int | None:
    """The default-domain opset recorded in an ONNX ModelProto."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return None


def written_opset(path: str | os.PathLike) -> int | None:
    """The default-domain opset recorded in an ONNX file (weights not loaded)."""
    import onnx

    return opset_of(onnx.load(str(path), load_external_data=False))
