"""Deterministic synthetic inputs: the same seed gives the same arrays in every framework."""
from __future__ import annotations

from typing import Any

import numpy as np

from models.registry import ModelSpec

# BERT's special token ids in the bert-base-uncased vocabulary; ids below 1000 are [unused] and specials.
_CLS, _SEP, _FIRST_WORD_ID = 101, 102, 1000


def make_inputs(spec: ModelSpec, batch_size: int, seed: int, options: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Inputs in the NCHW / token-id layout of the spec; frameworks that want NHWC transpose in their adapter."""
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, not {batch_size}")
    options = spec.resolve_options(options)
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for inp in spec.inputs:
        shape = spec.input_shape(inp, batch_size, options)
        if inp.kind == "image":
            # Standard normal is what a normalised (ImageNet mean/std) image looks like to the network.
            arrays[inp.name] = rng.standard_normal(shape, dtype=np.float32)
        elif inp.kind == "token_ids":
            ids = rng.integers(_FIRST_WORD_ID, spec.vocab_size, size=shape, dtype=np.int64)
            ids[:, 0], ids[:, -1] = _CLS, _SEP
            arrays[inp.name] = ids
        elif inp.kind == "attention_mask":
            arrays[inp.name] = np.ones(shape, dtype=np.int64)
        elif inp.kind == "token_type_ids":
            arrays[inp.name] = np.zeros(shape, dtype=np.int64)
        elif inp.kind == "prompt_ids":  # a generative model's prompt: the same ids in every runtime
            from models.llm.prompts import prompt_ids

            arrays[inp.name] = prompt_ids(seed, batch_size, shape[1], spec.vocab_size)
        elif inp.kind == "user":
            arrays[inp.name] = _declared(rng, shape, np.dtype(inp.dtype), inp.range)
        else:  # a new input kind must say how it is generated
            raise ValueError(f"model {spec.name}: no generator for input kind {inp.kind!r}")
    return arrays


def _declared(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype,
              value_range: tuple[float, float] | None) -> np.ndarray:
    """A user model's input in its declared dtype: uniform in [low, high) where a range is given, else standard
    normal floats and 0/1 integers (a mask's values, valid for any index input)."""
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if np.issubdtype(dtype, np.integer):
        low, high = value_range if value_range is not None else (0, 2)
        return rng.integers(int(low), int(high), size=shape, dtype=np.int64).astype(dtype)
    if value_range is not None:
        return rng.uniform(value_range[0], value_range[1], size=shape).astype(dtype)
    return rng.standard_normal(shape, dtype=np.float32).astype(dtype)
