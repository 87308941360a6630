"""A real `greenrt sweep` with a CPU hog the test starts beside it: every run's record carries the verdict with the
hog named and its share, the runs table has the busy columns, the terminal says it once; with on_busy = "abort"
the sweep journals the flagged run, stops in one line with exit 3, and resumes (the policy is not in the digest).

This machine may be shared, so nothing here asserts that a run without the hog is quiet: the hog's own share and
name are what is checked (tests/host/measurement/test_interference*.py judge quiet windows over controlled /proc).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from testkit.faults_helpers import run_sweep
from testkit.sweep_helpers import write_config

pytestmark = pytest.mark.process

HOG = "while True:\n    pass\n"


@pytest.fixture
def hog():
    process = subprocess.Popen([sys.executable, "-c", HOG], start_new_session=True)
    time.sleep(0.3)  # running, not still being exec'd
    yield process
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _config(path: Path, on_busy: str, repetitions: int = 1) -> Path:
    config = write_config(path, batch_sizes="[1]", runtimes='["torch/native/cpu"]', repetitions=repetitions)
    with open(config, "a") as fh:  # tiny windows: the verdict, not the figures, is under test
        fh.write(f'[interference]\non_busy = "{on_busy}"\ninterval_ms = 200\n')
    return config


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]


def _hog_entry(record: dict, pid: int) -> dict:
    [entry] = [t for t in record["interference"]["top"] if t["pid"] == pid]
    return entry


def test_a_sweep_beside_a_cpu_hog_flags_its_runs_with_the_hog_named(tmp_path, hog):
    out = tmp_path / "out"
    done = run_sweep(_config(tmp_path / "flag.toml", "flag"), out, tmp_path / "lock")
    assert done.returncode == 0, done.stdout + done.stderr
    [record] = _records(out)
    busy = record["interference"]
    assert busy["flagged"] is True and busy["reasons"][0].startswith("other processes used"), busy
    entry = _hog_entry(record, hog.pid)
    assert entry["comm"].startswith("python") and entry["share"] > 0.05, entry
    assert busy["others_share"] >= entry["share"] and busy["decision"].startswith("measured on a busy host")
    assert os.getpid() not in [t["pid"] for t in busy["top"]]  # the test's own process: idle, never above it
    runs = pl.read_parquet(out / "tables/runs.parquet")
    assert runs["busy"].to_list() == [True] and runs["others_share"].to_list() == [busy["others_share"]]
    assert runs["top_other_process"][0] == (f"{busy['top'][0]['comm']} (pid {busy['top'][0]['pid']}) "
                                            f"{busy['top'][0]['share']:.1%}")
    said = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("busy host: ")]
    assert len(said) == 1 and said[0].startswith(f"busy host: 1 of 1 observed runs were measured on a busy host: "
                                                 f"{record['run_id']}"), said
    report = (out / "report" / "report.md").read_text()  # the report says it once, among the caveats above the answer
    assert report.count("observed runs were measured on a busy host") == 1
    assert report.index("## The answer") < report.index("measured on a busy host") < report.index("## Findings")


def test_abort_journals_the_flagged_run_stops_in_one_line_and_resumes(tmp_path, hog):
    out = tmp_path / "out"
    done = run_sweep(_config(tmp_path / "abort.toml", "abort", repetitions=2), out, tmp_path / "lock")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    [record] = _records(out)  # the first run, journaled before the sweep stopped; the second never started
    assert record["status"] == "ok" and record["interference"]["flagged"] is True
    stop = [line for line in done.stderr.splitlines() if "on_busy = 'abort' stops the sweep" in line]
    assert len(stop) == 1 and f"{record['run_id']} (recorded, flagged): the host was busy" in stop[0], done.stderr
    assert not (out / "tables").exists()  # the sweep stopped before its tables, as an interrupted one does
    # The same sweep, told to keep flagged runs: it resumes (the policy is not in the digest), measuring only the rest.
    again = run_sweep(_config(tmp_path / "flag.toml", "flag", repetitions=2), out, tmp_path / "lock")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 runs planned, 1 already recorded" in " ".join(again.stdout.split())
    records = _records(out)
    assert len(records) == 2 and records[0] == record
