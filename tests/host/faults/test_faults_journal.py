"""Hostile or damaged state around a sweep: cut-short journal lines, failed appends, interrupted records, results
directories that are not greenrt's, a changed config started over with --fresh, and sensors that stop mid-window."""
from __future__ import annotations

import errno
import os
import time

import pytest

from testkit.faults_helpers import ORT, assert_every_run_once, fault_config, run_sweep
from orchestrator.measurement.accounting import account_energy
from orchestrator.results.payloads import Energy
from orchestrator.errors import UserError
from orchestrator.measurement.sampler import Sampler
from orchestrator.measurement.sensors.rapl import RaplSensor
from orchestrator.results.store import ResultsDir
from testkit.powercap import make_powercap_tree
from testkit.records import make_record

pytestmark = pytest.mark.process


def test_an_append_that_fails_half_way_is_cut_back_and_the_journal_stays_whole(tmp_path, monkeypatch):
    results = ResultsDir(tmp_path)
    results.append(make_record("r000-a"))
    size = results.journal_path.stat().st_size

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)  # the line was written, but could not be made durable
    with pytest.raises(OSError, match="No space left"):
        results.append(make_record("r000-b"))
    monkeypatch.undo()
    assert results.journal_path.stat().st_size == size
    results.append(make_record("r000-c"))
    records, problems = results.records()
    assert [r.run_id for r in records] == ["r000-a", "r000-c"] and problems == []


def test_a_line_cut_short_by_a_crash_stays_one_reported_line_and_appends_go_on(tmp_path):
    results = ResultsDir(tmp_path)
    results.append(make_record("r000-a"))
    with open(results.journal_path, "a") as fh:
        fh.write('{"run_id": "r000-b", "sta')  # killed mid-write: no newline
    results.append(make_record("r000-c"))
    records, problems = results.records()
    assert [r.run_id for r in records] == ["r000-a", "r000-c"]
    assert [p.line for p in problems] == [2] and "runs.jsonl:2: unreadable record" in problems[0].message
    assert results.recorded_run_ids() == {"r000-a", "r000-c"}  # r000-b runs again on resume


def test_an_interrupted_run_is_measured_again_a_failed_one_is_not(tmp_path):
    results = ResultsDir(tmp_path)
    results.append({**make_record("r000-a"), "status": "interrupted"})
    results.append({**make_record("r000-b"), "status": "failed"})
    assert results.recorded_run_ids() == {"r000-b"}
    results.append(make_record("r000-a"))
    assert results.recorded_run_ids() == {"r000-a", "r000-b"}


def test_run_ids_that_would_leave_the_runs_folder_are_refused(tmp_path):
    results = ResultsDir(tmp_path)
    assert results.run_dir("r000-mobilenet_v2-bs1-x_y-fp32") == tmp_path / "runs/r000-mobilenet_v2-bs1-x_y-fp32"
    for bad in ("../../etc", "a/b", "..", ".hidden", ""):
        with pytest.raises(UserError, match="not a safe folder name"):
            results.run_dir(bad)


def test_a_folder_that_is_not_a_results_directory_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "home"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    done = run_sweep(fault_config(tmp_path / "c.toml", runtimes=[ORT]), out, tmp_path / "lock", "local", "--fresh")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "not empty and not a greenrt results directory (no plan.json); choose another --out" in line
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]
    assert not list(tmp_path.glob("home.old-*"))


def test_a_changed_config_is_refused_and_fresh_sets_the_old_results_aside(tmp_path):
    out, lock = tmp_path / "out", tmp_path / "lock"
    first = run_sweep(fault_config(tmp_path / "a.toml", runtimes=[ORT]), out, lock)
    assert first.returncode == 0, first.stdout + first.stderr
    old_journal = (out / "runs.jsonl").read_text()
    changed = fault_config(tmp_path / "b.toml", runtimes=[ORT], batch_sizes="[2]")
    refused = run_sweep(changed, out, lock)
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    assert "holds another sweep" in line and "--fresh to set the old results aside" in line
    fresh = run_sweep(changed, out, lock, "local", "--fresh")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    [aside] = tmp_path.glob("out.old-*")
    assert f"--fresh: the results in {out} were moved to {aside}" in " ".join(fresh.stdout.split())
    assert (aside / "runs.jsonl").read_text() == old_journal  # nothing deleted
    [record] = assert_every_run_once(out)
    assert record["batch_size"] == 2


def test_more_repetitions_measure_only_the_new_runs_and_keep_the_recorded_ones(tmp_path):
    out, lock = tmp_path / "out", tmp_path / "lock"
    first = run_sweep(fault_config(tmp_path / "a.toml", runtimes=[ORT]), out, lock)
    assert first.returncode == 0, first.stdout + first.stderr
    journal_before = (out / "runs.jsonl").read_text()
    more = run_sweep(fault_config(tmp_path / "b.toml", runtimes=[ORT], repetitions=2), out, lock)
    assert more.returncode == 0, more.stdout + more.stderr
    said = " ".join(more.stdout.split())
    assert "repetitions 1 -> 2: 1 runs added after the 1 planned before" in said and "1 already recorded" in said
    assert (out / "runs.jsonl").read_text().startswith(journal_before)  # the first run kept, not measured again
    records = assert_every_run_once(out)
    assert sorted(r["repetition"] for r in records) == [0, 1]
    fewer = run_sweep(fault_config(tmp_path / "a.toml", runtimes=[ORT]), out, lock)
    assert fewer.returncode == 2
    [line] = fewer.stderr.strip().splitlines()
    assert "valid: repetitions = 2 or more" in line


def _window_energy(tree, during) -> Energy:
    """Sample the real RAPL sensor on a synthetic tree around `during()`, and account energy over that window."""
    sensor = RaplSensor(tree.root)
    sampler = Sampler([sensor], interval_s=0.05).start()
    time.sleep(0.2)
    start = time.monotonic_ns()
    during()
    end = time.monotonic_ns()
    time.sleep(0.2)
    series = sampler.stop()
    from orchestrator.measurement.sensors.base import SensorStatus

    status = SensorStatus("rapl", True, "synthetic", dict(sensor.channels()))
    return account_energy(series, (start, end), {}, [status], [])


def _drawing(tree, seconds: float, stall: tuple[float, float] | None = None, remove: float | None = None):
    def run() -> None:
        t0 = time.monotonic()
        while (now := time.monotonic() - t0) < seconds:
            if remove is not None and remove <= now < remove + 0.3:
                tree.energy_path("package-0").unlink(missing_ok=True)
            elif remove is not None and now >= remove + 0.3 and not tree.energy_path("package-0").exists():
                tree.set("package-0", 10**9)
            if stall is None or not stall[0] <= now < stall[1]:
                if tree.energy_path("package-0").exists():
                    tree.advance("package-0", 10_000)
            time.sleep(0.001)
    return run


def test_a_counter_that_stops_updating_mid_window_makes_the_run_invalid_for_that_sensor_not_zero(tmp_path):
    tree = make_powercap_tree(tmp_path / "pc", packages=1, dram=False)
    energy = _window_energy(tree, _drawing(tree, 3.0, stall=(0.4, 2.9)))
    channel = energy.channels["package-0"]
    assert channel.status == "invalid" and channel.raw_j is None
    assert "counter stopped updating for" in channel.reason
    assert energy.status == "invalid"
    moving = _window_energy(tree, _drawing(tree, 1.0)).channels["package-0"]
    assert moving.status == "ok" and moving.raw_j > 0


def test_a_sensor_that_fails_mid_window_makes_the_run_invalid_for_it(tmp_path):
    tree = make_powercap_tree(tmp_path / "pc", packages=1, dram=False)
    energy = _window_energy(tree, _drawing(tree, 1.2, remove=0.4))
    channel = energy.channels["package-0"]
    assert channel.status == "invalid" and channel.raw_j is None
    assert "read error" in channel.reason
