"""What a user's model file declares, read without running it: an ONNX graph's inputs and outputs (onnx's protobuf
reader, weights not loaded), a torch.export archive's (.pt2: a zip with the program as JSON) and a Keras 3 file's
(.keras: a zip with the model's config as JSON). Nothing here unpickles or executes anything from the file.

Also the .pt2 safety check the torch runner makes before torch.export.load: torch 2.13's loader unpickles, with
weights_only=False, any weight or constant the archive marks `use_pickle`, custom objects, and sample inputs that
weights_only refuses. Such archives are refused (see FINDINGS).

Standard library at import; `onnx` is imported by read_onnx only.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

BATCH = "batch"


class ModelFileError(ValueError):
    """A model file that cannot be read as its format: the message is the reader's own words."""


@dataclass(frozen=True)
class DeclaredInput:
    name: str
    shape: tuple[int | str | None, ...]  # with the batch axis; a string or None: symbolic (unknown) dimension
    dtype: str | None  # numpy name; None: not declared


@dataclass(frozen=True)
class Declared:
    inputs: tuple[DeclaredInput, ...]
    outputs: tuple[str, ...]


# onnx.TensorProto.DataType -> numpy names (the ones ONNX Runtime feeds from numpy).
_ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
                10: "float16", 11: "float64", 12: "uint32", 13: "uint64"}
# torch._export.serde.schema.ScalarType -> numpy names.
_TORCH_DTYPES = {1: "uint8", 2: "int8", 3: "int16", 4: "int32", 5: "int64", 6: "float16", 7: "float32",
                 8: "float64", 12: "bool"}


def read_onnx(path: str | Path) -> Declared:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and onnx's own
        raise ModelFileError(f"not an ONNX model (onnx {onnx.__version__}: {type(exc).__name__}: "
                             f"{' '.join(str(exc).split()) or 'cannot parse'})") from None
    graph = model.graph
    if not graph.node and not graph.output:
        raise ModelFileError(f"not an ONNX model (onnx {onnx.__version__} read an empty graph)")
    initializers = {i.name for i in graph.initializer}
    inputs = []
    for value in graph.input:
        if value.name in initializers:  # old exporters list weights as inputs: they are not fed
            continue
        tensor = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim)
        inputs.append(DeclaredInput(value.name, dims, _ONNX_DTYPES.get(tensor.elem_type)))
    return Declared(tuple(inputs), tuple(o.name for o in graph.output))


def _zip(path: Path, what: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelFileError(f"not a {what} (zipfile: {exc})") from None


def _pt2_prefix(archive: zipfile.ZipFile) -> str:
    tops = {n.split("/")[0] for n in archive.namelist() if n.endswith("/archive_format")}
    for top in tops:
        if archive.read(f"{top}/archive_format").strip() == b"pt2":
            return top
    raise ModelFileError("not a torch.export archive (no archive_format 'pt2' inside the zip)")


def pt2_pickled_payloads(path: str | Path) -> list[str]:
    """The entries of a .pt2 that torch.export.load would unpickle (weights or constants marked use_pickle, custom
    or opaque objects); [] for an archive of raw tensors only."""
    with _zip(Path(path), "torch.export archive (.pt2)") as archive:
        top = _pt2_prefix(archive)
        found = []
        for name in archive.namelist():
            if not name.startswith(f"{top}/data/") or not name.endswith("_config.json"):
                continue
            for fqn, meta in json.loads(archive.read(name)).get("config", {}).items():
                path_name = str(meta.get("path_name", ""))
                if meta.get("use_pickle") or path_name.startswith(("custom_obj", "opaque_obj")):
                    found.append(fqn)
        return found


def _sym(size: dict) -> int | str:
    return size["as_int"] if "as_int" in size else BATCH


def read_pt2(path: str | Path) -> Declared:
    """The user inputs and outputs of the (first) program in a torch.export archive."""
    with _zip(Path(path), "torch.export archive (.pt2)") as archive:
        top = _pt2_prefix(archive)
        programs = sorted(n for n in archive.namelist() if n.startswith(f"{top}/models/") and n.endswith(".json"))
        if not programs:
            raise ModelFileError("a torch.export archive without a program (no models/*.json)")
        try:
            program = json.loads(archive.read(programs[0]))
            module = program["graph_module"]
            values = module["graph"]["tensor_values"]
            inputs, outputs = [], []
            for spec in module["signature"]["input_specs"]:
                if "user_input" in spec:
                    name = spec["user_input"]["arg"]["as_tensor"]["name"]
                    meta = values[name]
                    inputs.append(DeclaredInput(name, tuple(_sym(s) for s in meta["sizes"]),
                                                _TORCH_DTYPES.get(meta["dtype"])))
            for spec in module["signature"]["output_specs"]:
                if "user_output" in spec:
                    outputs.append(spec["user_output"]["arg"].get("as_tensor", {}).get("name", "output"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"a torch.export archive whose program cannot be read ({type(exc).__name__}: "
                                 f"{exc})") from None
        return Declared(tuple(inputs), tuple(outputs))


def read_keras(path: str | Path) -> Declared:
    """The inputs (InputLayer batch_shape and dtype) and outputs of a Keras 3 .keras file's model config."""
    with _zip(Path(path), "Keras 3 file (.keras)") as archive:
        if "config.json" not in archive.namelist():
            raise ModelFileError("not a Keras 3 file (.keras: no config.json inside the zip)")
        try:
            config = json.loads(archive.read("config.json"))
            body = config["config"]
            layers = body["layers"] if isinstance(body, dict) else []
            input_layers = [layer for layer in layers if layer.get("class_name") == "InputLayer"]
            inputs = tuple(DeclaredInput(layer["config"]["name"],
                                         tuple(BATCH if d is None else d for d in layer["config"]["batch_shape"]),
                                         _keras_dtype(layer["config"].get("dtype")))
                           for layer in input_layers)
            outputs = body.get("output_layers")
            if outputs and isinstance(outputs[0], str):  # one output: ["name", 0, 0], several: [["name", 0, 0], ...]
                outputs = [outputs]
            names = tuple(o[0] for o in outputs) if outputs else ((layers[-1]["config"]["name"],) if layers else ())
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelFileError(f"a Keras file whose config cannot be read ({type(exc).__name__}: {exc})") from None
        return Declared(inputs, names)


def _keras_dtype(dtype) -> str | None:
    """A Keras 3 config's dtype: a name, or a DTypePolicy's config naming it."""
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name")
    return dtype if isinstance(dtype, str) else None


READERS = {"onnx": read_onnx, "torch": read_pt2, "keras": read_keras}
