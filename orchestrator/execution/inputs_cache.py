"""The inputs files of runs driven by a client in another language (@node, @cpp), written once and cached.

Such a runner never generates inputs itself: it reads the arrays the Python runner would make (models/inputs.py,
seeded) from an inputs file (runners/inputs_file.py). They are written here, in the orchestrator's own process:
make_inputs needs numpy and the registry, no framework. One folder per model, batch, seed and model options (and
the numpy and file format versions that wrote it), published by a rename so that a half-written file is never
taken, under the same lock as the artifact cache's.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator import paths
from orchestrator.execution.artifacts import _export_lock, staging_folder
from runners.inputs_file import INDEX_NAME, VERSION, InputsFileError, write_model_inputs


class InputsUnavailable(RuntimeError):
    """The inputs of a model cannot be written (a model the registry cannot make inputs for)."""


def inputs_key(model: str, batch_size: int, seed: int, options: dict[str, Any]) -> str:
    """What the written bytes depend on; numpy's version too, since its generators make the arrays."""
    identity = {"model": model, "batch_size": batch_size, "seed": seed, "options": options, "numpy": np.__version__,
                "format": VERSION}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


class InputsCache:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or paths.cache_dir() / "inputs"

    def folder(self, model: str, batch_size: int, seed: int, options: dict[str, Any]) -> Path:
        return self.root / f"{model}-bs{batch_size}-seed{seed}-{inputs_key(model, batch_size, seed, options)}"

    def ensure(self, model: str, batch_size: int, seed: int, options: dict[str, Any]) -> Path:
        """The index (inputs.json) of the model's inputs at this batch and seed, written now if not cached."""
        folder = self.folder(model, batch_size, seed, options)
        index = folder / INDEX_NAME
        if not index.exists():
            with _export_lock(folder):
                if not index.exists():  # another sweep sharing the cache may have written it meanwhile
                    staging = staging_folder(folder)
                    try:
                        write_model_inputs(staging, model, batch_size, seed, options)
                    except (InputsFileError, ValueError, KeyError) as exc:
                        raise InputsUnavailable(f"inputs of {model} at batch {batch_size}: {exc}") from None
                    staging.rename(folder)
        return index
