"""A user's own Hugging Face checkpoint folder (`[user_models.x] hf_checkpoint = "dir"`, `greenrt run --model DIR`),
checked before anything is measured: a folder with a config.json of a Llama-style architecture, its weights in
safetensors, and no remote code. Each refusal is one line naming what is wrong and what is valid.

What it reads: config.json (JSON, never executed) and the folder's listing; the files' bytes only for the digest that
keys every conversion made from the folder (orchestrator/execution/llm_artifacts.py).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import UserError
from orchestrator.safe_paths import existing_folder, shown

# The architectures every generative runtime's converter takes as a Llama (ONNX Runtime GenAI's model builder,
# optimum-intel, convert_hf_to_gguf.py, ct2-transformers-converter): the decoder greenrt's own models are.
LLAMA_STYLE = ("llama", "mistral")
SAFETENSORS = ".safetensors"
# Files that would run code, or weights that are a pickle: a folder holding them is refused, never loaded.
CODE_SUFFIXES = (".py",)
PICKLED = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


@dataclass(frozen=True)
class Checkpoint:
    """A checked checkpoint folder: where it is, its config.json, its size and the digest of its files."""

    path: str  # absolute
    config: dict[str, Any]
    size: int
    sha256: str  # over every file's name and bytes, in name order

    @property
    def model_type(self) -> str:
        return self.config["model_type"]


def folder_digest(folder: Path) -> tuple[int, str]:
    """(total bytes, sha256 over each regular file's name and content in name order): what keys its conversions."""
    digest, size = hashlib.sha256(), 0
    for file in sorted(p for p in folder.iterdir() if p.is_file()):
        digest.update(file.name.encode() + b"\0")
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    return size, digest.hexdigest()


def _config_problem(config: Any) -> str | None:
    if not isinstance(config, dict):
        return "config.json holds no JSON object"
    model_type = config.get("model_type")
    if not isinstance(model_type, str):
        return "config.json names no model_type"
    if model_type not in LLAMA_STYLE:
        return f"model_type {model_type!r} is not a Llama-style decoder ({', '.join(LLAMA_STYLE)})"
    if "auto_map" in config:
        return "config.json has an auto_map (remote code), which greenrt never runs"
    for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "vocab_size", "max_position_embeddings"):
        if not isinstance(config.get(key), int) or isinstance(config.get(key), bool) or config[key] < 1:
            return f"config.json has no positive integer {key}"
    return None


def checkpoint_problem(folder: Path, digest: bool = True) -> tuple[Checkpoint | None, str | None]:
    """(the checkpoint, None) or (None, why the folder is not one greenrt measures). Reads config.json, and every
    file for the digest (digest=False: a check only, size and digest left empty)."""
    names = sorted(p.name for p in folder.iterdir())
    if "config.json" not in names:
        return None, "no config.json in the folder"
    code = [n for n in names if n.endswith(CODE_SUFFIXES)]
    if code:
        return None, f"holds code ({', '.join(code[:3])}), which greenrt never runs"
    weights = [n for n in names if n.endswith(SAFETENSORS)]
    if not weights:
        pickled = [n for n in names if n.endswith(PICKLED)]
        return None, ("no .safetensors weights" + (f" (only pickled ones: {', '.join(pickled[:3])}, never loaded)"
                                                   if pickled else ""))
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"config.json is not readable JSON ({type(exc).__name__}: {str(exc)[:80]})"
    problem = _config_problem(config)
    if problem:
        return None, problem
    size, sha256 = folder_digest(folder) if digest else (0, "")
    return Checkpoint(str(folder.resolve()), config, size, sha256), None


VALID = (f"a folder with config.json (model_type {' or '.join(LLAMA_STYLE)}, no auto_map) and .safetensors "
         f"weights, no code")


def checked_checkpoint(path_text: str, where: str, digest: bool = True) -> tuple[Checkpoint | None, list[str]]:
    """The checkpoint at `path_text`, or one line "<where> = '<path>': <why>; valid: ..." (where: the config key
    that named it; an option, "--model", reads "--model '<path>': ..." as every path option's refusal does)."""
    named = where if where.startswith("--") else f"{where} ="
    try:
        folder = existing_folder(path_text, named)
    except UserError as exc:
        return None, [str(exc).split("; valid: ")[0] + f"; valid: {VALID}"]
    checkpoint, problem = checkpoint_problem(folder, digest)
    if problem:
        return None, [f"{named} {shown(path_text)}: {problem}; valid: {VALID}"]
    return checkpoint, []
