"""A sweep's progress (orchestrator/cli/sweep_progress.py): the time left starts from the plan's estimate and is
corrected by the runs that finish, and where stdout is not a terminal each finished run is one line."""
from __future__ import annotations

import io

from rich.console import Console

from orchestrator.cli.sweep_progress import Eta, RichSweepView, run_line
from orchestrator.planning.planner import Cell, PlannedRun
from orchestrator.results.record import from_journal
from testkit.records import make_record


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def record(run_id: str, wall: float, **kwargs):
    line = make_record(run_id, **kwargs)
    line["wall_seconds"] = wall
    return from_journal(line)


def test_the_eta_starts_from_the_estimate_and_moves_to_what_runs_take():
    clock = Clock()
    eta = Eta(10, 20.0, clock)
    assert eta.remaining() == 200.0
    clock.t += 5.0
    assert eta.remaining() == 195.0  # the current run has spent 5 s of its estimate
    clock.t += 35.0
    assert eta.finished() == 40.0
    # 3 runs' worth of the estimate (60 s) beside one run of 40 s: 25 s per run, 9 runs left
    assert eta.remaining() == 9 * 25.0
    for _ in range(9):
        clock.t += 40.0
        eta.finished()
    assert eta.remaining() == 0.0


def test_one_line_per_finished_run_names_its_place_id_status_seconds_and_the_eta():
    ok = record("r000-resnet50-bs2-torch_native_cpu-fp32", 12.34)
    failed = record("r001-x", 3.0, status="failed", failure={"kind": "crash", "message": "exit 1"})
    assert run_line(3, 36, ok, 750.0) == "run 3/36 r000-resnet50-bs2-torch_native_cpu-fp32: ok, 12.3 s; eta 12 min 30 s"
    assert run_line(4, 36, failed, 30.0) == "run 4/36 r001-x: failed (crash), 3.0 s; eta 30 s"


def test_without_a_terminal_the_view_prints_a_line_per_run_and_no_bar():
    out = io.StringIO()
    clock = Clock()
    view = RichSweepView(Console(file=out, force_terminal=False, width=200), 10.0, clock)
    runs = [PlannedRun(f"r{i}", i, 0, Cell("resnet50", 2, "torch/native/cpu", "fp32")) for i in range(2)]
    with view.runs(2) as progress:
        for i, run in enumerate(runs):
            progress.starting(run)
            clock.t += 10.0
            progress.finished(run, record(run.run_id, 9.5, index=i))
    assert out.getvalue().splitlines() == ["run 1/2 r0: ok, 9.5 s; eta 10 s", "run 2/2 r1: ok, 9.5 s; eta 0 s"]
