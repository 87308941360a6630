"""What the generative converters (ort_genai_export, ct2_export, convert_gguf, convert_openvino) ask of their source
the same way: a Hugging Face checkpoint folder, and, for the converters that insist on one, a tokenizer beside it.
Standard library only: each converter runs in its own runtime's environment."""
from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Iterator

from runners.failures import RunnerError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")


def checkpoint_refusal(source: str | None) -> str | None:
    """Why `source` is not a Hugging Face checkpoint folder a converter can read (None when it is)."""
    if not source:
        return "source_path (the Hugging Face checkpoint folder) is required"
    folder = Path(source)
    if not folder.is_dir():
        return f"source_path {source} is not a folder"
    if not (folder / "config.json").is_file() or not any(folder.glob("*.safetensors")):
        return f"source_path {source} is not a Hugging Face checkpoint folder (config.json and .safetensors)"
    return None


def checkpoint_source(source: str | None) -> Path:
    """`source` as the checkpoint folder to convert from; a bad request (one line naming what it lacks) when it is
    not one."""
    refusal = checkpoint_refusal(source)
    if refusal:
        raise RunnerError(refusal, kind="bad-request")
    return Path(source)


@contextlib.contextmanager
def with_tokenizer(source: Path) -> Iterator[tuple[Path, list[str]]]:
    """(a folder to convert from, the tokenizer files made for it): `source` itself when it has a tokenizer; else,
    for a user's folder without one, a temporary folder of links to its files plus tokenizer files made from its
    vocabulary size (models/llm/tokenizer_files.py). The converters insist on a tokenizer; no runtime needs one to
    generate from ids, and the user's folder is never written to."""
    if any((source / name).is_file() for name in TOKENIZER_FILES):
        yield source, []
        return
    from models.llm.tokenizer_files import write_all

    with tempfile.TemporaryDirectory(prefix="hf-with-tokenizer-") as temp:
        folder = Path(temp)
        for entry in source.iterdir():
            (folder / entry.name).symlink_to(entry.resolve())
        yield folder, write_all(folder, json.loads((source / "config.json").read_text()))
