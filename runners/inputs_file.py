"""The inputs file: a run's seeded inputs (models.inputs) written once, for a runner in another language to read.

A folder holding one raw little-endian .bin per input and `inputs.json`, its index (written last, atomically):
{"format": "greenrt-inputs", "version": 1, "inputs": [{"name", "dtype" (numpy's name: float32, int64, bool, ...),
"shape", "file" (relative to the index), "bytes", "sha256"}, ...]} in the model's input order. A request names the
index as `inputs_path`. The bytes are the arrays' own (C order, little-endian), so the reader sees exactly what the
Python runner's make_inputs gave: no generator is re-implemented in another language.

Standard library and numpy only (it runs in a runtime's environment and on the host).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from runners.protocol import write_json_atomic

FORMAT = "greenrt-inputs"
VERSION = 1
INDEX_NAME = "inputs.json"
# The dtypes a reader must understand (numpy's names; ONNX Runtime's Node.js tensors use the same ones).
DTYPES = ("float32", "float16", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "bool")


class InputsFileError(ValueError):
    """An inputs file that does not follow the format (or does not match its own index)."""


def write_inputs(folder: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write `arrays` (in their order) into `folder` and return the index's path."""
    arrays = {name: np.asarray(array) for name, array in arrays.items()}
    for name, array in arrays.items():  # every input checked before anything is written
        if array.dtype.name not in DTYPES:
            raise InputsFileError(f"input {name}: dtype {array.dtype.name} has no place in the inputs file; valid: "
                                  f"{', '.join(DTYPES)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    for position, (name, array) in enumerate(arrays.items()):
        dtype = array.dtype.name
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        file = f"input-{position}.bin"
        (folder / file).write_bytes(data)
        entries.append({"name": name, "dtype": dtype, "shape": list(array.shape), "file": file, "bytes": len(data),
                        "sha256": hashlib.sha256(data).hexdigest()})
    index = folder / INDEX_NAME
    write_json_atomic(index, {"format": FORMAT, "version": VERSION, "inputs": entries})
    return index


def write_model_inputs(folder: str | Path, model: str, batch_size: int, seed: int,
                       model_options: dict[str, Any] | None = None) -> Path:
    """The registry model's inputs as the Python runner makes them (models.inputs.make_inputs), written to `folder`."""
    from models.inputs import make_inputs
    from models.registry import get_model

    spec = get_model(model)
    return write_inputs(folder, make_inputs(spec, batch_size, seed, spec.resolve_options(model_options)))


def read_inputs(index_path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an inputs file, checked against its index (size and sha256)."""
    index_path = Path(index_path)
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError) as exc:
        raise InputsFileError(f"{index_path}: not a readable inputs index ({exc})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT or index.get("version") != VERSION:
        raise InputsFileError(f"{index_path}: not a {FORMAT} index of version {VERSION}")
    arrays = {}
    for entry in index["inputs"]:
        data = (index_path.parent / entry["file"]).read_bytes()
        if len(data) != entry["bytes"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise InputsFileError(f"{index_path}: input {entry['name']} does not match its size or sha256")
        dtype = np.dtype(entry["dtype"]).newbyteorder("<")
        arrays[entry["name"]] = np.frombuffer(data, dtype=dtype).reshape(entry["shape"]).astype(entry["dtype"])
    return arrays
