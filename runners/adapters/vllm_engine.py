"""vllm/hf/cuda: vLLM's engine on the checkpoint folder, fp16. GPU only, and UNVERIFIED: no GPU and no vLLM wheel
for this host were at hand when it was written (FINDINGS: vllm 0.33 resolves to torch 2.14 + CUDA 13, no CPU
build); the request and result path is what the host tests check, not the engine.

One iteration is one batch of B requests of the prompt ids, driven step by step through the engine
(`LLMEngine.add_request` then `step()` until none is unfinished), so that the first new token of every sequence is
stamped when the step that made the last of them returns (a manual first step, on the host). Exactly N tokens:
SamplingParams(temperature 0, max_tokens = min_tokens = N, ignore_eos). What would make a repeated prompt a cache
hit is turned off: the prefix cache (enable_prefix_caching False). The prefill logits are vLLM's log-probabilities
over the whole vocabulary at the first new token (fidelity compares them centred, models/llm/fidelity.py).
"""
from __future__ import annotations

import contextlib
import itertools
import time
from importlib import metadata
from typing import Any

import numpy as np

from runners.adapters.contract import import_framework
from runners.adapters.generative import GenerativeAdapter
from runners.failures import UnsupportedError
from runners.protocol import RunRequest


class VllmAdapter(GenerativeAdapter):
    def __init__(self) -> None:
        self.vllm = None
        self.llm = None
        self.params = None
        self.vocab_size: int | None = None
        self._ids = itertools.count()

    def load(self, request: RunRequest) -> None:
        vllm = self.vllm = import_framework("vllm")
        torch = import_framework("torch")
        if not torch.cuda.is_available():
            raise UnsupportedError(f"{request.runtime}: CUDA is not available (vLLM runs on GPUs only)")
        self.provider = request.provider
        w = self.workload
        self.llm = vllm.LLM(model=self.artifact_path, tokenizer=self.artifact_path, skip_tokenizer_init=True,
                            dtype="float16", seed=0, enable_prefix_caching=False, max_model_len=w.total_tokens,
                            max_num_seqs=max(w.batch_size, 1), max_logprobs=-1, trust_remote_code=False)
        self.vocab_size = self.llm.llm_engine.model_config.get_vocab_size()
        self.params = vllm.SamplingParams(temperature=0.0, max_tokens=w.new_tokens, min_tokens=w.new_tokens,
                                          ignore_eos=True, detokenize=False)

    def prepare(self, inputs: dict[str, np.ndarray]) -> list[list[int]]:
        return [row.tolist() for row in np.asarray(inputs["input_ids"], dtype=np.int64)]

    def run(self, prepared: list[list[int]]) -> list[list[int]]:
        engine = self.llm.llm_engine
        ids = [str(next(self._ids)) for _ in prepared]
        for request_id, prompt in zip(ids, prepared):
            engine.add_request(request_id, {"prompt_token_ids": prompt}, self.params)
        tokens: dict[str, list[int]] = {}
        while engine.has_unfinished_requests():
            for out in engine.step():
                tokens[out.request_id] = list(out.outputs[0].token_ids)
            if self.first_token_ns is None and len(tokens) == len(ids) and all(tokens[i] for i in ids):
                self.first_token_ns = time.monotonic_ns()
        return [tokens[i] for i in ids]

    def new_token_shape(self, outputs: list[list[int]]) -> tuple[int, ...]:
        lengths = {len(t) for t in outputs}
        return (len(outputs), lengths.pop()) if len(lengths) == 1 else (len(outputs), -1)

    def to_numpy(self, outputs: list[list[int]]) -> dict[str, np.ndarray]:
        return {"tokens": np.asarray(outputs, dtype=np.int64)}

    def prefill_logits(self, prepared: list[list[int]]) -> np.ndarray:
        params = self.vllm.SamplingParams(temperature=0.0, max_tokens=1, logprobs=self.vocab_size, detokenize=False)
        outs = self.llm.generate([{"prompt_token_ids": p} for p in prepared], params, use_tqdm=False)
        logits = np.full((len(prepared), self.vocab_size), -np.inf, dtype=np.float32)
        for row, out in enumerate(outs):
            for token, logprob in out.outputs[0].logprobs[0].items():
                logits[row, token] = logprob.logprob
        return logits

    def generation_facts(self) -> dict[str, Any]:
        return {"prefix_cache": "off (enable_prefix_caching False)",
                "end_of_sequence": "ignore_eos, min_tokens = max_tokens = N", "greedy": "temperature 0",
                "first_token": "the engine step after which every sequence has a token",
                "prefill_logits": "log-probabilities over the whole vocabulary (compared centred)",
                "verified": False}

    def versions(self) -> dict[str, str]:
        out = {}
        for dist in ("vllm", "torch", "transformers"):
            with contextlib.suppress(metadata.PackageNotFoundError):
                out[dist] = metadata.version(dist)
        return out

    def devices(self) -> list[str]:
        return ["cuda"] if self.provider == "cuda" else []
