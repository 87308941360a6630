"""A Hugging Face Llama checkpoint folder -> OpenVINO IR for OpenVINO GenAI (target "openvino-genai"), in the
openvino-genai environment, by optimum-intel's own exporter (`optimum-cli export openvino`):

    greenrt precision  optimum-cli arguments                                  scheme recorded
    fp32               --weight-format fp32                                   fp32 weights
    int8               --weight-format int8                                   int8 per output channel, asymmetric
    int4               --weight-format int4 --group-size 32 --sym --ratio 1.0 int4 groups of 32, symmetric

int4 uses groups of 32 (symmetric) for every model: OpenVINO's own default (groups of 128, asymmetric) fails on
sizes that are not multiples of 128 (FINDINGS), and 32 is ONNX Runtime GenAI's int4 block too, so the two int4
cells compare like with like. nncf keeps some weights in a backup precision (the embedding, int8 asymmetric): the
weights actually written are counted by element type from the IR and recorded.

The task is text-generation-with-past (a stateful model: the KV cache lives inside the IR, as LLMPipeline wants).
optimum-intel 2.2.0 requires torchvision, and PyPI's torchvision is built for CUDA torch: importing it against the
CPU torch fails, and transformers imports it when it is installed. The CLI therefore runs in a child process of
this module (`python -m models.llm.convert_openvino optimum-cli ...`) that hides torchvision first
(sys.modules["torchvision"] = None: importlib finds no such module, so transformers treats it as absent).

What was written is loaded by LLMPipeline and generates PROBE_NEW_TOKENS tokens from a short prompt before the
folder is renamed into place.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

# greenrt precision -> optimum-cli's weight arguments, and the scheme as recorded.
WEIGHT_ARGUMENTS: dict[str, list[str]] = {
    "fp32": ["--weight-format", "fp32"],
    "int8": ["--weight-format", "int8"],
    "int4": ["--weight-format", "int4", "--group-size", "32", "--sym", "--ratio", "1.0"],
}
SCHEMES: dict[str, dict] = {
    "fp32": {"scheme": "fp32"},
    "int8": {"scheme": "int8", "granularity": "per output channel", "symmetric": False},
    "int4": {"scheme": "int4", "group_size": 32, "symmetric": True, "ratio": 1.0,
             "backup_precision": "int8_asym (nncf's default for the weights kept out of int4)"},
}
TASK = "text-generation-with-past"
MODEL_XML = "openvino_model.xml"
PROBE_PROMPT = [[1, 3, 4, 5]]
PROBE_NEW_TOKENS = 2
VERSIONED = ("openvino", "openvino-genai", "openvino-tokenizers", "optimum-intel", "optimum", "nncf", "torch",
             "transformers")


class ConversionError(RuntimeError):
    """The conversion failed: the message says where (exporter, load check)."""


def hide_torchvision() -> None:
    """Make torchvision unimportable in this process (see the module's docstring); before transformers is imported."""
    sys.modules["torchvision"] = None  # type: ignore[assignment]


def run_exporter(source: Path, output: Path, precision: str) -> tuple[float, list[str]]:
    """optimum-cli export openvino, in a child process with torchvision hidden; (seconds, the arguments)."""
    arguments = ["export", "openvino", "--model", str(source), "--task", TASK, *WEIGHT_ARGUMENTS[precision],
                 str(output)]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "models.llm.convert_openvino", "optimum-cli", *arguments],
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode != 0 or not (output / MODEL_XML).is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-12:])
        raise ConversionError(f"optimum-cli export openvino failed (exit {proc.returncode}):\n{tail}")
    return time.perf_counter() - t0, ["optimum-cli", *arguments[:-1], "OUTPUT"]


def weight_types(xml: Path) -> dict[str, dict[str, int]]:
    """The IR's constants by element type: how many, and how many elements (what the weights were written as)."""
    import openvino as ov

    counts: dict[str, dict[str, int]] = {}
    for op in ov.Core().read_model(str(xml)).get_ops():
        if op.get_type_name() != "Constant":
            continue
        kind = op.get_output_element_type(0).get_type_name()
        size = _elements(op.get_output_shape(0))
        entry = counts.setdefault(kind, {"constants": 0, "elements": 0})
        entry["constants"] += 1
        entry["elements"] += size
    return dict(sorted(counts.items()))


def _elements(shape) -> int:
    n = 1
    for dim in shape:
        n *= int(dim)
    return n


def load_check(folder: Path) -> dict:
    """LLMPipeline loads the folder and generates PROBE_NEW_TOKENS tokens from PROBE_PROMPT (ids, no tokenizer)."""
    import numpy as np
    import openvino as ov
    import openvino_genai as genai

    pipe = genai.LLMPipeline(str(folder), "CPU")
    config = pipe.get_generation_config()
    config.max_new_tokens = config.min_new_tokens = PROBE_NEW_TOKENS
    config.ignore_eos = True
    config.do_sample = False
    ids = np.asarray(PROBE_PROMPT, dtype=np.int64)
    result = pipe.generate(genai.TokenizedInputs(ov.Tensor(ids), ov.Tensor(np.ones_like(ids))), config)
    made = [len(sequence) for sequence in result.tokens]
    if made != [PROBE_NEW_TOKENS]:
        raise ConversionError(f"LLMPipeline on the exported IR made {made} tokens, not [{PROBE_NEW_TOKENS}]")
    return {"loads": True, "probe_new_tokens": PROBE_NEW_TOKENS}


def export_openvino_genai(request):
    """`python -m runners export` for (framework "openvino-genai", target "openvino-genai"): the checkpoint folder
    request.source_path -> the IR folder request.output_path at request.precision (ExportResult)."""
    from models.llm.checkpoint import distribution_versions, failed_export, staged_folder
    from models.llm.converter_common import checkpoint_source
    from runners.failures import RunnerError
    from runners.protocol import ExportResult

    started = time.perf_counter()
    try:
        if request.precision not in WEIGHT_ARGUMENTS:
            raise RunnerError(f"openvino-genai: precision {request.precision!r} is not exported here; valid: "
                              f"{', '.join(WEIGHT_ARGUMENTS)}", kind="unsupported")
        source = checkpoint_source(request.source_path)
        with staged_folder(request.output_path) as stage:
            written = stage / "ir"  # optimum-cli makes its own output folder
            seconds, command = run_exporter(source, written, request.precision)
            checks = {"load": load_check(written)}
            quantization = {**SCHEMES[request.precision], "tool": " ".join(command),
                            "weights_written": weight_types(written / MODEL_XML)}
            (written / "greenrt-conversion.json").write_text(json.dumps(
                {"precision": request.precision, "quantization": quantization, "source": str(source)}, indent=1))
            for item in written.iterdir():
                os.replace(item, stage / item.name)
            written.rmdir()
    except Exception as exc:  # noqa: BLE001 - every failure becomes the result's error, with its kind and words
        return failed_export(request, exc)
    return ExportResult(framework=request.framework, model=request.model, status="ok",
                        output_path=request.output_path, target=request.target, precision=request.precision,
                        exporter="optimum-cli export openvino", versions=distribution_versions(*VERSIONED),
                        seconds=time.perf_counter() - started,
                        quantization={**quantization, "seconds": {"optimum-cli": seconds}}, checks=checks)


def main(argv: list[str]) -> int:
    """`python -m models.llm.convert_openvino optimum-cli ARGS...`: optimum's CLI with torchvision hidden."""
    if not argv or argv[0] != "optimum-cli":
        print("usage: python -m models.llm.convert_openvino optimum-cli ARGS...", file=sys.stderr)
        return 2
    hide_torchvision()
    from optimum.commands.optimum_cli import main as optimum_cli

    sys.argv = ["optimum-cli", *argv[1:]]
    optimum_cli()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
