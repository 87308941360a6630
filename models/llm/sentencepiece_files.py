"""A small SentencePiece tokenizer (tokenizer.model) for a checkpoint that has none, for converters that insist on one.

llama.cpp's convert_hf_to_gguf.py reads a Llama checkpoint's vocabulary from a SentencePiece model and refuses a plain
BPE tokenizer.json whose pre-tokenizer it does not recognise (FINDINGS). greenrt feeds token ids, never text, so the
tokenizer only has to exist and to agree with the model on the special ids: this one is trained by SentencePiece's
own trainer on a fixed synthetic corpus (deterministic: one thread, a fixed seed text), BPE with byte fallback so
that any text still encodes, with unk/bos/eos at the model's ids. Its pieces are fewer than the model's vocabulary;
the converter pads the rest with unused [PAD<i>] tokens up to vocab_size, so every id the model has is a token.
"""
from __future__ import annotations

import io
from pathlib import Path

# SentencePiece's BPE with byte fallback needs the 256 byte pieces, the 3 special ones and the corpus' characters.
PIECES = 512
MIN_VOCAB = 300


def _corpus() -> list[str]:
    """A fixed synthetic corpus: lowercase words built from a counter, so the trainer sees the same text everywhere."""
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    words = []
    for i in range(4000):
        word, n = "", i * 7919 + 13
        while True:
            word += letters[n % len(letters)]
            n //= len(letters)
            if n == 0:
                break
        words.append(word)
    return [" ".join(words[j:j + 12]) for j in range(0, len(words), 12)]


def sentencepiece_model(vocab_size: int, unk_id: int = 0, bos_id: int = 1, eos_id: int = 2) -> bytes:
    """The serialized SentencePiece model (the bytes of a tokenizer.model) with min(PIECES, vocab_size) pieces."""
    import sentencepiece as spm

    if vocab_size < MIN_VOCAB:
        raise ValueError(f"a SentencePiece model with byte fallback needs a vocabulary of at least {MIN_VOCAB} "
                         f"(256 byte pieces, the special ones and the corpus' letters); the model has {vocab_size}")
    if len({unk_id, bos_id, eos_id}) != 3 or max(unk_id, bos_id, eos_id) >= 3 or min(unk_id, bos_id, eos_id) < 0:
        raise ValueError(f"unk, bos and eos must be the ids 0, 1 and 2 in some order (have {unk_id}, {bos_id}, "
                         f"{eos_id}): SentencePiece puts its special pieces first")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_corpus()), model_writer=model, vocab_size=min(PIECES, vocab_size),
        model_type="bpe", byte_fallback=True, character_coverage=1.0, num_threads=1,
        unk_id=unk_id, bos_id=bos_id, eos_id=eos_id, pad_id=-1, hard_vocab_limit=False,
        minloglevel=2)  # 2: errors only (the trainer logs every step to stderr otherwise)
    return model.getvalue()


def write_sentencepiece_model(folder: str | Path, vocab_size: int, unk_id: int = 0, bos_id: int = 1,
                              eos_id: int = 2) -> Path:
    """Write folder/tokenizer.model (see sentencepiece_model) and check that SentencePiece loads it back."""
    import sentencepiece as spm

    path = Path(folder) / "tokenizer.model"
    path.write_bytes(sentencepiece_model(vocab_size, unk_id, bos_id, eos_id))
    loaded = spm.SentencePieceProcessor(model_file=str(path))
    if (loaded.bos_id(), loaded.eos_id(), loaded.unk_id()) != (bos_id, eos_id, unk_id):
        raise RuntimeError(f"{path}: SentencePiece reads bos/eos/unk {loaded.bos_id()}/{loaded.eos_id()}/"
                           f"{loaded.unk_id()}, not {bos_id}/{eos_id}/{unk_id}")
    return path
