"""An adaptive sweep through the real CLI: a group with a clear winner stops after `min` rounds, not `max`; killed
with SIGKILL at a round boundary and again during a run, it resumes into the same rounds with no run lost or
measured twice; plan, status, the cells table, stopping.json and the report say what stopped each cell.

The cells: testkit/adaptive_sweeps.py (a clear winner and a runtime made clearly slower).
"""
from __future__ import annotations

import json
import subprocess

import polars as pl
import pytest

from testkit.faults_helpers import journal, output_of, run_sweep, runner_processes, start_sweep, wait_for
from testkit.adaptive_sweeps import FAST, SLOW, adaptive_config
from testkit.sweep_helpers import GREENRT

pytestmark = pytest.mark.process

@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("adaptive")
    config, out, lock = tmp_path / "adaptive.toml", tmp_path / "out", tmp_path / "lock"
    adaptive_config(config, name="adaptive", cooldown_s=1.5)
    first = start_sweep(config, out, lock)
    # The end of round 1: both of its runs journaled, the next round decided, the sweep in its cooldown.
    wait_for(lambda: "round 2 of at most 8" in output_of(first), what="the end of round 1")
    assert len(journal(out)) == 2 and not runner_processes(first.pid)  # in the cooldown before round 2's first run
    first.kill()
    first.wait(timeout=30)
    second = start_sweep(config, out, lock)
    wait_for(lambda: runner_processes(second.pid, under=out / "runs"), what="a run of round 2")
    second.kill()  # during a run: nothing of it is journaled
    second.wait(timeout=30)
    wait_for(lambda: not runner_processes(second.pid), timeout=60, what="the orphan runner to end")
    third = run_sweep(config, out, lock)
    return config, out, (first, second, third)


def test_a_clear_winner_ends_its_group_after_min_runs_of_max(killed_and_resumed):
    _, out, (_, _, third) = killed_and_resumed
    assert third.returncode == 0, third.stdout + third.stderr
    plan = json.loads((out / "plan.json").read_text())
    assert len(plan["runs"]) == 16 and plan["config"]["repetitions"]["stop"] == "verdict"  # every run up to max
    finished = [r for r in journal(out) if r["status"] != "interrupted"]
    assert sorted(r["repetition"] for r in finished) == [0, 0, 1, 1, 2, 2, 3, 3]  # 4 rounds of 8: a clear verdict
    stopping = json.loads((out / "stopping.json").read_text())
    assert stopping["finished"] and stopping["rounds_complete"] == 4
    assert {c.split("|")[2]: (s["stopped_by"], s["runs"]) for c, s in stopping["cells"].items()} == {
        FAST: ("verdict", 4), SLOW: ("verdict", 4)}
    assert "round 4 of at most 8: 2 cells active" in third.stdout
    cells = pl.read_csv(out / "report/tables/cells.csv")
    assert cells.select("runtime", "runs_used", "stopped_by").sort("runtime").rows() == [(SLOW, 4, "verdict"),
                                                                                        (FAST, 4, "verdict")]
    # The report's final test (Mann-Whitney, Holm) reaches the verdict the rounds stopped on.
    best = pl.read_csv(out / "report/tables/best.csv").filter(pl.col("objective") == "latency")
    assert best.select("best", "verdict").rows() == [(FAST, "best")]
    report = (out / "report/report.md").read_text()
    assert "## Adaptive repetitions" in report and "8 of the 16 planned runs were measured (50%)" in report
    assert "verdict after 4" in third.stdout  # the cells table the sweep prints


def test_sigkill_at_a_round_boundary_and_during_a_run_loses_and_repeats_no_run(killed_and_resumed):
    _, out, (first, second, third) = killed_and_resumed
    assert "round 2 of at most 8: 2 cells active; 2 runs to measure" in output_of(first)
    assert "2 already recorded" in output_of(second)
    records = journal(out)
    assert not [r for r in records if r["status"] == "interrupted"]  # SIGKILL journals nothing
    ids = [r["run_id"] for r in records]
    assert len(ids) == len(set(ids)) == 8
    # Rounds in order: no run of a round before every run of the round before it.
    assert [r["repetition"] for r in records] == sorted(r["repetition"] for r in records)
    assert "sweep adaptive" in third.stdout and "already recorded" in third.stdout


def test_plan_and_status_say_what_the_adaptive_sweep_measures(killed_and_resumed):
    config, out, _ = killed_and_resumed
    plan = subprocess.run([GREENRT, "plan", "--config", str(config), "--launcher", "local"], capture_output=True,
                          text=True, timeout=120)
    assert plan.returncode == 0, plan.stderr
    assert "adaptive: 8 to 16 runs (2 cells, 4 to 8 repetitions each: stop = 'verdict'" in plan.stdout
    status = subprocess.run([GREENRT, "status", str(out)], capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    assert "8 of 8 runs recorded, 0 left; 8 planned runs not needed (their cells stopped)" in status.stdout
    assert "adaptive (stop = 'verdict', 4 to 8 runs per cell): 0 of 2 cells active; stopped 2 by verdict; finished" \
        in status.stdout
    refused = subprocess.run([GREENRT, "plan", "--config", str(config), "--shards", "2", "--shard-policy",
                              "by-repetition"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "--shard-policy by-repetition: an adaptive sweep (stop = 'verdict')" in refused.stderr
