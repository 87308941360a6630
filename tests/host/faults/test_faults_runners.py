"""Runner faults through the real local launcher, in one sweep: a runner that crashes, writes garbage as its result,
hangs past its time limit, and allocates until the kernel kills it (a memory cgroup) each become a failure record
with its kind and log tail, the sweep goes on, and the report counts the failures per cell.

The faults are real processes doing real wrong things: fault_site/sitecustomize.py, put on one runtime's
PYTHONPATH by the config's [environment] table (a test-only folder: nothing in runners/ knows about it).
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import polars as pl
import pytest

from testkit.faults_helpers import ORT, assert_every_run_once, fault_config, journal, run_sweep

pytestmark = [pytest.mark.process, pytest.mark.root]

CGROUP_V1 = Path("/sys/fs/cgroup/memory")


@pytest.fixture(scope="module")
def memory_cgroup():
    """A memory cgroup of 192 MiB without swap (cgroup v1 or v2); the allocating runner joins it and is killed."""
    if CGROUP_V1.is_dir():
        path = CGROUP_V1 / f"greenrt-faults-{os.getpid()}"
        path.mkdir()
        (path / "memory.limit_in_bytes").write_text(str(192 << 20))
    else:
        path = Path("/sys/fs/cgroup") / f"greenrt-faults-{os.getpid()}"
        path.mkdir()
        (path / "memory.max").write_text(str(192 << 20))
        (path / "memory.swap.max").write_text("0")
    yield path
    path.rmdir()


@pytest.fixture(scope="module")
def faulty_sweep(tmp_path_factory, memory_cgroup):
    tmp_path = tmp_path_factory.mktemp("faulty")
    faults = {"tensorflow/native/cpu": {"GREENRT_TEST_FAULT": "crash"},
              "mxnet/native/cpu": {"GREENRT_TEST_FAULT": "garbage"},
              "onnxruntime/onnx-from-mxnet/cpu": {"GREENRT_TEST_FAULT": "hang"},
              "onnxruntime/onnx-from-tensorflow/cpu": {"GREENRT_TEST_FAULT": "alloc",
                                                       "GREENRT_TEST_CGROUP": str(memory_cgroup)}}
    config = fault_config(tmp_path / "faults.toml", runtimes=[ORT, *faults], faults=faults, timeout_seconds=8)
    out = tmp_path / "out"
    done = run_sweep(config, out, tmp_path / "lock")
    return done, out, tmp_path


def test_each_runner_fault_is_a_failure_record_with_its_kind_and_log_and_the_sweep_goes_on(faulty_sweep):
    done, out, _ = faulty_sweep
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 runs ok, 4 failed" in done.stdout
    records = {r["runtime"]: r for r in assert_every_run_once(out, status=None)}
    assert records[ORT]["status"] == "ok" and records[ORT]["result"]["iterations"] >= 3

    crash = records["tensorflow/native/cpu"]["failure"]
    assert crash["kind"] == "crash" and "exited with code 3" in crash["message"]
    assert "crashing on purpose" in crash["log_tail"]

    garbage = records["mxnet/native/cpu"]["failure"]
    assert garbage["kind"] == "bad-result" and "not valid JSON" in garbage["message"]
    assert "wrote garbage" in garbage["log_tail"]

    hang = records["onnxruntime/onnx-from-mxnet/cpu"]["failure"]
    assert hang["kind"] == "timeout" and "8 s time limit" in hang["message"]
    assert "hanging on purpose" in hang["log_tail"]

    oom = records["onnxruntime/onnx-from-tensorflow/cpu"]["failure"]
    # Killed by the kernel inside a memory cgroup: the launcher reads the OOM-kill evidence and says so.
    assert oom["kind"] == "oom" and "SIGKILL" in oom["message"], oom["message"]
    assert "allocating until killed" in oom["log_tail"]
    for runtime, record in records.items():
        if record["status"] != "ok":  # a failed run has no energy, with the reason, never 0
            assert record["energy"]["status"] == "unavailable" and record["result"] is None, runtime


def test_the_tables_and_the_report_count_failures_per_cell(faulty_sweep):
    done, out, _ = faulty_sweep
    assert done.returncode == 0, done.stdout + done.stderr
    runs = pl.read_parquet(out / "tables/runs.parquet")
    kinds = dict(zip(runs["runtime"], runs["failure_kind"]))
    assert kinds == {ORT: None, "tensorflow/native/cpu": "crash", "mxnet/native/cpu": "bad-result",
                     "onnxruntime/onnx-from-mxnet/cpu": "timeout", "onnxruntime/onnx-from-tensorflow/cpu": "oom"}
    with open(out / "report/tables/failures_per_cell.csv") as fh:
        per_cell = {row["runtime"]: row for row in csv.DictReader(fh)}
    assert set(per_cell) == set(kinds) - {ORT}
    assert {(row["runs"], row["failed"]) for row in per_cell.values()} == {("1", "1")}
    assert per_cell["onnxruntime/onnx-from-mxnet/cpu"]["kinds"] == "timeout: 1"
    assert "Failures per cell" in (out / "report/report.md").read_text()


def test_a_rerun_retries_nothing_that_failed_for_its_own_reasons(faulty_sweep):
    done, out, tmp_path = faulty_sweep
    before = journal(out)
    again = run_sweep(tmp_path / "faults.toml", out, tmp_path / "lock")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "5 already recorded" in again.stdout
    assert journal(out) == before
