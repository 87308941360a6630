"""torch/transformers/{cpu,cuda}: transformers' `generate` on the checkpoint folder (the reference runtime of every
generative run at fp32 on the CPU; docs/generative.md).

One iteration is one generate call of the B prompts: greedy (do_sample False, one beam), exactly N new tokens
(max_new_tokens = min_new_tokens = N: end-of-sequence is masked at every step, the convention of every generative
runtime here, so greedy picks the best other token and never stops early). The first new token is stamped by a
streamer: generate puts the prompt, then each step's tokens after copying them to the host (`.cpu()`, which waits for
the device), so its second put is the moment the first new token of every sequence is available.

KV cache: "static" (preallocated to P + N, which makes transformers compile the decode step with torch.compile on
CUDA, in warm-up) is the default on cuda; "dynamic" on cpu, where a static cache without compilation does not help
(FINDINGS). The provider option cache_implementation overrides either; what ran is in runtime_facts["generation"].
transformers keeps no KV or prefix cache between generate calls (a static cache is reset at each call), so a
repeated prompt is a new request: nothing to turn off.

Math, device and threads as every torch adapter's (runners/adapters/torch_common.py): TF32 off unless asked, set
before the model is built.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from runners.adapters.contract import import_framework
from runners.adapters.generative import GenerativeAdapter
from runners.adapters.torch_common import TorchPlacement
from runners.failures import BadRequestError
from runners.protocol import RunRequest
from runners.runtimes_table import KV_CACHES


def default_cache(provider: str) -> str:
    """The KV cache generate uses unless the provider option names one: static on cuda, dynamic on cpu."""
    return "static" if provider == "cuda" else "dynamic"


class TorchGenerateAdapter(TorchPlacement, GenerativeAdapter):
    def __init__(self) -> None:
        self.torch = None
        self.model = None
        self.device = None
        self.generation_config = None
        self.cache_implementation: str | None = None
        self.math: dict[str, Any] | None = None
        self.streamer = None
        self.eos_token_id: int | None = None

    def check_request(self, request: RunRequest) -> None:
        super().check_request(request)
        cache = request.provider_options.get("cache_implementation", default_cache(request.provider))
        if cache not in KV_CACHES:
            raise BadRequestError(f"cache_implementation {cache!r}; valid: {', '.join(KV_CACHES)}")
        self.cache_implementation = cache

    def load(self, request: RunRequest) -> None:
        torch = self.place(request)
        transformers = import_framework("transformers")
        transformers.utils.logging.disable_progress_bar()  # its loading bars on stderr would bury the runner's line
        dtype = torch.float16 if request.precision == "fp16" else torch.float32
        # A local folder only (the checkpoint or a user's), never code from it.
        self.model = transformers.AutoModelForCausalLM.from_pretrained(
            self.artifact_path, dtype=dtype, trust_remote_code=False, local_files_only=True).to(self.device).eval()
        config = self.model.config
        eos = config.eos_token_id
        self.eos_token_id = eos[0] if isinstance(eos, list) else eos
        n = self.workload.new_tokens
        self.generation_config = transformers.GenerationConfig(
            max_new_tokens=n, min_new_tokens=n, do_sample=False, num_beams=1, eos_token_id=self.eos_token_id,
            pad_token_id=config.pad_token_id if config.pad_token_id is not None else 0,
            cache_implementation=self.cache_implementation, return_dict_in_generate=False)
        self.streamer = FirstTokenStamp(self)

    def prepare(self, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        torch = self.torch
        ids = torch.from_numpy(np.ascontiguousarray(inputs["input_ids"], dtype=np.int64)).to(self.device)
        prepared = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        self.synchronize()
        return prepared

    def run(self, prepared: dict[str, Any]) -> Any:
        self.streamer.reset()
        sequences = self.model.generate(**prepared, generation_config=self.generation_config, streamer=self.streamer)
        return sequences[:, prepared["input_ids"].shape[1]:]  # the new tokens only (a view, left on the device)

    def to_numpy(self, outputs: Any) -> dict[str, np.ndarray]:
        return {"tokens": outputs.detach().cpu().numpy().astype(np.int64)}

    def prefill_logits(self, prepared: dict[str, Any]) -> np.ndarray:
        out = self.model(**prepared, logits_to_keep=1)
        return out.logits[:, -1, :].float().cpu().numpy()

    def decode_margins(self, prepared: dict[str, Any], tokens: np.ndarray) -> np.ndarray:
        """(B, N): at each generated step, the gap between this model's best and second-best next-token logit (end
        of sequence masked, as in generate), by one teacher-forced forward pass over the prompt and the tokens it
        generated. Fidelity reads it from the reference run: a runtime whose greedy tokens part from the reference's
        where this gap is within float noise has met a near-tie, not an error."""
        torch = self.torch
        generated = torch.from_numpy(np.ascontiguousarray(tokens, dtype=np.int64)).to(self.device)
        ids = torch.cat([prepared["input_ids"], generated[:, :-1]], dim=1)
        logits = self.model(input_ids=ids, attention_mask=torch.ones_like(ids),
                            logits_to_keep=tokens.shape[1]).logits.float()
        if self.eos_token_id is not None:
            logits[..., self.eos_token_id] = -float("inf")
        top2 = torch.topk(logits, 2, dim=-1).values
        return (top2[..., 0] - top2[..., 1]).cpu().numpy().astype(np.float32)

    def generation_facts(self) -> dict[str, Any]:
        if self.generation_config is None:
            return {}
        return {
            "kv_cache": self.cache_implementation,
            "kv_cache_default": default_cache(self.provider or "cpu"),
            "auto_compiled": self.cache_implementation == "static" and self.provider == "cuda",
            "end_of_sequence": f"masked at every step (min_new_tokens = max_new_tokens = {self.workload.new_tokens})",
            "greedy": "do_sample False, num_beams 1",
            "first_token": "the streamer's first put after the prompt's (tokens copied to the host)",
            "prefix_cache": "none between generate calls (a static cache is reset at each call)",
        }


class FirstTokenStamp:
    """A transformers streamer (BaseStreamer's put/end) that stamps time.monotonic_ns() into the adapter's
    first_token_ns at the first put after the prompt's: the first new token of every sequence, on the host."""

    def __init__(self, adapter: GenerativeAdapter) -> None:
        self.adapter = adapter
        self.puts = 0

    def reset(self) -> None:
        self.puts = 0

    def put(self, value: Any) -> None:
        self.puts += 1
        if self.puts == 2:
            self.adapter.first_token_ns = time.monotonic_ns()

    def end(self) -> None:
        pass
