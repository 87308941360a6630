"""A run whose outputs hold NaN or inf fails with kind "output", whatever the runtime (issue 20, point 9): the
measured loop with an adapter that returns what an fp16 overflow gives."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from orchestrator.execution.launchers.base import LaunchOutcome
from orchestrator.execution.run import classify_outcome
from runners.adapters.contract import Adapter
from runners.failures import RunnerError
from runners.loop import execute, nonfinite_problem
from runners.protocol import Budget, RunRequest, RunResult, from_dict, to_dict


class ReturnsThis(Adapter):
    """Runs nothing: returns the given logits (what a .half() model that overflowed returns)."""

    def __init__(self, logits: np.ndarray) -> None:
        self.logits = logits

    def load(self, request: RunRequest) -> None:
        self.provider = "cuda"

    def prepare(self, inputs: dict[str, np.ndarray]) -> Any:
        return None

    def run(self, prepared: Any) -> Any:
        return self.logits

    def to_numpy(self, outputs: Any) -> dict[str, np.ndarray]:
        return {"logits": outputs}


def _request(tmp_path, **kwargs) -> RunRequest:
    return RunRequest(run_id="r", runtime="torch/native/cuda", model="mobilenet_v2", batch_size=2,
                      precision="fp16", result_path=str(tmp_path / "result.json"),
                      budget=Budget(warmup_iterations=1, warmup_seconds=0, min_iterations=3, min_seconds=0),
                      **kwargs)


def _overflowed() -> np.ndarray:
    logits = np.full((2, 1001), 1.5, dtype=np.float16)
    logits[0, :3] = np.inf
    logits[1, 7] = -np.inf
    logits[1, 9] = np.nan
    return logits


def test_an_inf_or_nan_output_fails_the_run_with_kind_output_and_says_where(tmp_path):
    result = execute(_request(tmp_path, outputs_path=str(tmp_path / "outputs.npz")), ReturnsThis(_overflowed()))
    assert result.status == "error" and result.error.kind == "output"
    assert result.error.message == (
        "non-finite output values, so the run measured no usable inference (an overflow, e.g. in fp16): logits: 5 of "
        "2002 (1 NaN, 4 inf; dtype float16)")
    # What was measured is kept for the record; the outputs are not kept for a fidelity comparison.
    assert result.iterations == 3 and len(result.latencies_ns) == 3
    assert result.output_digest["outputs"]["logits"]["nonfinite"] == 5
    assert not (tmp_path / "outputs.npz").exists()
    assert from_dict(RunResult, to_dict(result)).error.kind == "output"


def test_the_sweep_records_the_failure_with_the_runners_kind(tmp_path):
    result = execute(_request(tmp_path), ReturnsThis(_overflowed()))
    outcome = LaunchOutcome(exit_code=1, timed_out=False, seconds=1.0, log_path=tmp_path / "runner.log", log_tail="")
    failure = classify_outcome(outcome, result, None)
    assert failure.kind == "output" and "logits: 5 of 2002" in failure.message


def test_finite_outputs_are_a_result(tmp_path):
    result = execute(_request(tmp_path), ReturnsThis(np.full((2, 1001), 65504.0, dtype=np.float16)))  # fp16's max
    assert result.status == "ok", result.error


@pytest.mark.parametrize("outputs, expected", [
    ({"logits": np.array([1e39, -1e300])}, None),  # finite float64 beyond float32's range: finite
    ({"ids": np.array([1, 2], dtype=np.int64)}, None),
    ({"b": np.array([np.nan], dtype=np.float32), "a": np.array([1.0, np.inf])},
     "a: 1 of 2 (0 NaN, 1 inf; dtype float64); b: 1 of 1 (1 NaN, 0 inf; dtype float32)"),
])
def test_nonfinite_problem_names_each_output(outputs, expected):
    problem = nonfinite_problem(outputs)
    assert (problem if expected is None else problem.split(": ", 1)[1]) == expected


def test_output_is_a_protocol_error_kind():
    assert RunnerError("x", kind="output").kind == "output"
