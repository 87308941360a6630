"""A user model's declared names against what will run it (issue 22, point 2): `outputs` against the model file, and
an `hf` model's type, base model class, inputs and outputs against the transformers of the environment that builds
it, asked once per interpreter and transformers version and cached; deferred, not refused, while no such
environment exists."""
from __future__ import annotations

import json
import logging
import stat
import sys
from pathlib import Path

import pytest

from models.user_files import Declared, DeclaredInput
from orchestrator.errors import UserError
from orchestrator.planning.config import parse_config
from orchestrator.planning.user_models import user_model_entries
from orchestrator.planning.user_model_checks import hf_mistakes, hf_model_mistakes, output_mistakes
from orchestrator.provisioning import transformers_probe
from orchestrator.provisioning.transformers_probe import HfClass, TransformersFacts, transformers_facts
from runners.protocol import UserModel
from testkit.onnx_models import onnx_helper_model

HF_INPUTS = [{"name": "input_ids", "shape": ["batch", 8], "dtype": "int64", "range": [0, 100]}]


def config(user_models: dict, **more):
    return parse_config({"name": "c", "models": list(user_models), "batch_sizes": [1],
                         "runtimes": ["onnxruntime/onnx/cpu", "torch/native/cpu"], "user_models": user_models, **more})


# -- outputs against the model file ---------------------------------------------------------------------------------
def test_onnx_outputs_the_graph_does_not_have_are_refused_naming_the_ones_it_has(tmp_path):
    tiny = str(onnx_helper_model(tmp_path / "tiny.onnx"))
    with pytest.raises(UserError) as refused:
        config({"m": {"onnx": tiny, "outputs": ["y", "logits"]}})
    assert str(refused.value).splitlines() == [
        "config: user_models.m.outputs: the model has no output logits; valid: the graph's outputs (y)"]
    assert config({"m": {"onnx": tiny, "outputs": ["y"]}}).user_model("m").outputs == ["y"]


def test_program_and_keras_outputs_are_labels_but_their_number_is_the_files():
    declared = Declared((DeclaredInput("x", ("batch", 8), "float32"),), ("linear", "relu"))
    for fmt in ("torch", "keras"):
        assert output_mistakes("user_models.m", fmt, ["a", "b"], declared) == []
        assert output_mistakes("user_models.m", fmt, ["a"], declared) == [
            "user_models.m.outputs = ['a']: 1 name(s), but the model returns 2 output(s) (linear, relu); valid: 2 "
            "name(s), one per output in order"]


# -- hf against what transformers says (pure) ---------------------------------------------------------------------
FACTS = TransformersFacts("9.9.0", {"bert": "BertModel", "albert": "AlbertModel", "roberta": "RobertaModel",
                                    "encoder-decoder": None, "vit": "ViTModel", "timm_wrapper": "TimmWrapperModel"},
                          {"bert": HfClass("BertModel", ("input_ids", "attention_mask"),
                                           ("last_hidden_state", "pooler_output")),
                           "timm_wrapper": HfClass(problem="ImportError: needs the timm library")})


def hf_model(model_type: str, inputs=("input_ids",), outputs=("last_hidden_state",), config=None) -> UserModel:
    return UserModel.from_entry({
        "name": "m", "format": "hf", "loader": "-", "path": "/c/config.json" if config else None,
        "inputs": [{"name": n, "shape": [8], "dtype": "int64"} for n in inputs], "outputs": list(outputs),
        "hf": {"model_type": model_type, "config": config}})


def test_an_unknown_model_type_is_named_with_the_closest_known_ones():
    assert hf_mistakes("m", hf_model("bertt"), FACTS, "the torch environment") == [
        "user_models.m.hf.model_type = 'bertt': transformers 9.9.0 (the torch environment) knows no such model "
        "type; valid: bert, albert, roberta (or another of its 6 model types)"]
    line, = hf_mistakes("m", hf_model("rbrt", config={"model_type": "rbrt"}), FACTS, "x")
    assert line.startswith("user_models.m.hf.config = '/c/config.json': model_type 'rbrt': transformers 9.9.0")


def test_a_known_type_without_the_class_greenrt_builds_is_refused():
    line, = hf_mistakes("m", hf_model("encoder-decoder"), FACTS, "x")
    assert "has no base model class (AutoModel) for it, which greenrt builds; valid: a model type with one" in line
    line, = hf_mistakes("m", hf_model("timm_wrapper"), FACTS, "the torch environment")
    assert "its model class does not import in the torch environment (ImportError: needs the timm library)" in line


def test_hf_inputs_and_outputs_are_checked_against_the_class():
    assert hf_mistakes("m", hf_model("bert", outputs=("last_hidden_state", "pooler_output")), FACTS, "x") == []
    assert hf_mistakes("m", hf_model("bert", inputs=("input_ids", "pixel_values")), FACTS, "x") == [
        "user_models.m.inputs[1].name = 'pixel_values': BertModel.forward takes no such input; valid: input_ids, "
        "attention_mask"]
    assert hf_mistakes("m", hf_model("bert", outputs=("logits",)), FACTS, "x") == [
        "user_models.m.outputs = ['logits']: BertModel returns no logits; valid: last_hidden_state, pooler_output"]
    # A type whose class was not asked about (nothing more known of it) passes on its type alone.
    assert hf_mistakes("m", hf_model("vit", inputs=("pixel_values",)), FACTS, "x") == []


def test_without_an_environment_with_transformers_the_check_is_deferred_not_refused(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GREENRT_CACHE", str(tmp_path / "cache"))  # no torch venv built here
    entry = {"name": "m", "format": "hf", "loader": "-", "inputs": [], "outputs": ["last_hidden_state"],
             "hf": {"model_type": "no-such-type"}}
    with caplog.at_level(logging.WARNING, logger="orchestrator"):
        assert hf_model_mistakes({"m": entry}, {}) == []
    assert "hf model type not checked against transformers yet: the torch environment is not built yet" in caplog.text
    assert not (tmp_path / "cache").exists()  # nothing built, nothing written


# -- the probe: the real subprocess against a stand-in transformers, and its cache --------------------------------
STANDIN = {
    "configuration_auto.py": "CONFIG_MAPPING_NAMES = {'bert': 'BertConfig', 'encoder-decoder': 'EDConfig', "
                             "'timm_wrapper': 'TConfig'}\nCONFIG_MAPPING = {k: k for k in CONFIG_MAPPING_NAMES}\n",
    "modeling_auto.py": """
import dataclasses

MODEL_MAPPING_NAMES = {"bert": "BertModel", "timm_wrapper": "TimmWrapperModel"}

@dataclasses.dataclass
class Output:
    last_hidden_state: object = None
    pooler_output: object = None

class BertModel:
    def forward(self, input_ids=None, attention_mask=None, **kwargs) -> Output:
        pass

class Mapping(dict):
    def __getitem__(self, key):
        if key == "timm_wrapper":
            raise ImportError("needs the timm library")
        return BertModel

MODEL_MAPPING = Mapping()
"""}


def standin_interpreter(tmp_path: Path, version: str) -> tuple[str, Path]:
    """A Python whose transformers is a stand-in of `version`, counting the interpreter's starts."""
    site = tmp_path / f"site-{version}"
    package = site / "transformers" / "models" / "auto"
    package.mkdir(parents=True)
    for folder in (site / "transformers", site / "transformers" / "models", package):
        (folder / "__init__.py").write_text("")
    for name, text in STANDIN.items():
        (package / name).write_text(text)
    info = site / f"transformers-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: transformers\nVersion: {version}\n")
    starts = tmp_path / f"starts-{version}"
    python = tmp_path / f"python-{version}"
    python.write_text(f"#!/bin/sh\necho \"$2\" | head -c 30 >> {starts}; echo >> {starts}\n"
                      f"PYTHONPATH={site} exec {sys.executable} \"$@\"\n")
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    return str(python), starts


def probes(starts: Path) -> int:
    """How many times the (slow) probe ran, not the version's metadata read."""
    return sum("import dataclasses" in line for line in starts.read_text().splitlines())


@pytest.mark.process
def test_the_probe_is_paid_once_per_interpreter_and_version(tmp_path, monkeypatch):
    monkeypatch.setenv("GREENRT_CACHE", str(tmp_path / "cache"))
    transformers_probe.transformers_version.cache_clear()
    python, starts = standin_interpreter(tmp_path, "9.9.0")
    facts = transformers_facts(python, ("bert", "nope"))
    assert facts.version == "9.9.0" and facts.model_types == {"bert": "BertModel", "encoder-decoder": None,
                                                              "timm_wrapper": "TimmWrapperModel"}
    assert facts.classes == {"bert": HfClass("BertModel", ("input_ids", "attention_mask"),
                                             ("last_hidden_state", "pooler_output"))}
    assert transformers_facts(python, ("bert", "nope")) == facts and probes(starts) == 1  # from the cache
    more = transformers_facts(python, ("timm_wrapper",))  # a type not asked before: asked once, then kept
    assert more.classes["timm_wrapper"].problem == "ImportError: needs the timm library"
    assert transformers_facts(python, ("bert", "timm_wrapper")).classes == more.classes and probes(starts) == 2
    newer, newer_starts = standin_interpreter(tmp_path, "9.10.0")  # another version: its own answer
    assert transformers_facts(newer, ("bert",)).version == "9.10.0" and probes(newer_starts) == 1
    cached = list((tmp_path / "cache" / "probes").iterdir())
    assert len(cached) == 2 and all(json.loads(p.read_text())["details"] for p in cached)


@pytest.mark.process
def test_an_interpreter_named_for_torch_without_transformers_is_refused_for_hf_models(tmp_path, monkeypatch):
    monkeypatch.setenv("GREENRT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "site" / "torch").mkdir(parents=True)
    (tmp_path / "site" / "torch" / "__init__.py").write_text("")
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\nPYTHONPATH={tmp_path / 'site'} exec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    with pytest.raises(UserError) as refused:
        config({"m": {"hf": {"model_type": "bert"}, "inputs": HF_INPUTS}}, interpreters={"torch": str(python)})
    assert str(refused.value).splitlines() == [
        f"config: interpreters.torch = '{python}': {python} has no transformers module, which builds user model(s) "
        f"m (hf); valid: an interpreter with images/torch/requirements.txt"]
    # The same interpreter given as --python (the sweep's caller knows it; the config does not) is asked the same way.
    entries, _ = user_model_entries({"m": {"hf": {"model_type": "bert"}, "inputs": HF_INPUTS}})
    assert hf_model_mistakes(entries, {}, str(python)) == [
        f"--python = '{python}': {python} has no transformers module, which builds user model(s) m (hf); valid: an "
        f"interpreter with images/torch/requirements.txt"]


@pytest.mark.process
def test_a_sweeps_python_is_asked_about_its_hf_models_before_anything_is_written(tmp_path, monkeypatch):
    """`greenrt sweep --python P` builds the hf models with P's transformers: judged by it, not by the torch venv's."""
    from orchestrator.execution.sweep import refuse_python
    from orchestrator.planning.planner import HostCapabilities, plan_sweep

    monkeypatch.setenv("GREENRT_CACHE", str(tmp_path / "cache"))
    transformers_probe.transformers_version.cache_clear()
    python, _ = standin_interpreter(tmp_path, "9.11.0")
    (tmp_path / "site-9.11.0" / "torch").mkdir()
    (tmp_path / "site-9.11.0" / "torch" / "__init__.py").write_text("")
    # roberta: a type the real transformers knows (the config's own check passes) and the stand-in does not.
    cfg = parse_config({"name": "c", "models": ["m"], "batch_sizes": [1], "runtimes": ["torch/native/cpu"],
                        "user_models": {"m": {"hf": {"model_type": "roberta"}, "inputs": HF_INPUTS}}})
    with pytest.raises(UserError) as refused:
        refuse_python(python, plan_sweep(cfg, HostCapabilities()), cfg)
    assert "roberta" in str(refused.value) and "valid:" in str(refused.value)
    assert len(str(refused.value).splitlines()) == 1
