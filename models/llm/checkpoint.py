"""The exporter ("torch", "hf-checkpoint"): a built-in generative model as the Hugging Face checkpoint folder every
generative runtime is converted from and the reference run loads (docs/generative.md).

LlamaForCausalLM(LlamaConfig(**models.llm.configs.llama_config(name))) with weights drawn by transformers' own
initialisation after torch.manual_seed(weights seed), saved with save_pretrained as safetensors with its
config.json and generation_config.json (greedy), plus tokenizer files made from the vocabulary size
(models/llm/tokenizer_files.py) for the converters that insist on them. The folder is written under a temporary
sibling name, loaded back and checked (the same prefill logits as the model it was saved from), and renamed into
place only then.

`staged_folder` and `failed_export` are shared by every generative converter (models/llm/*_export.py): they import
no framework.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from runners.failures import RunnerError, classify, error_of
from runners.protocol import ExportRequest, ExportResult

EXPORTER = "transformers LlamaForCausalLM.save_pretrained (safetensors)"
CHECK_PROMPT_TOKENS = 16  # the prompt the reloaded folder is checked on (seed 0, batch 2)


@contextlib.contextmanager
def staged_folder(output_path: str | os.PathLike) -> Iterator[Path]:
    """A temporary sibling of `output_path` to write a converted model into; renamed into place when the block ends
    without an exception (a folder already there is replaced), removed otherwise. A reader never sees a half-made
    folder under the final name."""
    out = Path(output_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        yield stage
        # mkdtemp makes the folder private, and some writers their files (safetensors): a container's runner runs as
        # another uid and must read them.
        stage.chmod(0o755)
        for path in stage.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            os.replace(out, old / out.name)
            os.replace(stage, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(stage, out)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def failed_export(request: ExportRequest, exc: BaseException, phase_kind: str = "export") -> ExportResult:
    """The error result of a conversion that raised `exc` (a RunnerError keeps its own kind)."""
    return ExportResult(framework=request.framework, model=request.model, status="error",
                        output_path=request.output_path, target=request.target, precision=request.precision,
                        error=error_of(exc, classify(exc, phase_kind)))


def distribution_versions(*names: str) -> dict[str, str]:
    out = {}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def _checked_request(request: ExportRequest) -> dict[str, Any]:
    """The built-in model's LlamaConfig fields; "bad-request" for what this exporter does not make."""
    from models.llm.configs import GENERATIVE_MODELS, llama_config

    if request.model not in GENERATIVE_MODELS:
        raise RunnerError(f"no built-in generative model {request.model!r} to make a checkpoint of; valid: "
                          f"{', '.join(GENERATIVE_MODELS)} (a user's own checkpoint folder is used as is)",
                          kind="bad-request")
    if request.precision != "fp32":
        raise RunnerError(f"the checkpoint is made in fp32 (each runtime's converter makes its precision from it), "
                          f"not {request.precision!r}", kind="bad-request")
    if request.weights.kind != "random":
        raise RunnerError("a built-in generative model's checkpoint is made from seeded random weights; a file of "
                          "weights is a user's own checkpoint folder ([user_models.x] hf_checkpoint)",
                          kind="bad-request")
    return llama_config(request.model)


def build_model(fields: dict[str, Any], seed: int):
    """LlamaForCausalLM of these config fields, weights from transformers' initialisation after manual_seed(seed),
    in eval mode on the CPU, fp32, with a greedy generation config."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging

    logging.disable_progress_bar()  # its bars on stderr would bury the exporter's one line
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**fields)).to(torch.float32).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=fields["bos_token_id"], eos_token_id=fields["eos_token_id"],
        pad_token_id=fields["pad_token_id"], do_sample=False)
    return model


def _legacy_rope_theta(config_file: Path) -> None:
    """transformers 5 writes RoPE's base into rope_parameters only; converters written against older configs read
    the top-level rope_theta (and default it silently when absent), so it is written there too."""
    config = json.loads(config_file.read_text())
    theta = (config.get("rope_parameters") or {}).get("rope_theta")
    if theta is not None and "rope_theta" not in config:
        config["rope_theta"] = theta
        config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def last_position_logits(model, input_ids) -> Any:
    """(B, vocab) float32 next-token logits after the whole prompt (numpy)."""
    import torch

    with torch.inference_mode():
        out = model(input_ids=torch.from_numpy(input_ids), logits_to_keep=1)
    return out.logits[:, -1, :].float().numpy()


def export_checkpoint(request: ExportRequest) -> ExportResult:
    """Write the checkpoint folder request.output_path for request.model with request.weights' seed."""
    t0 = time.monotonic()
    phase = "bad-request"
    try:
        fields = _checked_request(request)
        phase = "load"
        import numpy as np
        from transformers import LlamaForCausalLM

        from models.llm.prompts import prompt_ids
        from models.llm.tokenizer_files import write_all

        model = build_model(fields, request.weights.seed)
        prompt = prompt_ids(0, 2, CHECK_PROMPT_TOKENS, fields["vocab_size"])
        expected = last_position_logits(model, prompt)
        phase = "export"
        with staged_folder(request.output_path) as stage:
            model.save_pretrained(str(stage), safe_serialization=True)
            _legacy_rope_theta(stage / "config.json")
            tokenizer_files = write_all(stage, fields)
            reloaded = LlamaForCausalLM.from_pretrained(str(stage), dtype="float32").eval()
            got = last_position_logits(reloaded, prompt)
            max_abs_diff = float(np.max(np.abs(got - expected)))
            if max_abs_diff != 0.0:  # the same weights on the same CPU kernels: bit for bit
                raise RunnerError(f"the saved checkpoint reloads with different logits (max abs diff "
                                  f"{max_abs_diff:.3g}): not the model that was built")
            files = sorted(p.name for p in stage.iterdir())
        return ExportResult(framework=request.framework, model=request.model, status="ok",
                            output_path=request.output_path, exporter=EXPORTER, target=request.target,
                            versions=distribution_versions("torch", "transformers", "safetensors", "tokenizers"),
                            seconds=time.monotonic() - t0, max_abs_diff=max_abs_diff, precision="fp32",
                            checks={"reloaded": "transformers LlamaForCausalLM.from_pretrained, same prefill "
                                                "logits bit for bit (seed-0 prompt, batch 2)",
                                    "files": files, "tokenizer_files": tokenizer_files,
                                    "parameters": int(sum(p.numel() for p in model.parameters())),
                                    "weights_seed": request.weights.seed})
    except Exception as exc:  # noqa: BLE001 - every failure becomes a result with its kind
        return failed_export(request, exc, phase)
