"""execution/run.py's accounting of a generative run: the record's `generation` payload, and a failure in it an
accounting failure with its traceback (the runner's result and samples kept), like any other."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator.execution.launchers.base import LaunchOutcome
from orchestrator.execution.run import ACCOUNTING, ACCOUNTING_ERROR_FILE, RunExecutor
from orchestrator.measurement.sampler import SampleSeries
from orchestrator.measurement.sensors.base import Reading, SensorStatus
from orchestrator.planning.planner import Cell, PlannedRun
from orchestrator.results.record import RunRecord, from_journal
from orchestrator.results.store import ResultsDir
from runners.protocol import GenerationTimes, RunResult, to_dict, write_json_atomic

MS = 1_000_000
START = 50 * 1_000_000_000
WATTS = 30.0
RUN = PlannedRun("r000-llama-tiny", 0, 0, Cell("llama-tiny", 2, "torch/transformers/cpu", "fp32"))


def _executor(tmp_path: Path) -> RunExecutor:
    """Only what _account reads: the results folder, the sensors' statuses, the idle baseline, the run's GPUs."""
    executor = object.__new__(RunExecutor)
    executor.results = ResultsDir(tmp_path / "out")
    executor.measurement = SimpleNamespace(statuses=[SensorStatus("rapl", True, "1 zone")])
    executor.protocol = SimpleNamespace(idle_w={"package-0": 10.0})
    executor.config = SimpleNamespace(gpus_per_run=1)
    executor.run_gpus = ()
    executor._unobserved = False
    return executor


def _series() -> SampleSeries:
    """A RAPL package drawing WATTS, sampled every 10 ms from 1 s before the window to 1 s after it."""
    series = SampleSeries(channels={"package-0": "cpu"})
    for k in range(400):
        t = START - 1_000_000_000 + k * 10 * MS
        series.append(t, Reading("package-0", WATTS * k * 0.010), "cpu")
    return series


def _result(phases, iterations=None) -> RunResult:
    return RunResult(run_id=RUN.run_id, runtime=RUN.cell.runtime, model="llama-tiny", batch_size=2, status="ok",
                     window_start_ns=START, window_end_ns=START + 1000 * MS, iterations=iterations or len(phases),
                     latencies_ns=[e - s for s, _, e in phases],
                     generation=GenerationTimes(prompt_tokens=32, new_tokens=8, batch_size=2, phases_ns=phases))


def _account(tmp_path: Path, result: RunResult) -> RunRecord:
    executor = _executor(tmp_path)
    run_dir = executor.results.run_dir(RUN.run_id)
    write_json_atomic(run_dir / "result.json", to_dict(result))
    record = RunRecord(run_id=RUN.run_id, model="llama-tiny", batch_size=2, runtime=RUN.cell.runtime)
    outcome = LaunchOutcome(exit_code=0, timed_out=False, seconds=1.0, log_path=run_dir / "runner.log", log_tail="")
    request = SimpleNamespace(result_path=str(run_dir / "result.json"), outputs_path=None)
    executor._account_or_fail(record, RUN, outcome, _series(), request)
    return record


PHASES = [[START + k * 200 * MS, START + k * 200 * MS + 50 * MS, START + (k + 1) * 200 * MS - 10 * MS]
          for k in range(5)]


def test_a_generative_run_is_recorded_with_its_generation_payload(tmp_path):
    record = _account(tmp_path, _result(PHASES))
    assert record.ok, record.failure
    g = record.generation
    assert g.iterations == 5 and g.ttft_ms.median == pytest.approx(50.0) and g.tpot_ms.median == pytest.approx(20.0)
    energy = g.energy
    assert energy.status == "ok" and energy.window_j == pytest.approx(WATTS * 1.0)
    assert energy.prefill.raw_j == pytest.approx(WATTS * 5 * 0.050) and energy.gaps.raw_j == pytest.approx(WATTS * 0.050)
    assert energy.prefill.dynamic_j == pytest.approx((WATTS - 10.0) * 5 * 0.050)
    assert g.j_per_output_token == pytest.approx(WATTS * 5 * 0.140 / (5 * 2 * 7))
    assert energy.window_j == pytest.approx(record.energy.channels["package-0"].raw_j)
    line = record.to_journal()
    assert from_journal(line).to_journal() == line


@pytest.mark.parametrize("phases, iterations, words", [
    (PHASES, 6, "5 phase stamps for 6 window iterations"),
    ([[START - 5 * MS, START + 10 * MS, START + 100 * MS]], None, "outside the runner's window"),
    ([[START, START + 90 * MS, START + 50 * MS]], None, "not in order"),
])
def test_stamps_the_accounting_cannot_use_fail_it_with_the_traceback(tmp_path, phases, iterations, words):
    record = _account(tmp_path, _result(phases, iterations))
    assert record.status == "failed" and record.failure.kind == ACCOUNTING
    assert words in record.failure.message and words in record.failure.log_tail
    assert (tmp_path / "out" / "runs" / RUN.run_id / ACCOUNTING_ERROR_FILE).read_text().startswith("Traceback")
    assert record.result["generation"]["phases_ns"] == phases  # the runner's result is kept for re-accounting
    assert record.generation is None and record.energy.status == "unavailable"
    line = record.to_journal()
    assert from_journal(line).to_journal() == line  # and the journal can hold and read it


def test_re_accounting_makes_the_generation_payload_too(tmp_path, monkeypatch):
    """A run whose accounting failed (here: the phase split raised) is accounted again by `greenrt report`,
    generation included, from its kept result and samples."""
    import json

    from orchestrator.execution import run as run_module
    from orchestrator.execution.reaccount import reaccount_record

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the phase split")

    monkeypatch.setattr(run_module, "account_generation", broken)
    record = _account(tmp_path, _result(PHASES))
    assert record.failure.kind == ACCOUNTING and "a bug in the phase split" in record.failure.message
    monkeypatch.undo()
    results = ResultsDir(tmp_path / "out")
    results.host_path.write_text(json.dumps({"sensors": [{"name": "rapl", "available": True, "reason": "1 zone"}]}))
    results.baseline_path.write_text(json.dumps({"latest": {"idle_w": {"package-0": 10.0}}}))
    again = reaccount_record(results, record, seed=0)
    assert again.ok and again.generation.energy.status == "ok"
    assert again.generation.energy.prefill.dynamic_j == pytest.approx((WATTS - 10.0) * 5 * 0.050)
