"""vllm/hf/cuda's request and result path on this host, with a stand-in for vLLM's engine (tests only: no GPU and no
vLLM wheel here, so the engine itself is UNVERIFIED). What is checked is greenrt's side: the engine is asked for
no prefix cache, greedy, exactly N tokens with EOS ignored; it is stepped so that the first token is stamped inside
each iteration; the tokens and the prefill log-probabilities come back in the loop's shapes."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from runners.adapters import adapter_class
from runners.adapters.vllm_engine import VllmAdapter
from runners.loop import execute
from runners.protocol import Budget, RunRequest

VOCAB = 32000


class StandInEngine:
    """One new token per request per step(), as vLLM's engine returns cumulative RequestOutputs."""

    def __init__(self, llm: StandInLLM) -> None:
        self.llm, self.requests = llm, {}
        self.model_config = types.SimpleNamespace(get_vocab_size=lambda: VOCAB)

    def add_request(self, request_id, prompt, params):
        self.requests[request_id] = (prompt["prompt_token_ids"], params, [])

    def has_unfinished_requests(self):
        return any(len(made) < params.max_tokens for _, params, made in self.requests.values())

    def step(self):
        outs = []
        for request_id, (prompt, params, made) in list(self.requests.items()):
            made.append((prompt[-1] + len(made) + 1) % VOCAB)
            outs.append(types.SimpleNamespace(request_id=request_id,
                                              outputs=[types.SimpleNamespace(token_ids=tuple(made))]))
            if len(made) >= params.max_tokens:
                del self.requests[request_id]
        return outs


class StandInLLM:
    made: list[StandInLLM] = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.llm_engine = StandInEngine(self)
        StandInLLM.made.append(self)

    def generate(self, prompts, params, use_tqdm=True):
        logprob = types.SimpleNamespace
        return [types.SimpleNamespace(outputs=[types.SimpleNamespace(logprobs=[
            {t: logprob(logprob=-np.log(params.logprobs)) for t in range(params.logprobs)}])]) for _ in prompts]


@pytest.fixture
def stand_in_vllm(monkeypatch):
    StandInLLM.made.clear()
    vllm = types.ModuleType("vllm")
    vllm.LLM = StandInLLM
    vllm.SamplingParams = lambda **kwargs: types.SimpleNamespace(**kwargs)
    torch = types.ModuleType("torch")
    torch.cuda = types.SimpleNamespace(is_available=lambda: True)
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "torch", torch)
    return StandInLLM


def request(tmp_path, **change) -> RunRequest:
    base = dict(run_id="v", runtime="vllm/hf/cuda", model="llama-tiny", batch_size=2, precision="fp16",
                result_path=str(tmp_path / "result.json"), outputs_path=str(tmp_path / "outputs.npz"),
                artifact_path=str(tmp_path / "checkpoint"), model_options={"prompt_tokens": 6, "new_tokens": 5},
                budget=Budget(warmup_iterations=1, min_iterations=3))
    return RunRequest(**{**base, **change})


def test_the_request_and_result_path(tmp_path, stand_in_vllm):
    assert adapter_class("vllm/hf/cuda") is VllmAdapter
    result = execute(request(tmp_path))
    assert result.status == "ok", result.error
    engine_args = stand_in_vllm.made[0].kwargs
    assert engine_args["enable_prefix_caching"] is False and engine_args["dtype"] == "float16"
    assert engine_args["max_model_len"] == 11 and engine_args["skip_tokenizer_init"] is True
    assert result.generation.problem(result.window_start_ns, result.window_end_ns, result.iterations) is None
    assert len(result.generation.phases_ns) == result.iterations == 3
    assert result.runtime_facts["generation"]["verified"] is False
    with np.load(tmp_path / "outputs.npz") as saved:
        assert saved["tokens"].shape == (2, 5) and saved["prefill_logits"].shape == (2, VOCAB)


def test_what_it_cannot_run_is_refused_before_the_engine_starts(tmp_path, stand_in_vllm):
    result = execute(request(tmp_path, runtime="vllm/hf/cpu"))
    assert result.error.kind == "unsupported" and "valid: cuda" in result.error.message
    result = execute(request(tmp_path, precision="fp32"))
    assert result.error.kind == "unsupported" and "is not one of fp16" in result.error.message
    assert stand_in_vllm.made == []
