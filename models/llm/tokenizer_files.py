"""Tokenizer files for a checkpoint whose prompts are token ids: no runtime needs a tokenizer to generate (every
adapter feeds models/llm/prompts.py's ids), but some converters refuse a folder without one (ORT GenAI's model
builder, optimum-intel's OpenVINO export, CTranslate2's vocabulary.json).

What satisfies them (FINDINGS): a `tokenizers` byte-level BPE whose vocabulary has exactly `vocab_size` entries, the
special tokens at the config's pad/bos/eos ids, the 256 byte symbols, then filler tokens, saved through
transformers' PreTrainedTokenizerFast (tokenizer.json, tokenizer_config.json). The fillers are never produced by
encoding (no merges make them): the vocabulary only has to be as large as the embedding matrix.

llama.cpp's converter rejects a plain BPE tokenizer.json and wants a SentencePiece model (tokenizer.model, with
byte fallback, padded to vocab_size): that writer belongs beside `write_tokenizer_files` here, called from
`write_all` (the hook), in an environment with `sentencepiece`; the torch environment has none.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = {"pad_token_id": "<pad>", "bos_token_id": "<s>", "eos_token_id": "</s>"}


def vocabulary(config: dict[str, Any]) -> dict[str, int]:
    """token -> id, exactly config["vocab_size"] entries: the special tokens at their ids, the byte-level alphabet,
    then fillers "<filler_{id}>"."""
    from tokenizers.pre_tokenizers import ByteLevel

    size = int(config["vocab_size"])
    specials = {name: int(config[key]) for key, name in SPECIAL_TOKENS.items() if config.get(key) is not None}
    alphabet = sorted(ByteLevel.alphabet())
    if size < len(specials) + len(alphabet):
        raise ValueError(f"vocab_size {size} is smaller than the {len(specials)} special tokens and the "
                         f"{len(alphabet)} byte symbols a byte-level tokenizer needs")
    vocab = dict(specials)
    free = (i for i in range(size) if i not in set(specials.values()))
    for symbol in alphabet:
        vocab[symbol] = next(free)
    for i in free:
        vocab[f"<filler_{i}>"] = i
    return vocab


def write_tokenizer_files(folder: Path, config: dict[str, Any]) -> list[str]:
    """tokenizer.json + tokenizer_config.json (+ special_tokens_map.json) in `folder`; the names written."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(vocab=vocabulary(config), merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = {key.removesuffix("_id"): name for key, name in SPECIAL_TOKENS.items()
                if config.get(key) is not None}
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=config["max_position_embeddings"],
                                   **specials)
    before = set(p.name for p in folder.iterdir())
    fast.save_pretrained(str(folder))
    # transformers 5 names the class TokenizersBackend, which a converter's older transformers does not know;
    # PreTrainedTokenizerFast is the same class in both.
    config_file = folder / "tokenizer_config.json"
    tokenizer_config = json.loads(config_file.read_text())
    tokenizer_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_file.write_text(json.dumps(tokenizer_config, indent=2, sort_keys=True) + "\n")
    return sorted(p.name for p in folder.iterdir() if p.name not in before)


def write_all(folder: Path, config: dict[str, Any]) -> list[str]:
    """Every tokenizer file the converters need, written into the checkpoint folder; the names written."""
    return write_tokenizer_files(folder, config)
