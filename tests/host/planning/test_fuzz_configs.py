"""Keep the door shut (issue 22, point 7, configs): documents generated from the schema's classes of values — a
wrong type, an out-of-range, huge, negative or non-finite number, an empty string, an unknown key, deep nesting,
options for a runtime or model the sweep does not plan — put at every key the schema declares. Each one is accepted
or refused in at most 3 lines, with no traceback, and nothing is written: in process through parse_config and the
planner, and through `greenrt plan` (typer's CliRunner) on the document written as a TOML file.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from pydantic import BaseModel
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.errors import UserError
from orchestrator.planning.config import SweepConfig, parse_config
from orchestrator.planning.planner import HostCapabilities, plan_sweep
from testkit.onnx_models import onnx_helper_model

BASE: dict[str, Any] = {"name": "fuzz", "models": ["mobilenet_v2"], "batch_sizes": [1],
                        "runtimes": ["torch/native/cpu", "onnxruntime/onnx-from-torch/cpu"], "baseline": {"seconds": 0}}
UNPLANNED_RUNTIME, UNPLANNED_MODEL = "openvino/onnx-from-torch/cpu", "bert-base-uncased"
HOST = HostCapabilities(memory_bytes=16 * 2**30)
# Keys each runtime's adapter declares (runners/runtimes_table.py ACCEPTED_OPTIONS), a session entry among them.
OPTION_KEYS = {"torch/inductor/cpu": ["mode", "dynamic", "cache_dir"],
               "openvino/onnx-from-torch/cpu": ["num_streams", "inference_num_threads", "performance_hint"],
               "onnxruntime/onnx-from-torch/cpu": ["session.intra_op.allow_spinning", "session.disable_cpu_ep_fallback"],
               "mxnet/native/cpu": ["backend"]}
IN_PROCESS_EXAMPLES, CLI_EXAMPLES = 400, 120
GENERATIVE_RUNTIMES = ["torch/transformers/cpu", "onnxruntime-genai/genai-from-hf/cpu", "llama.cpp/gguf-from-hf/cpu",
                       "vllm/hf/cuda", "torch/native/cpu"]


def schema_paths(model: type[BaseModel] = SweepConfig, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key the schema declares, its sections' keys included (e.g. ("warmup", "iterations"))."""
    found = []
    for name, info in model.model_fields.items():
        found.append((*prefix, name))
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            found += schema_paths(info.annotation, (*prefix, name))
    return found


PATHS = schema_paths()
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
# The classes of values, each of them wrong somewhere in the schema (and a few right ones, so that some pass).
NUMBERS = st.one_of(st.sampled_from([0, -1, -3, 1, 2**31, 2**63 - 1, -(2**63), 0.0, -0.5, 1e-300, 1e300,
                                     math.inf, -math.inf, math.nan]),
                    st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats())
STRINGS = st.one_of(st.sampled_from(["", " ", "true", "1", "-3", "nan", "x" * 300, "../../etc", "torch/native/cpu"]),
                    TEXT)
SCALARS = st.one_of(NUMBERS, STRINGS, st.booleans())
# A user's model named for what will run it: an hf model type (asked of the torch environment's transformers, cached
# once per machine: almost a type, or any text), and the outputs of an ONNX file (TINY, made once) that it may not have.
TINY = "@tiny.onnx@"
MODEL_TYPES = st.one_of(st.sampled_from(["bert", "bertt", "Bert", "bert ", "gpt-2", "encoder-decoder", "", "../bert"]),
                        TEXT)
ONNX_OUTPUTS = st.lists(st.one_of(st.sampled_from(["y", "logits", "", "y "]), TEXT), min_size=0, max_size=3)
HF_INPUTS = [{"name": "input_ids", "shape": ["batch", 8], "dtype": "int64", "range": [0, 100]}]


def nested(depth: int) -> dict:
    value: dict = {"x": 1}
    for _ in range(depth):
        value = {"x": value}
    return value


VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(TEXT, SCALARS, max_size=2),
                   st.integers(min_value=1, max_value=400).map(nested))


@st.composite
def documents(draw: st.DrawFn) -> dict:
    """The base config with one of the mutations a careless or hostile user makes."""
    doc = json.loads(json.dumps(BASE))
    kind = draw(st.sampled_from(["value", "value", "value", "unknown key", "unplanned", "empty in list", "option",
                                 "user model", "generative"]))
    if kind == "value":
        path = draw(st.sampled_from(PATHS))
        where = doc
        for part in path[:-1]:
            where = where.setdefault(part, {}) if isinstance(where.get(part, {}), dict) else {}
        where[path[-1]] = draw(VALUES)
    elif kind == "unknown key":
        section = draw(st.sampled_from([(), ("warmup",), ("measure",), ("baseline",), ("cooldown",)]))
        where = doc
        for part in section:
            where = where.setdefault(part, {})
        where[draw(TEXT.filter(lambda k: k not in where))] = draw(SCALARS)
    elif kind == "unplanned":
        table = draw(st.sampled_from(["provider_options", "environment", "model_options"]))
        key = UNPLANNED_MODEL if table == "model_options" else UNPLANNED_RUNTIME
        doc[table] = {key: {draw(st.sampled_from(["num_streams", "seq_len", "OMP_NUM_THREADS"])): draw(SCALARS)}}
    elif kind == "option":  # a declared provider option of a planned runtime, with a value of any class
        runtime = draw(st.sampled_from(sorted(OPTION_KEYS)))
        doc["runtimes"].append(runtime)
        doc["provider_options"] = {runtime: {draw(st.sampled_from(OPTION_KEYS[runtime])): draw(SCALARS)}}
    elif kind == "user model":
        if draw(st.booleans()):
            doc["user_models"] = {"u": {"hf": {"model_type": draw(MODEL_TYPES)}, "inputs": HF_INPUTS}}
        else:
            doc["user_models"] = {"u": {"onnx": TINY, "outputs": draw(ONNX_OUTPUTS)}}
            doc["runtimes"] = ["onnxruntime/onnx/cpu"]
        doc["models"] = ["u"]
    elif kind == "generative":  # a generative model (built in, or a checkpoint folder that is not one), its
        # options, the runtimes of both kinds and the generative precisions
        doc["models"] = draw(st.sampled_from([["llama-tiny"], ["llama-tiny", "mobilenet_v2"], ["c"]]))
        doc["runtimes"] = draw(st.lists(st.sampled_from(GENERATIVE_RUNTIMES), min_size=1, max_size=3, unique=True))
        doc["precisions"] = draw(st.lists(st.sampled_from(["fp32", "fp16", "int8", "int4"]), min_size=1,
                                          max_size=2, unique=True))
        doc["batch_sizes"] = draw(st.sampled_from([[1], [1, 4], [64]]))
        if "c" in doc["models"]:
            doc["user_models"] = {"c": {"hf_checkpoint": draw(st.one_of(STRINGS, st.just(TINY)))}}
        else:
            doc["model_options"] = {"llama-tiny": draw(st.dictionaries(
                st.sampled_from(["prompt_tokens", "new_tokens", "seq_len"]), NUMBERS, max_size=2))}
    else:
        field = draw(st.sampled_from(["models", "runtimes", "precisions"]))
        doc[field] = [*doc.get(field, ["fp32"]), ""]
    return doc


def assert_one_clear_refusal(text: str) -> None:
    lines = [line for line in text.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 3, text
    assert "Traceback" not in text, text


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return str(onnx_helper_model(tmp_path_factory.mktemp("model") / "tiny.onnx"))


def with_file(doc: dict, tiny: str) -> dict:
    """The document with TINY standing for the ONNX file made for this module."""
    return json.loads(json.dumps(doc).replace(TINY, tiny))


@settings(max_examples=IN_PROCESS_EXAMPLES)
@given(documents())
def test_a_generated_config_is_planned_or_refused_in_at_most_three_lines(tiny, doc):
    doc = with_file(doc, tiny)
    try:
        config = parse_config(doc, source="fuzz.toml")
        plan_sweep(config, HOST)
    except UserError as exc:
        assert_one_clear_refusal(str(exc))


# -- the same documents through `greenrt plan`, written as TOML files -----------------------------------------------
def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):  # JSON's escapes are TOML's; DEL is a control character TOML wants escaped
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_value(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(doc: dict) -> str:
    return "".join(f"{toml_value(str(k))} = {toml_value(v)}\n" for k, v in doc.items())


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        h.update(str(path.relative_to(folder)).encode() + (path.read_bytes() if path.is_file() else b"/"))
    return h.hexdigest()


@settings(max_examples=CLI_EXAMPLES)
@given(documents())
def test_greenrt_plan_accepts_or_refuses_a_generated_config_file_without_writing(tmp_path_factory, tiny, doc):
    folder = tmp_path_factory.mktemp("fuzz")
    config = folder / "fuzz.toml"
    config.write_text(toml_document(with_file(doc, tiny)), encoding="utf-8")
    before = digest(folder)
    result = CliRunner().invoke(app, ["plan", "--config", str(config), "--launcher", "local", "--json"])
    assert result.exit_code in (0, 2), (result.exit_code, result.output, result.exception)
    if result.exit_code:
        assert_one_clear_refusal(result.output)
    assert digest(folder) == before
