"""The report's "where the time went" (orchestrator/report/time_spent.py over results/run_times.py's TimeLedger),
from synthetic records whose phases and times are known: each part's seconds and share of the wall time."""
from __future__ import annotations

import json

import pytest

from orchestrator.report.time_spent import share_in_windows, time_table
from orchestrator.results.record import from_journal
from orchestrator.results.run_times import TimeLedger
from orchestrator.results.tables import read_runs
from testkit.records import make_record

T0 = "2026-12-07T05:00:"


def run_line(run_id: str, second: int, *, prepared: bool = False, cooldown_before: float | None = None) -> dict:
    """A run starting at 05:00:<second>, 10 s of wall time: load 1.5, warm-up 0.5, a 2.4 s window."""
    line = make_record(run_id, window_s=2.4)
    line.update(schema=2, started_at=f"{T0}{second:02d}+00:00", wall_seconds=10.0)
    if prepared:
        line["prepared"] = {"started_at": f"{T0}00+00:00", "seconds": 30.0}
    if cooldown_before is not None:
        line["protocol"] = {"cooldown_before": {"mode": "fixed", "outcome": "fixed", "seconds": cooldown_before}}
    return line


# Preparation 05:00:00-05:00:30, the idle baseline 30-35, run a 36-46, a 4 s cooldown, run b 50-60.
BASELINE = {"history": [{"status": "ok", "measured_at": f"{T0}35+00:00", "seconds": 5.0, "idle_w": {}}]}


def ledger_of(lines: list[dict]) -> TimeLedger:
    ledger = TimeLedger()
    for line in lines:
        ledger.add(from_journal(line))
    return ledger


def test_each_part_has_its_seconds_and_share_of_the_wall_time():
    frame, covers = time_table(ledger_of([run_line("a", 36, prepared=True), run_line("b", 50, cooldown_before=4.0)]),
                               BASELINE)
    seconds = dict(zip(frame["part"], frame["seconds"]))
    assert seconds == pytest.approx({"preparation": 30.0, "idle baseline": 5.0, "load": 3.0, "warm-up": 1.0,
                                     "window": 4.8, "cooldown": 4.0, "other": 60.0 - 47.8, "wall time": 60.0})
    shares = dict(zip(frame["part"], frame["share_of_wall"]))
    assert shares["window"] == pytest.approx(4.8 / 60) and shares["wall time"] == 1.0
    assert share_in_windows(frame) == pytest.approx((4.8 + 4.0) / 60)
    assert "one invocation" in covers and "not recorded" not in covers


def test_a_journal_from_before_preparation_was_recorded_says_so_and_starts_at_the_baseline():
    frame, covers = time_table(ledger_of([run_line("a", 36), run_line("b", 50, cooldown_before=4.0)]), BASELINE)
    seconds = dict(zip(frame["part"], frame["seconds"]))
    assert seconds["preparation"] is None and seconds["wall time"] == pytest.approx(30.0)
    assert "predates" in dict(zip(frame["part"], frame["note"]))["preparation"]
    assert "Preparation was not recorded" in covers


def test_a_resumed_sweep_counts_each_invocation_and_leaves_out_the_time_between():
    later = run_line("c", 0, prepared=True)
    later.update(started_at="2026-12-07T07:00:40+00:00", prepared={"started_at": "2026-12-07T07:00:00+00:00",
                                                                   "seconds": 40.0})
    frame, covers = time_table(ledger_of([run_line("a", 36, prepared=True), run_line("b", 50, cooldown_before=4.0),
                                          later]), BASELINE)
    seconds = dict(zip(frame["part"], frame["seconds"]))
    assert seconds["wall time"] == pytest.approx(60.0 + 50.0) and seconds["preparation"] == pytest.approx(70.0)
    assert "2 invocations" in covers


def test_the_journal_is_summed_as_it_is_read_once(tmp_path):
    journal = tmp_path / "runs.jsonl"
    journal.write_text("".join(json.dumps(line) + "\n" for line in
                               (run_line("a", 36, prepared=True), run_line("b", 50, cooldown_before=4.0))))
    ledger = read_runs(journal, tmp_path).time
    assert (ledger.runs, ledger.preparation, ledger.window) == (2, 30.0, pytest.approx(4.8))


def test_an_old_journals_resume_hours_later_is_another_invocation_not_wall_time():
    later = run_line("c", 0)
    later["started_at"] = "2026-12-08T05:00:00+00:00"  # a day later, without a prepared record
    frame, covers = time_table(ledger_of([run_line("a", 36), run_line("b", 50, cooldown_before=4.0), later]),
                               BASELINE)
    assert dict(zip(frame["part"], frame["seconds"]))["wall time"] == pytest.approx(30.0 + 10.0)
    assert "2 invocations" in covers
