"""The shared measured loop's generation branch (runners/loop.py), driven by a numpy stand-in for a generative
runtime: one [start, first_token, end] per window iteration inside the window, exactly N tokens per sequence or the
run fails with kind "runtime", the prefill logits saved beside the tokens."""
from __future__ import annotations

import time

import numpy as np
import pytest

from runners.adapters.generative import GenerativeAdapter
from runners.loop import execute
from runners.protocol import Budget, RunRequest

VOCAB = 32000


class CountingGenerator(GenerativeAdapter):
    """Greedy 'generation' of (last id + step) mod vocab, stamping the first token after a short prefill."""

    def __init__(self, make: int | None = None, stamp: bool = True) -> None:
        self.make, self.stamp = make, stamp

    def load(self, request):
        self.provider = request.provider

    def prepare(self, inputs):
        return inputs["input_ids"]

    def run(self, prepared):
        n = self.workload.new_tokens if self.make is None else self.make
        time.sleep(0.001)
        if self.stamp:
            self.first_token_ns = time.monotonic_ns()
        time.sleep(0.001)
        return (prepared[:, -1:] + np.arange(1, n + 1)) % VOCAB

    def to_numpy(self, outputs):
        return {"tokens": outputs}

    def prefill_logits(self, prepared):
        logits = np.zeros((prepared.shape[0], VOCAB), dtype=np.float32)
        logits[np.arange(prepared.shape[0]), (prepared[:, -1] + 1) % VOCAB] = 1.0
        return logits

    def generation_facts(self):
        return {"prefix_cache": "none"}


def request(tmp_path, **change) -> RunRequest:
    base = dict(run_id="g", runtime="torch/transformers/cpu", model="llama-tiny", batch_size=3,
                result_path=str(tmp_path / "result.json"), outputs_path=str(tmp_path / "outputs.npz"),
                artifact_path=str(tmp_path / "checkpoint"), model_options={"prompt_tokens": 5, "new_tokens": 4},
                budget=Budget(warmup_iterations=1, min_iterations=4))
    return RunRequest(**{**base, **change})


def test_each_window_iteration_has_ordered_phase_stamps_inside_the_window(tmp_path):
    result = execute(request(tmp_path), CountingGenerator())
    assert result.status == "ok", result.error
    g = result.generation
    assert (g.prompt_tokens, g.new_tokens, g.batch_size) == (5, 4, 3)
    assert len(g.phases_ns) == result.iterations == 4
    assert g.problem(result.window_start_ns, result.window_end_ns, result.iterations) is None
    assert all(p > 0 for p in g.prefill_ns) and all(d > 0 for d in g.decode_ns)
    assert [end - start for start, _, end in g.phases_ns] == result.latencies_ns
    assert result.runtime_facts["generation"] == {"prefix_cache": "none"}
    with np.load(tmp_path / "outputs.npz") as saved:
        assert saved["tokens"].shape == (3, 4) and saved["tokens"].dtype == np.int64
        assert saved["prefill_logits"].shape == (3, VOCAB) and saved["prefill_logits"].dtype == np.float32
        assert np.array_equal(np.argmax(saved["prefill_logits"], axis=1), saved["tokens"][:, 0])


@pytest.mark.parametrize("make", [3, 5])
def test_a_runtime_that_does_not_make_exactly_n_tokens_fails_the_run(tmp_path, make):
    result = execute(request(tmp_path), CountingGenerator(make=make))
    assert result.status == "error" and result.error.kind == "runtime"
    assert f"shape (3, {make}), not (3, 4)" in result.error.message
    assert not (tmp_path / "outputs.npz").exists()


def test_a_runtime_that_does_not_stamp_its_first_token_fails_the_run(tmp_path):
    result = execute(request(tmp_path), CountingGenerator(stamp=False))
    assert result.status == "error" and result.error.kind == "runtime"
    assert "did not stamp its first new token inside the iteration" in result.error.message


def test_requests_a_generative_runtime_cannot_run_are_refused(tmp_path):
    result = execute(request(tmp_path, model="resnet50", model_options={}), CountingGenerator())
    assert result.error.kind == "bad-request" and "not a generative model" in result.error.message
    result = execute(request(tmp_path, artifact_path=None), CountingGenerator())
    assert result.error.kind == "bad-request" and "needs artifact_path" in result.error.message
    result = execute(request(tmp_path, model_options={"prompt_tokens": 2040, "new_tokens": 9}), CountingGenerator())
    assert result.error.kind == "bad-request" and "exceeds its limit 2048" in result.error.message


def test_a_forward_run_has_no_generation(tmp_path):
    from runners.adapters.contract import Adapter

    class Identity(Adapter):
        def load(self, request):
            self.provider = "cpu"

        def prepare(self, inputs):
            return inputs

        def run(self, prepared):
            return prepared["pixel_values"][:, :2, 0, 0]

        def to_numpy(self, outputs):
            return {"logits": outputs}

    result = execute(request(tmp_path, runtime="torch/native/cpu", model="mobilenet_v2", model_options={},
                             artifact_path=None, batch_size=1), Identity())
    assert result.status == "ok" and result.generation is None
