"""ctranslate2/ct2-from-hf/cpu: CTranslate2's Generator on a folder written by its transformers converter
(models/llm/ct2_export.py), fp32 (float32 weights) or int8 (int8 weights, float32 elsewhere).

- An iteration: one `generate_batch` of the B prompts, greedy (sampling_topk 1, beam 1), with
  min_length = max_length = N and the prompt left out of the result, so end-of-sequence cannot stop it early; the
  result lengths are checked after every iteration and a short one fails the run ("runtime").
- Prompts as token strings: generate_batch takes tokens, so the seeded ids are mapped through the converted
  vocabulary.json once, in prepare (outside the window).
- first_token_ns: taken in generate_batch's step callback when step 0 has been reported for every sequence.
- compute_type asked for explicitly (fp32: float32, int8: int8_float32), and the one CTranslate2 settled on read
  back into runtime_facts.
- Threads: request.threads is intra_threads (inter_threads 1: one batch at a time); None keeps CTranslate2's
  default (intra_threads 0).
- No prefix cache: generate_batch caches a prompt only when given as static_prompt, which greenrt never passes.
- prefill_logits: forward_batch on the prompt ids, at its last position.
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
from runners.failures import BadRequestError, RunnerError
from runners.hostinfo import cpu_device
from runners.protocol import RunRequest

VOCABULARY = "vocabulary.json"
# greenrt precision -> the compute type asked of CTranslate2 on the CPU.
COMPUTE_TYPES = {"fp32": "float32", "int8": "int8_float32"}


class Ctranslate2Adapter(GenerativeAdapter):
    def __init__(self) -> None:
        self.ct2 = None
        self.generator = None
        self.vocabulary: list[str] = []
        self.facts: dict[str, Any] | None = None

    def check_request(self, request: RunRequest) -> None:
        super().check_request(request)
        if request.provider_options:
            raise BadRequestError(f"ctranslate2 takes no provider options (threads come from `threads`); got "
                                  f"{', '.join(sorted(request.provider_options))}")
        folder = Path(request.artifact_path)
        if not (folder / "model.bin").is_file() or not (folder / VOCABULARY).is_file():
            raise RunnerError(f"artifact {folder} has no model.bin and {VOCABULARY} (not a CTranslate2 model "
                              f"folder)", kind="load")

    def load(self, request: RunRequest) -> None:
        ct2 = self.ct2 = import_framework("ctranslate2")
        folder = Path(request.artifact_path)
        compute_type = COMPUTE_TYPES[request.precision]
        self.generator = ct2.Generator(str(folder), device="cpu", compute_type=compute_type, inter_threads=1,
                                       intra_threads=request.threads or 0)
        self.vocabulary = json.loads((folder / VOCABULARY).read_text())
        self.provider = request.provider
        self.n_threads = request.threads
        self.facts = {
            "compute_type_requested": compute_type,
            "compute_type": self.generator.compute_type,
            "supported_compute_types": sorted(ct2.get_supported_compute_types("cpu")),
            "intra_threads": request.threads if request.threads is not None else "CTranslate2's default (0)",
            "inter_threads": 1,
            "vocabulary_size": len(self.vocabulary),
        }

    def generation_facts(self) -> dict[str, Any]:
        n = self.workload.new_tokens
        return {"search": {"sampling_topk": 1, "beam_size": 1, "min_length": n, "max_length": n,
                           "include_prompt_in_result": False},
                "kv_cache": "generate_batch starts every call empty; no static_prompt, so no prompt cache"}

    def prepare(self, inputs: dict[str, Any]) -> Any:
        ids = np.asarray(inputs["input_ids"], dtype=np.int64)
        expected = (self.workload.batch_size, self.workload.prompt_tokens)
        if ids.shape != expected:
            raise BadRequestError(f"prompt ids of shape {ids.shape}, not (batch, prompt tokens) {expected}")
        if ids.max() >= len(self.vocabulary):
            raise BadRequestError(f"prompt id {int(ids.max())} is beyond the converted vocabulary "
                                  f"({len(self.vocabulary)} tokens)")
        tokens = [[self.vocabulary[i] for i in row] for row in ids.tolist()]
        return {"ids": ids.tolist(), "tokens": tokens}

    def run(self, prepared: Any) -> Any:
        batch = len(prepared["tokens"])
        started: set[int] = set()
        self.first_token_ns = None

        def on_step(step: Any) -> bool:
            if step.step == 0 and self.first_token_ns is None:
                started.add(step.batch_id)
                if len(started) == batch:
                    self.first_token_ns = time.monotonic_ns()
            return False  # never stop early

        results = self.generator.generate_batch(
            prepared["tokens"], max_length=self.workload.new_tokens, min_length=self.workload.new_tokens, sampling_topk=1,
            beam_size=1, include_prompt_in_result=False, callback=on_step)
        return self._new_tokens(results)

    def _new_tokens(self, results: list) -> Any:
        sequences = [r.sequences_ids[0] for r in results]
        wrong = [len(s) for s in sequences if len(s) != self.workload.new_tokens]
        if wrong or self.first_token_ns is None:
            raise RunnerError(f"ctranslate2 made sequences of {wrong or 'unreported'} tokens, not N "
                              f"{self.workload.new_tokens}", kind="runtime")
        return np.asarray(sequences, dtype=np.int64)

    def to_numpy(self, outputs: Any) -> dict[str, Any]:
        return {"tokens": outputs}

    def prefill_logits(self, prepared: Any) -> Any:
        logits = np.asarray(self.generator.forward_batch(prepared["ids"]), dtype=np.float32)
        return np.ascontiguousarray(logits[:, -1, :])

    def versions(self) -> dict[str, str]:
        out = {}
        if self.ct2 is not None:
            out["ctranslate2"] = self.ct2.__version__
        try:
            out["ctranslate2_package"] = metadata.version("ctranslate2")
        except metadata.PackageNotFoundError:
            pass
        return out

    def devices(self) -> list[str]:
        return [cpu_device()] if self.provider else []

    def runtime_facts(self) -> dict[str, Any] | None:
        return self.facts
