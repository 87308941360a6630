"""Which models pair with which runtimes by kind, and what a generative runtime cannot run, said at plan time.

Pure. A model runs only on runtimes of its kind (runners.runtimes_table.KINDS: a classifier's forward pass, a
generative model's generate call): a config naming both kinds plans the pairs that match and says once which pairs it
left out. What a generative runtime's kernels refuse (FINDINGS, "Generative runtimes, tried here offline") is a
skipped cell with the reason, from the model's config (models/llm/configs.py, or a user's config.json) and the runtime.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from models.llm.configs import head_dim
from runners.runtimes_table import FORWARD, GENERATIVE, runtime_kind

# greenrt's precision names for generative runtimes; each runtime's own scheme (q8_0, int4 block 32, ...) is its
# row's (runtimes_table Family.schemes) and is recorded by its converter.
GENERATIVE_PRECISIONS = ("fp32", "fp16", "int8", "int4")

# ONNX Runtime GenAI's GroupQueryAttention needs head_dim a multiple of 16 (head_dim 24 builds, then fails at run
# time: FINDINGS), so such a model is refused before its conversion is attempted.
HEAD_DIM_MULTIPLE: dict[str, int] = {"onnxruntime-genai": 16}
# Runtimes that generate one sequence per call: llama-cpp-python's high-level API has no batching (FINDINGS).
ONE_SEQUENCE: dict[str, str] = {"llama.cpp": "llama-cpp-python's generate runs one sequence at a time"}

KIND_WORDS = {FORWARD: "classifier", GENERATIVE: "generative"}


def kind_pairs(models: Mapping[str, str], runtimes: list[str]) -> tuple[set[tuple[str, str]], str | None]:
    """(the (model, runtime) pairs of one kind, one line naming the pairs left out and why; None when none is).

    models: each model's kind (ModelSpec.kind)."""
    kept, left_out = set(), []
    for model, kind in models.items():
        for runtime in runtimes:
            if runtime_kind(runtime) == kind:
                kept.add((model, runtime))
            else:
                left_out.append((model, runtime))
    if not left_out:
        return kept, None
    shown = ", ".join(f"{m} x {r}" for m, r in left_out[:4]) + (f" and {len(left_out) - 4} more"
                                                                 if len(left_out) > 4 else "")
    kinds = sorted({models[m] for m, _ in left_out})
    rule = "; ".join(f"{KIND_WORDS[k]} models ({', '.join(m for m in models if models[m] == k)}) run only on "
                     f"{KIND_WORDS[k]} runtimes" for k in kinds)
    return kept, f"{len(left_out)} model x runtime pairs left out ({shown}): {rule}"


def generative_refusal(framework: str, batch_size: int, config: Mapping[str, Any]) -> str | None:
    """Why the generative runtime of `framework` cannot run a model of this config at this batch size; None: it
    can (as far as is known before converting it)."""
    multiple = HEAD_DIM_MULTIPLE.get(framework)
    if multiple is not None and head_dim(dict(config)) % multiple:
        return (f"{framework}: head_dim {head_dim(dict(config))} is not a multiple of {multiple} (its "
                f"GroupQueryAttention kernel needs one)")
    if batch_size > 1 and framework in ONE_SEQUENCE:
        return f"{framework}: batch {batch_size} > 1: {ONE_SEQUENCE[framework]}"
    return None
