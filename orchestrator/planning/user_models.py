"""A sweep's own models: each `[user_models.<name>]` table of the config checked and turned into a UserModel
(runners.protocol), whose JSON the config carries (to the planner, which makes a ModelSpec of it with
models.user_models, and to each run's request, RunRequest.user_model, from which the runner registers it in its own
process).

What is checked before anything is measured (each a line naming what is wrong and the valid choices): the format
(exactly one of onnx, torch, keras, hf), the file (exists, is readable), the name (not a built-in's), and `inputs`
against what the file declares (name, rank, dtype, each fixed dimension), `outputs` against its outputs
(user_model_checks, which also checks an hf model against transformers once the config's interpreters are known).
The file is read without running it (models.user_files); a file whose content cannot be read as its format is not
refused here: its runs fail with kind `load` and the loading library's own words, as the issue asks.

Which runtimes each format runs on (the planner skips every other cell with the reason): `runtime_refusal`.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field

from models.registry import BUILT_IN_MODELS
from models.user_files import BATCH, READERS, Declared, ModelFileError, pt2_pickled_payloads
from models.user_models import FORMATS, LOADERS
from orchestrator.planning.checkpoints import Checkpoint, checked_checkpoint
from orchestrator.planning.user_model_checks import HF_DEFAULT_OUTPUTS, output_mistakes
from orchestrator.safe_paths import readable_file, shown
from runners.protocol import UserModel, to_dict
from runners.runtimes_table import GENERATIVE_FAMILIES

DTYPES = ("float32", "float16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SUFFIXES = {"onnx": ".onnx", "torch": ".pt2", "keras": ".keras"}

# Which runtimes (framework, model format) run a user model of each format: an ONNX file as is on ONNX Runtime's
# providers and OpenVINO; a torch program (or a transformers architecture, built in torch) in torch and its compiler,
# and as ONNX exported from torch; a Keras file in TensorFlow and XLA, and as ONNX exported from TensorFlow.
RUNS_ON: dict[str, tuple[tuple[str, str], ...]] = {
    "onnx": (("onnxruntime", "onnx"), ("openvino", "onnx")),
    "torch": (("torch", "native"), ("torch", "inductor"), ("onnxruntime", "onnx-from-torch"),
              ("openvino", "onnx-from-torch")),
    "hf": (("torch", "native"), ("torch", "inductor"), ("onnxruntime", "onnx-from-torch"),
           ("openvino", "onnx-from-torch")),
    "keras": (("tensorflow", "native"), ("tensorflow", "xla"), ("onnxruntime", "onnx-from-tensorflow"),
              ("openvino", "onnx-from-tensorflow")),
    # A Hugging Face checkpoint folder: a generative model, on every generative runtime (each converts it).
    "hf_checkpoint": tuple((f.framework, f.model_format) for f in GENERATIVE_FAMILIES),
}
GENERATIVE_OUTPUTS = ["tokens", "prefill_logits"]


class InputTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
    name: str = Field(min_length=1)
    shape: list[Union[int, str]] = Field(min_length=1)
    dtype: str
    range: list[float] | None = Field(None, min_length=2, max_length=2)


class HfTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    config: str | None = None  # a local config.json
    model_type: str | None = None  # or transformers' defaults for this model type
    weights: str | None = None  # a local .safetensors file; None: seeded random weights


class UserModelTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    onnx: str | None = None
    torch: str | None = None
    keras: str | None = None
    hf: HfTable | None = None
    hf_checkpoint: str | None = None  # a local Hugging Face checkpoint folder of a Llama-style decoder
    inputs: list[InputTable] | None = None
    outputs: Annotated[list[str], Field(min_length=1)] | None = None


def _file_facts(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return path.stat().st_size, digest.hexdigest()


def _file_problem(path_text: str) -> str | None:
    """Why the file cannot be used (missing, a folder, a loop, a FIFO, unreadable), as safe_paths.readable_file says
    it; None when it can be read."""
    from orchestrator.errors import UserError

    try:
        readable_file(path_text, "file")
    except UserError as exc:  # "file '<path>': <reason>; valid: ...": the caller names the key and the path itself
        return str(exc).removeprefix(f"file {shown(path_text)}: ").rsplit("; valid: ", 1)[0]
    return None


def _check_input(where: str, given: InputTable, declared: Declared | None) -> list[str]:
    lines = []
    if given.dtype not in DTYPES:
        lines.append(f"{where}.dtype = {given.dtype!r}: unknown dtype; valid: {', '.join(DTYPES)}")
    if given.shape[0] != BATCH:
        lines.append(f"{where}.shape = {given.shape}: the first dimension must be \"batch\" (the batch sizes of "
                     f"the sweep); valid: [\"batch\", <positive integers>]")
    bad = [d for d in given.shape[1:] if not isinstance(d, int) or d < 1]
    if bad:
        lines.append(f"{where}.shape = {given.shape}: {bad[0]!r} is not a positive integer; valid: [\"batch\", "
                     f"<positive integers>]")
    if given.range is not None and not given.range[0] < given.range[1]:
        lines.append(f"{where}.range = {given.range}: low must be below high; valid: [low, high)")
    if declared is None or lines:
        return lines
    by_name = {i.name: i for i in declared.inputs}
    model = by_name.get(given.name)
    if model is None:
        return [f"{where}.name = {given.name!r}: the model has no such input; valid: {', '.join(by_name) or 'none'}"]
    if len(model.shape) != len(given.shape):
        return [f"{where}.shape = {given.shape}: rank {len(given.shape)}, but the model's input {given.name} has "
                f"rank {len(model.shape)} ({_show_shape(model.shape)}); valid: a shape of rank {len(model.shape)}"]
    if model.dtype is not None and model.dtype != given.dtype:
        lines.append(f"{where}.dtype = {given.dtype!r}: the model's input {given.name} is {model.dtype}; valid: "
                     f"{model.dtype!r}")
    for axis, (want, got) in enumerate(zip(model.shape[1:], given.shape[1:]), start=1):
        if isinstance(want, int) and want > 0 and want != got:
            lines.append(f"{where}.shape = {given.shape}: dimension {axis} is fixed at {want} in the model's input "
                         f"{given.name} ({_show_shape(model.shape)}); valid: {want}")
    return lines


def _show_shape(shape: tuple) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _inputs_from_file(where: str, declared: Declared) -> tuple[list[dict[str, Any]], list[str]]:
    """The model's own inputs, where every dimension but the batch is known; else the lines asking for them."""
    inputs, lines = [], []
    for inp in declared.inputs:
        symbolic = [(axis, d) for axis, d in enumerate(inp.shape) if axis > 0 and not (isinstance(d, int) and d > 0)]
        if symbolic or not inp.shape:
            axis, dim = symbolic[0] if symbolic else (0, None)
            lines.append(f"{where}: input {inp.name} ({_show_shape(inp.shape)}) has dimension {axis} "
                         f"{'symbolic (' + repr(dim) + ')' if dim else 'unknown'}; valid: give its value in inputs, "
                         f"e.g. inputs = [{{name = \"{inp.name}\", shape = [\"batch\", ...], dtype = "
                         f"\"{inp.dtype or 'float32'}\"}}]")
            continue
        if inp.dtype is None or inp.dtype not in DTYPES:
            lines.append(f"{where}: input {inp.name} has dtype {inp.dtype or 'undeclared'}, which greenrt cannot "
                         f"make; valid dtypes: {', '.join(DTYPES)}")
            continue
        inputs.append({"name": inp.name, "shape": list(inp.shape[1:]), "dtype": inp.dtype, "range": None})
    return inputs, lines


def user_model_entry(name: str, table: UserModelTable) -> tuple[UserModel | None, list[str]]:
    """(the model, []) or (None, every mistake of this table, one line each). Reads the file; loads nothing."""
    where = f"user_models.{name}"
    given = [fmt for fmt in FORMATS if getattr(table, fmt) is not None]
    if name in BUILT_IN_MODELS:
        return None, [f"{where}: {name!r} is a built-in model's name; valid: another name (built-in: "
                      f"{', '.join(sorted(BUILT_IN_MODELS))})"]
    if not re.match(NAME_PATTERN, name):
        return None, [f"{where}: not a model name; valid: letters, digits, '_', '.', '-' (up to 64)"]
    if len(given) != 1:
        return None, [f"{where}: {'gives ' + ' and '.join(given) if given else 'names no model file'}; valid: "
                      f"exactly one of {', '.join(FORMATS)} (the model's format)"]
    fmt = given[0]
    if fmt == "hf_checkpoint":
        return _checkpoint_entry(name, where, table)
    entry: dict[str, Any] = {"name": name, "format": fmt, "loader": LOADERS[fmt], "path": None, "size": None,
                             "sha256": None, "hf": None, "declared": "read from the file"}
    declared: Declared | None = None
    if fmt == "hf":
        lines = _hf_entry(where, table.hf, entry)
        if lines:
            return None, lines
        entry["declared"] = "the config's inputs (a transformers architecture declares none)"
    else:
        path_text = getattr(table, fmt)
        problem = _file_problem(path_text)
        if problem:
            return None, [f"{where}.{fmt} = {path_text!r}: {problem}; valid: a readable {SUFFIXES[fmt]} file "
                          f"({_describe_format(fmt)})"]
        path = Path(path_text).resolve()
        entry["path"] = str(path)
        entry["size"], entry["sha256"] = _file_facts(path)
        try:
            declared = READERS[fmt](path)
        except ModelFileError as exc:
            # Not refused: the runs fail at load with the library's own words (the file is not what it says).
            entry["declared"] = f"unreadable here: {exc}"
        if fmt == "torch" and declared is not None:
            pickled = pt2_pickled_payloads(path)
            if pickled:
                return None, [f"{where}.torch = {path_text!r}: the archive holds pickled entries "
                              f"({', '.join(pickled[:3])}), which torch.export.load would unpickle (it can run "
                              f"code); valid: a program whose weights and constants are plain tensors"]
    lines = []
    if table.inputs is not None:
        for index, inp in enumerate(table.inputs):
            lines += _check_input(f"{where}.inputs[{index}]", inp, declared)
        names = [i.name for i in table.inputs]
        lines += [f"{where}.inputs: {n!r} is listed twice" for n in sorted({n for n in names if names.count(n) > 1})]
        if declared is not None and not lines:
            missing = [i.name for i in declared.inputs if i.name not in names]
            if missing:
                lines.append(f"{where}.inputs: the model's input(s) {', '.join(missing)} are not given; valid: every "
                             f"input of the model ({', '.join(i.name for i in declared.inputs)})")
        inputs = [{"name": i.name, "shape": list(i.shape[1:]), "dtype": i.dtype,
                   "range": list(i.range) if i.range is not None else None} for i in table.inputs]
    elif declared is not None:
        inputs, lines = _inputs_from_file(where, declared)
    elif fmt == "hf":
        return None, [f"{where}.inputs: required for a Hugging Face architecture; valid: e.g. inputs = [{{name = "
                      f"\"input_ids\", shape = [\"batch\", 128], dtype = \"int64\", range = [0, 30522]}}]"]
    else:
        inputs = []  # unreadable file and no inputs: its runs fail at load, with the library's words
    if table.outputs is not None and declared is not None:
        lines += output_mistakes(where, fmt, list(table.outputs), declared)
    if lines:
        return None, lines
    entry["inputs"] = inputs
    if table.outputs is not None:
        entry["outputs"] = list(table.outputs)
    elif declared is not None and declared.outputs:
        entry["outputs"] = list(declared.outputs)
    else:
        entry["outputs"] = list(HF_DEFAULT_OUTPUTS) if fmt == "hf" else ["output"]
    return UserModel.from_entry(entry), []


def _checkpoint_entry(name: str, where: str, table: UserModelTable) -> tuple[UserModel | None, list[str]]:
    """A generative model from a checkpoint folder: its inputs (the seeded prompt) and outputs are greenrt's, so
    the table gives neither."""
    given = [key for key in ("inputs", "outputs") if getattr(table, key) is not None]
    if given:
        return None, [f"{where}.{given[0]}: not taken with hf_checkpoint (a generative model's input is its seeded "
                      f"prompt, its outputs the new tokens and the prompt's logits); valid: leave it out"]
    checkpoint, lines = checked_checkpoint(table.hf_checkpoint or "", f"{where}.hf_checkpoint")
    if checkpoint is None:
        return None, lines
    return UserModel.from_entry(checkpoint_entry(name, checkpoint)), []


def checkpoint_entry(name: str, checkpoint: Checkpoint) -> dict[str, Any]:
    """The UserModel JSON of a checked checkpoint folder (path: the folder, sha256: its files' digest)."""
    return {"name": name, "format": "hf_checkpoint", "loader": LOADERS["hf_checkpoint"], "path": checkpoint.path,
            "size": checkpoint.size, "sha256": checkpoint.sha256, "inputs": [], "outputs": GENERATIVE_OUTPUTS,
            "hf": {"model_type": checkpoint.model_type, "config": checkpoint.config, "weights": None},
            "declared": "the checkpoint's config.json (a generative model: greenrt's seeded prompt)"}


def _describe_format(fmt: str) -> str:
    return {"onnx": "an ONNX model", "torch": "a torch.export program, torch.export.save",
            "keras": "a Keras 3 model, model.save"}[fmt]


def _hf_entry(where: str, hf: HfTable, entry: dict[str, Any]) -> list[str]:
    if (hf.config is None) == (hf.model_type is None):
        return [f"{where}.hf: give config (a local config.json) or model_type (transformers' defaults), not "
                f"{'both' if hf.config else 'neither'}; valid: hf = {{config = \"path/config.json\"}} or "
                f"hf = {{model_type = \"bert\"}}"]
    config: dict[str, Any] = {}
    if hf.config is not None:
        problem = _file_problem(hf.config)
        if problem:
            return [f"{where}.hf.config = {hf.config!r}: {problem}; valid: a readable config.json"]
        path = Path(hf.config).resolve()
        try:
            config = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            return [f"{where}.hf.config = {hf.config!r}: not JSON ({exc}); valid: a transformers config.json"]
        if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
            return [f"{where}.hf.config = {hf.config!r}: no \"model_type\" in it; valid: a transformers "
                    f"config.json (it names its model_type)"]
        entry["path"] = str(path)
        entry["size"], entry["sha256"] = _file_facts(path)
    weights = None
    if hf.weights is not None:
        problem = _file_problem(hf.weights)
        if problem or not hf.weights.endswith(".safetensors"):
            return [f"{where}.hf.weights = {hf.weights!r}: {problem or 'not a .safetensors file'}; valid: a "
                    f"readable .safetensors file (never a pickle)"]
        path = Path(hf.weights).resolve()
        size, sha = _file_facts(path)
        weights = {"path": str(path), "size": size, "sha256": sha}
    entry["hf"] = {"model_type": config.get("model_type", hf.model_type), "config": config or None,
                   "weights": weights}
    return []


def user_model_entries(raw: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Every table's entry (the JSON of its UserModel, which the config carries), and every mistake (validated
    tables, then read files)."""
    from pydantic import ValidationError

    entries, lines = {}, []
    for name, table in raw.items():
        where = f"user_models.{name}"
        try:
            parsed = UserModelTable.model_validate(table)
        except ValidationError as exc:
            for error in exc.errors():
                location = ".".join(str(p) for p in error["loc"])
                if error["type"] == "extra_forbidden":
                    lines.append(f"{where}.{location}: unknown key (a model format?); valid keys: "
                                 f"{', '.join(UserModelTable.model_fields)} (formats: {', '.join(FORMATS)})")
                else:
                    lines.append(f"{where}{'.' + location if location else ''}: {error['msg']}")
            continue
        entry, problems = user_model_entry(name, parsed)
        lines += problems
        if entry is not None:
            entries[name] = to_dict(entry)
    return entries, lines


def runtime_refusal(user: UserModel | None, framework: str, model_format: str, model: str) -> str | None:
    """Why the runtime framework/model_format does not run this model (user: the user's model; None: a built-in);
    None: it does. Pure."""
    if user is None:
        if model_format == "onnx":
            return (f"{framework}/onnx/* runs a user's ONNX file as is; the built-in {model} runs on "
                    f"{framework}/onnx-from-<framework>")
        return None
    fmt = user.format
    if (framework, model_format) in RUNS_ON[fmt]:
        return None
    valid = ", ".join(f"{fw}/{mf}" for fw, mf in RUNS_ON[fmt])
    return f"user model {model} is a {fmt} model, which runs on {valid}"


# A model file's suffix -> its format and the CPU runtime `greenrt run --model FILE` measures it on by default.
ADHOC = {".onnx": ("onnx", "onnxruntime/onnx/cpu"), ".pt2": ("torch", "torch/native/cpu"),
         ".keras": ("keras", "tensorflow/native/cpu")}


def adhoc_model(model: str, runtime: str | None) -> tuple[str, str, dict[str, Any]]:
    """`greenrt run --model`'s (model name, runtime, user_models tables): a built-in name as it is, a model file as
    a user model named after the file. A UserError (one line, valid choices) for what cannot be measured."""
    from orchestrator.errors import UserError

    path = Path(model)
    if model not in BUILT_IN_MODELS and path.suffix.lower() not in ADHOC and not path.exists():
        close = difflib.get_close_matches(model, BUILT_IN_MODELS, n=3, cutoff=0.5)
        raise UserError(f"--model {model!r}: no built-in model and no model file of that name; valid: "
                        f"{', '.join(close or sorted(BUILT_IN_MODELS))}"
                        + ("" if close else f", or a model file ({', '.join(ADHOC)})"))
    if model in BUILT_IN_MODELS:
        if runtime is None:
            raise UserError(f"--runtime is needed for model {model!r}; valid: one of `greenrt doctor`'s runtimes")
        return model, runtime, {}
    fmt_runtime = ADHOC.get(path.suffix.lower())
    if fmt_runtime is None:
        raise UserError(f"--model {model!r}: unknown model file format {path.suffix or '(no suffix)'!r}; valid: "
                        f"{', '.join(ADHOC)} (or a built-in model: {', '.join(sorted(BUILT_IN_MODELS))})")
    fmt, default_runtime = fmt_runtime
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.stem).strip("-.")[:56] or "model"
    if name in BUILT_IN_MODELS or not re.match(NAME_PATTERN, name):
        name = f"file-{name}"
    return name, runtime or default_runtime, {name: {fmt: model}}


def generative_runtimes(has_gpu: bool) -> list[str]:
    """The generative runtimes `greenrt run --model DIR` measures by default: the reference first, then every other
    generative runtime this checkout implements, on the CPU (and on CUDA where the host has a GPU)."""
    from orchestrator.planning.runtimes import parse_runtime
    from runners.runtimes_table import GENERATIVE, GENERATIVE_REFERENCE_RUNTIME, runtime_kind, runtime_names

    names = [n for n in runtime_names() if runtime_kind(n) == GENERATIVE and n != GENERATIVE_REFERENCE_RUNTIME]
    chosen = [n for n in names if parse_runtime(n).not_implemented_reason() is None
              and (has_gpu or not parse_runtime(n).needs_gpu)]
    return [GENERATIVE_REFERENCE_RUNTIME, *chosen]


def adhoc_checkpoint(folder: str, runtimes: list[str] | None, has_gpu: bool) -> tuple[str, list[str], dict[str, Any]]:
    """`greenrt run --model DIR`'s (model name, runtimes, user_models tables) for a checkpoint folder: a user model
    named after the folder, on the runtimes given (default: generative_runtimes). The folder's checks are the
    config's (one line each, when the config is parsed)."""
    path = Path(folder)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.resolve().name).strip("-.")[:56] or "checkpoint"
    if name in BUILT_IN_MODELS or not re.match(NAME_PATTERN, name):
        name = f"dir-{name}"
    return name, list(runtimes) if runtimes else generative_runtimes(has_gpu), {name: {"hf_checkpoint": folder}}
