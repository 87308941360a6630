"""The exporter ("onnxruntime-genai", "ort-genai"): a Hugging Face Llama-style checkpoint folder converted by ONNX
Runtime GenAI's own model builder (onnxruntime_genai.models.builder), run in the onnxruntime-genai environment.

fp32 -> the builder's fp32 graph; int4 -> its int4 graph (MatMulNBits weights, block-wise symmetric by default,
the embedding and head kept as the builder keeps them). The builder's defaults are used as shipped; what it chose
(block size, accuracy level: the compute type of MatMulNBits, which changes both speed and fidelity a lot) is read
back from the written graph and recorded, not assumed. The builder is called through its Python function, not its
command line (its `--help` crashes in 0.18.0).

The written folder is then loaded and run in onnxruntime_genai (a 2-token greedy generation): a model that builds
but cannot run (GroupQueryAttention with a head_dim that is not a multiple of 16) fails the conversion, with the
runtime's words, instead of every run later.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from models.llm.checkpoint import distribution_versions, failed_export, staged_folder
from models.llm.converter_common import checkpoint_source, with_tokenizer
from runners.failures import RunnerError
from runners.protocol import ExportRequest, ExportResult

GENAI_CONFIG = "genai_config.json"
EXPORTER = "onnxruntime_genai.models.builder"
_DISTRIBUTIONS = ("onnxruntime-genai", "onnxruntime-genai-cuda", "onnxruntime", "onnxruntime-gpu", "torch",
                  "transformers", "onnx")
# greenrt precision -> the builder's -p (runners/runtimes_table.py's Family.schemes says the same).
PRECISIONS = {"fp32": "fp32", "int4": "int4"}


def graph_facts(folder: Path) -> dict[str, Any]:
    """What the builder wrote, read back (weights not loaded): the decoder's shapes from genai_config.json, its
    attention operator, and MatMulNBits' bits, block size, accuracy level and symmetry (each set of values seen)."""
    import onnx

    config = json.loads((folder / GENAI_CONFIG).read_text())
    decoder = config["model"]["decoder"]
    graph = onnx.load(str(folder / decoder["filename"]), load_external_data=False).graph
    op_counts: dict[str, int] = {}
    nbits: dict[str, set] = {"bits": set(), "block_size": set(), "accuracy_level": set(), "symmetric": set()}
    for node in graph.node:
        op_counts[node.op_type] = op_counts.get(node.op_type, 0) + 1
        if node.op_type == "MatMulNBits":
            # Inputs A, B, scales[, zero_points]: no zero points is the symmetric scheme.
            nbits["symmetric"].add(len(node.input) < 4 or not node.input[3])
            for attribute in node.attribute:
                if attribute.name in nbits:
                    nbits[attribute.name].add(onnx.helper.get_attribute_value(attribute))
    facts: dict[str, Any] = {
        "head_size": decoder.get("head_size"),
        "num_hidden_layers": decoder.get("num_hidden_layers"),
        "num_key_value_heads": decoder.get("num_key_value_heads"),
        "context_length": config["model"].get("context_length"),
        "attention": next((op for op in ("GroupQueryAttention", "MultiHeadAttention", "Attention")
                           if op_counts.get(op)), None),
        "matmul_nbits_nodes": op_counts.get("MatMulNBits", 0),
    }
    if op_counts.get("MatMulNBits"):
        # MatMulNBits' accuracy_level: the minimum compute precision, 0 unset (the kernel's choice), 1 fp32,
        # 2 fp16, 3 bf16, 4 int8 (the activations quantized to int8 per block).
        facts.update({name: sorted(values) for name, values in nbits.items()})
    return facts


def build(source: Path, out: Path, precision: str, provider: str) -> None:
    """The builder on the local folder `source` (no hub access), its defaults as shipped: what its command line
    does (`python -m onnxruntime_genai.models.builder -i source -o out -p precision -e provider -c cache`), in
    process: parse_extra_options reads the checkpoint's config, then create_model writes the folder."""
    from onnxruntime_genai.models.builder import create_model, parse_extra_options

    with tempfile.TemporaryDirectory(prefix="ort-genai-cache-") as cache:
        options = parse_extra_options(None, str(source), str(out), precision, provider, cache, None)
        create_model(None, str(source), str(out), precision, provider, cache, **options)


def verify_generates(folder: Path, provider: str = "cpu") -> dict[str, Any]:
    """Load `folder` in onnxruntime_genai and generate exactly 2 tokens greedily after a 4-token prompt."""
    import numpy as np
    import onnxruntime_genai as og

    config = og.Config(str(folder))
    config.clear_providers()
    if provider != "cpu":
        config.append_provider(provider)
    model = og.Model(config)
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, max_length=6, min_length=6, batch_size=1)
    generator = og.Generator(model, params)
    generator.append_tokens(np.array([[3, 4, 5, 6]], dtype=np.int32))
    while not generator.is_done():
        generator.generate_next_token()
    sequence = [int(t) for t in generator.get_sequence(0)]
    if len(sequence) != 6:
        raise RunnerError(f"onnxruntime_genai generated {len(sequence) - 4} tokens of 2 asked for: {sequence}")
    return {"loaded": f"onnxruntime_genai {og.__version__} on {provider}, 2 greedy tokens generated",
            "generated": sequence[4:]}


def _export(request: ExportRequest, provider: str) -> ExportResult:
    t0 = time.monotonic()
    phase = "bad-request"
    try:
        if request.precision not in PRECISIONS:
            raise RunnerError(f"onnxruntime-genai: precision {request.precision!r} is not one of "
                              f"{', '.join(PRECISIONS)}", kind="bad-request")
        checkpoint = checkpoint_source(request.source_path)
        phase = "export"
        with staged_folder(request.output_path) as stage, with_tokenizer(checkpoint) as (source, made):
            build(source, stage, PRECISIONS[request.precision], provider)
            built = time.monotonic()
            facts = graph_facts(stage)
            checks = verify_generates(stage, provider)
            checks.update(files=sorted(p.name for p in stage.iterdir()), build_seconds=built - t0,
                          verify_seconds=time.monotonic() - built, tokenizer_files_made=made)
        scheme = {"scheme": "int4"} if request.precision == "int4" else {}
        return ExportResult(framework=request.framework, model=request.model, status="ok",
                            output_path=request.output_path, exporter=EXPORTER, target=request.target,
                            versions=distribution_versions(*_DISTRIBUTIONS), seconds=time.monotonic() - t0,
                            precision=request.precision,
                            quantization={**scheme, "builder_precision": PRECISIONS[request.precision],
                                          "execution_provider": provider, **facts},
                            checks=checks)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a result with its kind
        return failed_export(request, exc, phase)


def export_ort_genai(request: ExportRequest) -> ExportResult:
    """The checkpoint at request.source_path to an ONNX Runtime GenAI folder for the CPU provider."""
    return _export(request, "cpu")


def export_ort_genai_cuda(request: ExportRequest) -> ExportResult:
    """The same for the CUDA provider (the builder writes another graph for `-e cuda`). UNVERIFIED: it loads and
    runs the folder on CUDA, so it needs a GPU and the onnxruntime-genai-cuda environment."""
    return _export(request, "cuda")
