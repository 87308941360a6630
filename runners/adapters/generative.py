"""The adapter contract of a generative runtime (docs/generative.md): one iteration of the shared measured loop is one
generate call of B prompts of P tokens producing exactly N new tokens each (greedy, end-of-sequence ignored).

What a generative adapter adds to runners.adapters.contract.Adapter:
- `prepare(inputs)` gets {"input_ids": (B, P) int64} (models/llm/prompts.py: the same ids in every runtime);
- `run(prepared)` generates and sets `self.first_token_ns` to time.monotonic_ns() when the first new token of every
  sequence is available, taken inside the runtime (its streamer or callback, or a manual first step); the loop
  resets it to None before each call and stamps [start, first_token, end] per window iteration;
- `new_token_shape(outputs)` is (B, tokens made per sequence), read after every window iteration without copying the
  tokens (the loop fails the run, kind "runtime", unless it is (B, N));
- `to_numpy(outputs)` -> {"tokens": (B, N) int64} of the last iteration;
- `prefill_logits(prepared)` -> (B, vocab) float32: the logits at the prompt's last position, called once after the
  window (outside every timing) for fidelity; the loop saves it beside the tokens as "prefill_logits" (and the
  reference runtime's `decode_margins`, where given, as "decode_margins").
- `runtime_facts()` reports what the adapter turned off or set so that a repeated prompt is measured as a new
  request (prefix and KV caches), and the runtime's own precision scheme; `generation_facts` is merged there.

Standard library and numpy only, like the contract: an adapter imports its framework inside `load`.
"""
from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from runners.adapters.contract import Adapter
from runners.failures import BadRequestError, RunnerError
from runners.protocol import RunRequest


@dataclass(frozen=True)
class Workload:
    """One iteration's work: batch_size sequences of prompt_tokens prompt ids, new_tokens tokens generated each."""

    batch_size: int
    prompt_tokens: int
    new_tokens: int

    @property
    def total_tokens(self) -> int:
        """Positions a sequence occupies at the end (what a KV cache is sized to)."""
        return self.prompt_tokens + self.new_tokens


def workload_of(request: RunRequest) -> Workload:
    """The request's workload from its model's options (defaults filled in); "bad-request" for a model that is not
    generative."""
    from models.registry import UnknownModelError, get_model

    try:
        spec = get_model(request.model)
        options = spec.resolve_options(request.model_options)
    except (UnknownModelError, KeyError, TypeError) as exc:
        raise BadRequestError(f"model {request.model}: {exc}") from None
    if not spec.generative:
        raise BadRequestError(f"{request.runtime} is a generative runtime; model {request.model} is not a generative "
                              f"model (its runtimes are the forward-pass ones)")
    return Workload(request.batch_size, options["prompt_tokens"], options["new_tokens"])


class GenerativeAdapter(Adapter):
    """A generative runtime: generate exactly N greedy tokens per sequence, stamp the first one."""

    first_token_ns: int | None = None
    workload: Workload | None = None
    artifact_path: str | None = None  # the folder the runtime loads (the checkpoint, or what was converted from it)

    def check_request(self, request: RunRequest) -> None:
        """The table's providers and precisions, a generative model, and the folder to load (artifact_path)."""
        super().check_request(request)
        self.workload = workload_of(request)
        if not request.artifact_path:
            raise BadRequestError(f"{request.runtime} loads a model folder: the request needs artifact_path (the "
                                  f"Hugging Face checkpoint, or the folder converted from it for this runtime)")
        self.artifact_path = request.artifact_path

    @abstractmethod
    def prefill_logits(self, prepared: Any) -> np.ndarray:
        """(B, vocab) float32: the next-token logits after the whole prompt (called once, outside the window)."""

    def decode_margins(self, prepared: Any, tokens: np.ndarray) -> np.ndarray | None:
        """(B, N) float32, the reference runtime's only: at each generated step, the gap between the best and the
        second-best next-token logit, saved as "decode_margins" so that fidelity can tell a near-tie from an error
        where another runtime's greedy tokens part from the reference's (models/llm/fidelity.py). None: not given."""
        return None

    def new_token_shape(self, outputs: Any) -> tuple[int, ...]:
        """(B, new tokens per sequence) of `run`'s outputs, without copying them to the host: by default their
        `.shape` (a tensor's or an array's)."""
        return tuple(np.shape(outputs))

    def generation_facts(self) -> dict[str, Any]:
        """What this adapter set for the measurement (caches turned off, the scheme, the KV cache's precision),
        merged into runtime_facts["generation"] by the loop."""
        return {}

    def check_tokens(self, shape: tuple[int, ...]) -> None:
        """Fail the run (kind "runtime") unless `shape` is (B, N): every sequence made exactly N new tokens."""
        expected = (self.workload.batch_size, self.workload.new_tokens)
        if tuple(shape) != expected:
            raise RunnerError(f"generate made new tokens of shape {tuple(shape)}, not {expected} (batch x exactly "
                              f"{self.workload.new_tokens} tokens per sequence, end-of-sequence ignored)",
                              kind="runtime")
