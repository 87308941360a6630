"""A user model's names checked against what will run it, before anything is written: declared `outputs` against the
model file (an ONNX graph's output names; the number a .pt2 program or a .keras model returns, whose outputs the
config only labels), and an `hf` model's type, class, inputs and outputs against the transformers of the environment
that builds it (provisioning.transformers_probe asks that interpreter once and caches the answer).

Each mistake is one line naming the model, what is wrong and the valid choices. Where no environment with transformers
exists yet, the hf check is deferred with a warning, not refused: building an environment (minutes, gigabytes) only to
check a name would make `greenrt plan` build it, and the sweep builds it only after its results folder is made.
"""
from __future__ import annotations

import difflib
import logging
from typing import Mapping

from models.user_files import Declared
from orchestrator.provisioning.transformers_probe import (HF_ENVIRONMENT, ProbeError, TransformersFacts,
                                                          hf_interpreter, transformers_facts)
from runners.protocol import UserModel

logger = logging.getLogger(__name__)
HF_DEFAULT_OUTPUTS = ("last_hidden_state",)
EXAMPLE_TYPES = ("bert", "gpt2", "vit", "t5", "llama")


def _names(values) -> str:
    return ", ".join(values) or "none"


def output_mistakes(where: str, fmt: str, outputs: list[str], declared: Declared) -> list[str]:
    """The config's `outputs` against the file's. Pure."""
    have = list(declared.outputs)
    if not have:
        return []
    if fmt == "onnx":
        missing = [n for n in outputs if n not in have]
        if missing:
            return [f"{where}.outputs: the model has no output {_names(missing)}; valid: the graph's outputs "
                    f"({_names(have)})"]
        return []
    if len(outputs) != len(have):  # .pt2, .keras: the config names the outputs the model returns, in order
        return [f"{where}.outputs = {outputs}: {len(outputs)} name(s), but the model returns {len(have)} output(s) "
                f"({_names(have)}); valid: {len(have)} name(s), one per output in order"]
    return []


def _at(name: str, model: UserModel) -> str:
    hf = model.hf
    if hf.config is not None:
        return f"user_models.{name}.hf.config = {model.path!r}: model_type {hf.model_type!r}"
    return f"user_models.{name}.hf.model_type = {hf.model_type!r}"


def hf_mistakes(name: str, model: UserModel, facts: TransformersFacts, where_built: str) -> list[str]:
    """An hf model against what transformers says (its type, the base model class greenrt builds, that class's
    forward inputs and output fields): the first mistake, one line; [] when it fits. Pure."""
    kind, at, known = model.hf.model_type, _at(name, model), facts.model_types
    with_class = sorted(t for t, c in known.items() if c)
    if kind not in known:
        close = difflib.get_close_matches(kind, list(known), n=5, cutoff=0.6)
        valid = _names(close) if close else "e.g. " + _names(t for t in EXAMPLE_TYPES if t in known)
        return [f"{at}: transformers {facts.version} ({where_built}) knows no such model type; valid: {valid} (or "
                f"another of its {len(known)} model types)"]
    if not known[kind]:
        close = difflib.get_close_matches(kind, with_class, n=5, cutoff=0.5)
        return [f"{at}: transformers {facts.version} has no base model class (AutoModel) for it, which greenrt "
                f"builds; valid: a model type with one, e.g. {_names(close or [t for t in EXAMPLE_TYPES if t in known])}"]
    built = facts.classes.get(kind)
    if built is None:
        return []
    if built.problem:
        return [f"{at}: its model class does not import in {where_built} ({built.problem}); valid: install what it "
                f"needs there, or another model type"]
    where = f"user_models.{name}"
    for index, given in enumerate(model.inputs):
        if given.name not in built.inputs:
            return [f"{where}.inputs[{index}].name = {given.name!r}: {built.model_class}.forward takes no such "
                    f"input; valid: {_names(built.inputs[:10])}"]
    missing = [o for o in model.outputs if built.outputs is not None and o not in built.outputs]
    if missing:
        default = " (the default when outputs is left out)" if tuple(model.outputs) == HF_DEFAULT_OUTPUTS else ""
        return [f"{where}.outputs = {model.outputs}{default}: {built.model_class} returns no {_names(missing)}; "
                f"valid: {_names(built.outputs)}"]
    return []


def hf_model_mistakes(entries: Mapping[str, dict], interpreters: Mapping[str, str],
                      python: str | None = None) -> list[str]:
    """Every hf user model against the transformers that will build it (the config's interpreters.torch, else
    --python where the caller knows it, else the torch venv once built); a warning, not a refusal, while none exists."""
    models = {name: UserModel.from_entry(entry) for name, entry in entries.items() if entry.get("format") == "hf"}
    if not models:
        return []
    given = interpreters.get(HF_ENVIRONMENT) or python
    python, what = hf_interpreter(interpreters, python)
    if python is None:
        logger.warning(f"user model(s) {', '.join(models)}: hf model type not checked against transformers yet: "
                       f"{what}; a type it does not know fails those runs at load")
        return []
    try:
        facts = transformers_facts(python, tuple(sorted({m.hf.model_type for m in models.values()})))
    except ProbeError as exc:
        if what != f"the {HF_ENVIRONMENT} environment":  # the user's own interpreter: it cannot build these models
            return [f"{what} = {given!r}: {exc}, which builds user model(s) "
                    f"{', '.join(models)} (hf); valid: an interpreter with images/{HF_ENVIRONMENT}/requirements.txt"]
        logger.warning(f"user model(s) {', '.join(models)}: hf model type not checked against transformers: {exc}")
        return []
    return [line for name, model in models.items() for line in hf_mistakes(name, model, facts, what)]
