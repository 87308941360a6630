"""ExportRequest target "ort-genai": a Hugging Face Llama-style checkpoint converted by ONNX Runtime GenAI's own
model builder (onnxruntime_genai.models.builder), run in the onnxruntime-genai environment.

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
from pathlib import Path
from typing import Any

from models.llm.folder_export import FolderConversion, run_folder_export
from runners.protocol import ExportRequest, ExportResult

GENAI_CONFIG = "genai_config.json"
_DISTRIBUTIONS = ("onnxruntime-genai", "onnxruntime-genai-cuda", "onnxruntime", "onnxruntime-gpu", "torch",
                  "transformers", "onnx")
# greenrt precision -> the builder's -p.
PRECISIONS = {"fp32": "fp32", "int4": "int4"}


def graph_facts(folder: Path) -> dict[str, Any]:
    """What the builder wrote, read back: the graph's files, MatMulNBits' bits, block size and accuracy level (each
    set of values seen), the decoder's shapes from genai_config.json. Weights are not loaded."""
    import onnx

    config = json.loads((folder / GENAI_CONFIG).read_text())
    decoder = config["model"]["decoder"]
    onnx_file = folder / decoder["filename"]
    graph = onnx.load(str(onnx_file), load_external_data=False).graph
    op_counts: dict[str, int] = {}
    nbits: dict[str, set] = {"bits": set(), "block_size": set(), "accuracy_level": set()}
    for node in graph.node:
        op_counts[node.op_type] = op_counts.get(node.op_type, 0) + 1
        if node.op_type == "MatMulNBits":
            for attribute in node.attribute:
                if attribute.name in nbits:
                    nbits[attribute.name].add(onnx.helper.get_attribute_value(attribute))
    facts: dict[str, Any] = {
        "files": sorted(p.name for p in folder.iterdir()),
        "head_size": decoder.get("head_size"),
        "num_hidden_layers": decoder.get("num_hidden_layers"),
        "num_key_value_heads": decoder.get("num_key_value_heads"),
        "context_length": config["model"].get("context_length"),
        "attention": "GroupQueryAttention" if op_counts.get("GroupQueryAttention") else
                     next((op for op in ("MultiHeadAttention", "Attention") if op_counts.get(op)), None),
        "matmul_nbits_nodes": op_counts.get("MatMulNBits", 0),
    }
    if op_counts.get("MatMulNBits"):
        # MatMulNBits' accuracy_level: 0 unset (the kernel's default), 1 fp32, 2 fp16, 3 bf16, 4 int8 compute.
        facts["scheme"] = {name: sorted(values) for name, values in nbits.items()}
    return facts


def _build(source: Path, out: Path, precision: str, provider: str) -> dict[str, Any]:
    from onnxruntime_genai.models.builder import create_model

    with tempfile.TemporaryDirectory(prefix="ort-genai-cache-") as cache:
        # input_path: the local folder (no hub access); the model name is then only a label.
        create_model(model_name=source.name, input_path=str(source), output_dir=str(out), precision=precision,
                     execution_provider=provider, cache_dir=cache)
    return {"builder_precision": precision, "builder_execution_provider": provider, **graph_facts(out)}


def verify_generates(folder: Path, provider: str = "cpu") -> dict[str, Any]:
    """Load `folder` in onnxruntime_genai and generate 2 tokens greedily after a 4-token prompt; what it gave."""
    import numpy as np
    import onnxruntime_genai as og

    config = og.Config(str(folder))
    config.clear_providers()
    if provider != "cpu":
        config.append_provider(provider)
    model = og.Model(config)
    params = og.GeneratorParams(model)
    prompt = np.array([[3, 4, 5, 6]], dtype=np.int32)
    params.set_search_options(do_sample=False, max_length=6, min_length=6, batch_size=1)
    generator = og.Generator(model, params)
    generator.append_tokens(prompt)
    while not generator.is_done():
        generator.generate_next_token()
    sequence = [int(t) for t in generator.get_sequence(0)]
    if len(sequence) != 6:
        raise RuntimeError(f"onnxruntime_genai generated {len(sequence) - 4} tokens of 2 asked for: {sequence}")
    return {"provider": provider, "generated": sequence[4:]}


def _conversion(target: str, provider: str) -> FolderConversion:
    return FolderConversion(
        target=target, exporter="onnxruntime_genai.models.builder", precisions=PRECISIONS,
        distributions=_DISTRIBUTIONS,
        convert=lambda source, out, precision: _build(source, out, precision, provider),
        verify=lambda folder: verify_generates(folder, provider))


def convert_ort_genai(request: ExportRequest) -> ExportResult:
    """The checkpoint at request.source_path to an ONNX Runtime GenAI folder for the CPU provider."""
    return run_folder_export(request, _conversion("ort-genai", "cpu"))


def convert_ort_genai_cuda(request: ExportRequest) -> ExportResult:
    """The same for the CUDA provider (the builder writes another graph for `-e cuda`). Unverified: it loads and
    runs the folder on CUDA, so it needs a GPU and the onnxruntime-genai-cuda environment."""
    return run_folder_export(request, _conversion("ort-genai-cuda", "cuda"))
