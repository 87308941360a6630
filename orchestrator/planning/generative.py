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
from runners.runtimes_table import FORWARD, GENERATIVE, GENERATIVE_FAMILIES, runtime_kind

# greenrt's precision names for generative runtimes; each runtime's own scheme (q8_0, int4 block 32, ...) is its
# row's (runtimes_table Family.schemes) and is recorded by its converter.
GENERATIVE_PRECISIONS = ("fp32", "fp16", "int8", "int4")

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
    can (as far as is known before converting it). The limits are its row's (runtimes_table Family.limits: ONNX
    Runtime GenAI's head_dim multiple, llama.cpp's batch 1), which its adapter also refuses before loading."""
    family = next((f for f in GENERATIVE_FAMILIES if f.framework == framework), None)
    if family is None:
        return None
    return family.head_dim_refusal(head_dim(dict(config))) or family.batch_refusal(batch_size)
