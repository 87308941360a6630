"""ExportRequest target "ct2": a Hugging Face Llama-style checkpoint converted by CTranslate2's transformers
converter (the API behind `ct2-transformers-converter`), run in the ctranslate2 environment.

fp32 -> `--quantization float32` (weights saved as float32); int8 -> `--quantization int8` (linear weights int8
with a per-row float scale; CTranslate2 computes them as int8 GEMMs and the rest in float32 on the CPU). The
converter needs a tokenizer to write vocabulary.json (the runner maps token ids through it: generate_batch takes
token strings), and the vocabulary must cover the model's vocab_size, which is checked here.

The written folder is then loaded in ctranslate2.Generator on the CPU and made to generate 2 tokens.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.llm.folder_export import FolderConversion, run_folder_export
from runners.protocol import ExportRequest, ExportResult

VOCABULARY = "vocabulary.json"
_DISTRIBUTIONS = ("ctranslate2", "torch", "transformers")
# greenrt precision -> the converter's quantization.
PRECISIONS = {"fp32": "float32", "int8": "int8"}


def read_vocabulary(folder: Path) -> list[str]:
    """The converted model's tokens by id (vocabulary.json, a JSON list)."""
    return json.loads((folder / VOCABULARY).read_text())


def _convert(source: Path, out: Path, quantization: str) -> dict[str, Any]:
    from ctranslate2.converters import TransformersConverter

    TransformersConverter(str(source)).convert(str(out), quantization=quantization)
    vocab_size = json.loads((source / "config.json").read_text()).get("vocab_size")
    tokens = read_vocabulary(out)
    if vocab_size is not None and len(tokens) < vocab_size:
        raise RuntimeError(f"the converted vocabulary has {len(tokens)} tokens, fewer than the model's vocab_size "
                           f"{vocab_size}: ids above it could not be fed (give the checkpoint a tokenizer covering "
                           f"every id)")
    return {"quantization": quantization, "vocabulary_size": len(tokens),
            "files": sorted(p.name for p in out.iterdir())}


def verify_generates(folder: Path) -> dict[str, Any]:
    """Load `folder` on the CPU and generate exactly 2 tokens greedily after a 4-token prompt; what it gave."""
    import ctranslate2

    generator = ctranslate2.Generator(str(folder), device="cpu")
    tokens = read_vocabulary(folder)
    prompt = [tokens[i] for i in (3, 4, 5, 6)]
    result = generator.generate_batch([prompt], max_length=2, min_length=2, sampling_topk=1, beam_size=1,
                                      include_prompt_in_result=False)[0]
    ids = [int(t) for t in result.sequences_ids[0]]
    if len(ids) != 2:
        raise RuntimeError(f"ctranslate2 generated {len(ids)} tokens of 2 asked for: {ids}")
    return {"generated": ids, "compute_type": generator.compute_type}


CONVERSION = FolderConversion(target="ct2", exporter="ctranslate2.converters.TransformersConverter",
                              precisions=PRECISIONS, distributions=_DISTRIBUTIONS, convert=_convert,
                              verify=verify_generates)


def convert_ct2(request: ExportRequest) -> ExportResult:
    """The checkpoint at request.source_path to a CTranslate2 model folder."""
    return run_folder_export(request, CONVERSION)
