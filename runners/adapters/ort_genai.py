"""onnxruntime-genai/genai-from-hf/{cpu,cuda}: ONNX Runtime GenAI's Generator on a folder written by its own model
builder (models/llm/ort_genai_export.py), fp32 or int4.

- An iteration: a new Generator (its KV buffer allocated to max_length = P + N, so it is kept small), the prompt
  fed as token ids (`append_tokens`: no tokenizer), then exactly N `generate_next_token` steps. Greedy
  (do_sample false) with min_length = max_length = P + N, so end-of-sequence cannot stop it early; the sequence
  lengths are checked after every iteration and a short one fails the run ("runtime").
- first_token_ns: after the first `generate_next_token` (the prefill and the first token's sampling), once the new
  tokens are read back to the host (`get_next_tokens`), which on CUDA waits for the device.
- No prefix or KV reuse across iterations: each iteration's Generator starts empty (recorded in runtime_facts).
- Threads: request.threads is the decoder session's intra_op_num_threads (a config overlay at load; None keeps
  genai_config.json's, i.e. ONNX Runtime's default).
- prefill_logits: a separate Generator's logits after `append_tokens` of the prompt, at its last position.
- A head_dim that is not a multiple of 16 is refused before loading (its GroupQueryAttention kernels need one:
  such a model builds, then fails at run time). The planner refuses the same at plan time, by the same rule: the
  runtime's row in runners/runtimes_table.py (Family.limits).

onnxruntime_genai is imported in load, in the runtime's environment.
"""
from __future__ import annotations

import json
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from runners.adapters.contract import import_framework
from runners.adapters.generative import GenerativeAdapter
from runners.failures import BadRequestError, RunnerError, UnsupportedError
from runners.hostinfo import cpu_device, nvidia_gpu_name
from runners.protocol import RunRequest
from runners.runtimes_table import find

GENAI_CONFIG = "genai_config.json"
# This runtime's row: its head_dim rule (Family.limits), which the planner reads too.
FAMILY = find("onnxruntime-genai", "genai-from-hf")


def head_dim_refusal(head_dim: int) -> str | None:
    """Why ONNX Runtime GenAI cannot run a model of this head_dim (None when it can). Pure, standard library."""
    return FAMILY.head_dim_refusal(head_dim)


def artifact_refusal(folder: Path) -> str | None:
    """Why `folder` is not an ONNX Runtime GenAI model this runtime can run (None when it is): no genai_config.json,
    or a head_size its attention refuses."""
    config_path = folder / GENAI_CONFIG
    if not config_path.is_file():
        return f"artifact {folder} has no {GENAI_CONFIG} (not a folder written by onnxruntime_genai's model builder)"
    try:
        head_size = json.loads(config_path.read_text())["model"]["decoder"]["head_size"]
    except (ValueError, KeyError, TypeError) as exc:
        return f"{config_path} does not name the decoder's head_size ({type(exc).__name__}: {exc})"
    return head_dim_refusal(int(head_size))


def _session_overlay(threads: int) -> str:
    return json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}})


class OrtGenaiAdapter(GenerativeAdapter):
    def __init__(self) -> None:
        self.og = None
        self.model = None
        self.facts: dict[str, Any] | None = None

    def check_request(self, request: RunRequest) -> None:
        super().check_request(request)
        if request.provider_options:
            raise BadRequestError(f"onnxruntime-genai takes no provider options (threads come from `threads`); got "
                                  f"{', '.join(sorted(request.provider_options))}")
        folder = Path(request.artifact_path)
        if not folder.is_dir():
            raise RunnerError(f"artifact {folder} does not exist", kind="load")
        reason = artifact_refusal(folder)
        if reason:
            raise UnsupportedError(reason)

    def load(self, request: RunRequest) -> None:
        og = self.og = import_framework("onnxruntime_genai")
        folder = Path(request.artifact_path)
        config = og.Config(str(folder))
        config.clear_providers()
        if request.provider != "cpu":
            config.append_provider(request.provider)
        if request.threads is not None:
            config.overlay(_session_overlay(request.threads))
        self.model = og.Model(config)
        self.provider = request.provider
        self.n_threads = request.threads
        written = json.loads((folder / GENAI_CONFIG).read_text())
        from models.llm.ort_genai_export import graph_facts

        self.facts = {
            "model": graph_facts(folder),  # the builder's graph: attention operator, MatMulNBits' scheme
            "session_options": written["model"]["decoder"].get("session_options", {}),
            "intra_op_num_threads": request.threads if request.threads is not None
            else "ONNX Runtime's default (genai_config.json sets none)",
        }

    def generation_facts(self) -> dict[str, Any]:
        length = self.workload.total_tokens
        return {"search": {"do_sample": False, "min_length": length, "max_length": length},
                "kv_cache": f"a new Generator per iteration: its KV buffer empty, allocated to P + N = {length}; "
                            f"no prefix reuse"}

    def prepare(self, inputs: dict[str, Any]) -> Any:
        ids = np.ascontiguousarray(inputs["input_ids"], dtype=np.int32)
        expected = (self.workload.batch_size, self.workload.prompt_tokens)
        if ids.shape != expected:
            raise BadRequestError(f"prompt ids of shape {ids.shape}, not (batch, prompt tokens) {expected}")
        return ids

    def _generator(self, ids: Any) -> Any:
        og = self.og
        params = og.GeneratorParams(self.model)
        length = self.workload.total_tokens
        params.set_search_options(do_sample=False, min_length=length, max_length=length, batch_size=ids.shape[0])
        generator = og.Generator(self.model, params)
        generator.append_tokens(ids)
        return generator

    def run(self, prepared: Any) -> Any:
        generator = self._generator(prepared)
        generator.generate_next_token()
        generator.get_next_tokens()  # on the host: the first token of every sequence is there
        self.first_token_ns = time.monotonic_ns()
        for _ in range(self.workload.new_tokens - 1):
            generator.generate_next_token()
        return self._new_tokens(generator, prepared.shape[0])

    def _new_tokens(self, generator: Any, batch: int) -> Any:
        sequences = [np.asarray(generator.get_sequence(i)) for i in range(batch)]
        w = self.workload
        wrong = [len(s) for s in sequences if len(s) != w.total_tokens]
        if wrong or not generator.is_done():
            raise RunnerError(f"onnxruntime-genai made sequences of {wrong or 'unfinished'} tokens, not "
                              f"{w.total_tokens} (P {w.prompt_tokens} + N {w.new_tokens})", kind="runtime")
        return np.stack([s[w.prompt_tokens:] for s in sequences]).astype(np.int64)

    def to_numpy(self, outputs: Any) -> dict[str, Any]:
        return {"tokens": outputs}

    def prefill_logits(self, prepared: Any) -> Any:
        logits = np.asarray(self._generator(prepared).get_output("logits"), dtype=np.float32)
        return np.ascontiguousarray(logits.reshape(prepared.shape[0], -1, logits.shape[-1])[:, -1, :])

    def versions(self) -> dict[str, str]:
        out = {}
        if self.og is not None:
            out["onnxruntime_genai"] = getattr(self.og, "__version__", "unknown")
        for dist in ("onnxruntime-genai", "onnxruntime-genai-cuda", "onnxruntime", "onnxruntime-gpu"):
            try:
                out[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                pass
        return out

    def devices(self) -> list[str]:
        if self.provider is None:
            return []
        return [cpu_device()] if self.provider == "cpu" else [nvidia_gpu_name()]

    def runtime_facts(self) -> dict[str, Any] | None:
        return self.facts
