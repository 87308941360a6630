"""The prompt every generative runtime is fed: seeded token ids, so that no tokenizer is needed.

numpy only (every runtime's environment has it). Ids 0-2 are pad, bos and eos (models/llm/configs.py): a prompt
never holds them, so no runtime stops on or treats one specially.
"""
from __future__ import annotations

import numpy as np

FIRST_PROMPT_ID = 3


def prompt_ids(seed: int, batch_size: int, prompt_tokens: int, vocab_size: int) -> np.ndarray:
    """(batch_size, prompt_tokens) int64 ids drawn uniformly from [3, vocab_size) by numpy's default_rng(seed)."""
    if batch_size < 1 or prompt_tokens < 1:
        raise ValueError(f"a prompt needs a positive batch size and length, not {batch_size} x {prompt_tokens}")
    if vocab_size <= FIRST_PROMPT_ID:
        raise ValueError(f"vocab_size {vocab_size} leaves no ids above the special ones (0-{FIRST_PROMPT_ID - 1})")
    rng = np.random.default_rng(seed)
    return rng.integers(FIRST_PROMPT_ID, vocab_size, size=(batch_size, prompt_tokens), dtype=np.int64)
