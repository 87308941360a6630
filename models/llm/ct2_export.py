"""The exporter ("ctranslate2", "ct2"): a Hugging Face Llama-style checkpoint folder converted by CTranslate2's
transformers converter (the API behind `ct2-transformers-converter`), run in the ctranslate2 environment.

fp32 -> `--quantization float32` (weights saved as float32); int8 -> `--quantization int8` (linear weights int8
with a per-row float scale; CTranslate2 computes them as int8 GEMMs and the rest in float32 on the CPU). The
converter needs a tokenizer to write vocabulary.json (the runner maps token ids through it: generate_batch takes
token strings), and the vocabulary must cover the model's vocab_size, which is checked here.

The written folder is then loaded in ctranslate2.Generator on the CPU and made to generate 2 tokens.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from models.llm.checkpoint import distribution_versions, failed_export, staged_folder
from models.llm.converter_common import checkpoint_source, with_tokenizer
from runners.failures import RunnerError
from runners.protocol import ExportRequest, ExportResult

VOCABULARY = "vocabulary.json"
EXPORTER = "ctranslate2.converters.TransformersConverter"
_DISTRIBUTIONS = ("ctranslate2", "torch", "transformers")
# greenrt precision -> the converter's quantization (runners/runtimes_table.py's Family.schemes says the same).
PRECISIONS = {"fp32": "float32", "int8": "int8"}


def read_vocabulary(folder: Path) -> list[str]:
    """The converted model's tokens by id (vocabulary.json, a JSON list)."""
    return json.loads((folder / VOCABULARY).read_text())


def convert(source: Path, out: Path, quantization: str) -> int:
    """TransformersConverter on the local folder `source`; the size of the vocabulary written, checked to cover
    the model's vocab_size (every prompt id must map to a token)."""
    from ctranslate2.converters import TransformersConverter

    TransformersConverter(str(source)).convert(str(out), quantization=quantization, force=True)
    vocab_size = json.loads((source / "config.json").read_text()).get("vocab_size")
    size = len(read_vocabulary(out))
    if vocab_size is not None and size < vocab_size:
        raise RunnerError(f"the converted vocabulary has {size} tokens, fewer than the model's vocab_size "
                          f"{vocab_size}: ids above it could not be fed (give the checkpoint a tokenizer covering "
                          f"every id)")
    return size


def verify_generates(folder: Path) -> dict[str, Any]:
    """Load `folder` on the CPU and generate exactly 2 tokens greedily after a 4-token prompt."""
    import ctranslate2

    generator = ctranslate2.Generator(str(folder), device="cpu")
    tokens = read_vocabulary(folder)
    result = generator.generate_batch([[tokens[i] for i in (3, 4, 5, 6)]], max_length=2, min_length=2,
                                      sampling_topk=1, beam_size=1, include_prompt_in_result=False)[0]
    ids = [int(t) for t in result.sequences_ids[0]]
    if len(ids) != 2:
        raise RunnerError(f"ctranslate2 generated {len(ids)} tokens of 2 asked for: {ids}")
    return {"loaded": f"ctranslate2 {ctranslate2.__version__} Generator on cpu, 2 greedy tokens generated",
            "generated": ids, "compute_type": generator.compute_type}


def export_ct2(request: ExportRequest) -> ExportResult:
    """The checkpoint at request.source_path to a CTranslate2 model folder."""
    t0 = time.monotonic()
    phase = "bad-request"
    try:
        if request.precision not in PRECISIONS:
            raise RunnerError(f"ctranslate2: precision {request.precision!r} is not one of {', '.join(PRECISIONS)}",
                              kind="bad-request")
        checkpoint = checkpoint_source(request.source_path)
        phase = "export"
        quantization = PRECISIONS[request.precision]
        with staged_folder(request.output_path) as stage, with_tokenizer(checkpoint) as (source, made):
            size = convert(source, stage, quantization)
            converted = time.monotonic()
            checks = verify_generates(stage)
            checks.update(files=sorted(p.name for p in stage.iterdir()), vocabulary_size=size,
                          convert_seconds=converted - t0, verify_seconds=time.monotonic() - converted,
                          tokenizer_files_made=made)
        # int8: CTranslate2 stores linear weights as int8 with one float scale per output row.
        scheme = {"scheme": "int8", "per_channel": True} if request.precision == "int8" else {}
        return ExportResult(framework=request.framework, model=request.model, status="ok",
                            output_path=request.output_path, exporter=EXPORTER, target=request.target,
                            versions=distribution_versions(*_DISTRIBUTIONS), seconds=time.monotonic() - t0,
                            precision=request.precision, quantization={**scheme, "quantization": quantization},
                            checks=checks)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a result with its kind
        return failed_export(request, exc, phase)
