"""A sharded sweep through a real Slurm cluster on this machine (slurm_cluster.py): nothing of Slurm is mocked.

Three nodes (slurmd -N node1..3) take a 4-shard quick sweep, so one node must run two shards: --exclusive has to
keep them one after the other. The runs are real runner processes in the torch and onnxruntime environments.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from testkit.slurm_cluster import SlurmCluster

pytestmark = [pytest.mark.slurm, pytest.mark.root, pytest.mark.process]

GREENRT = str(Path(sys.executable).with_name("greenrt"))
SHARDS = 4
CONFIG = """name = "sharded"
models = ["mobilenet_v2"]
batch_sizes = [1]
runtimes = ["torch/native/cpu", "onnxruntime/onnx-from-torch/cpu"]
repetitions = 4
[warmup]
iterations = 1
seconds = 0.0
[measure]
min_iterations = 3
min_seconds = 0.2
[cooldown]
mode = "fixed"
seconds = 0.0
[baseline]
seconds = 0.5
recheck_minutes = 0
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"), nodes=3).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "sharded.toml"
    path.write_text(CONFIG)
    return path


def greenrt(cluster: SlurmCluster, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([GREENRT, *args], capture_output=True, text=True, timeout=timeout, env=cluster.env)


def submit(cluster, config: Path, out: Path) -> subprocess.CompletedProcess:
    done = greenrt(cluster, "sweep", "--config", str(config), "--out", str(out), "--scheduler", "slurm",
                   "--shards", str(SHARDS), "--powercap-root", str(out.parent / "no-rapl"))
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def jobs(out: Path) -> dict:
    return json.loads((out / "shards/jobs.jsonl").read_text().splitlines()[-1])


def journal(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def scontrol_tasks(cluster, job: str) -> dict[str, dict[str, str]]:
    text = subprocess.run(["scontrol", "show", "job", job, "-o"], capture_output=True, text=True, env=cluster.env,
                          check=True).stdout
    tasks = {}
    for line in text.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        tasks[fields["ArrayTaskId"]] = fields
    return tasks


@pytest.fixture(scope="module")
def full_sweep(cluster, config, tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "results"
    submitted = submit(cluster, config, out)
    watched = greenrt(cluster, "status", str(out), "--wait", "--interval", "1")
    return out, submitted, watched


def test_the_shards_run_as_an_array_and_the_merge_completes(full_sweep):
    out, submitted, watched = full_sweep
    assert f"submitted shards 1-4 of {SHARDS}" in submitted.stdout
    assert watched.returncode == 0, watched.stdout + watched.stderr
    for i in range(1, SHARDS + 1):
        assert f"shard {i}/{SHARDS} COMPLETED exit 0:0" in watched.stdout
        assert "2/2" in next(line for line in watched.stdout.splitlines() if line.startswith(f"shard {i}/"))
    script = (out / "shards/shards.sbatch").read_text()
    assert "#SBATCH --exclusive" in script and "#SBATCH --array=1-4" in script
    assert "--launcher local" in script
    runs = pl.read_parquet(out / "tables/runs.parquet")
    assert runs.height == 8 and runs["status"].to_list() == ["ok"] * 8
    assert (out / "report/report.md").exists()


def test_the_merged_journal_is_exactly_the_union_of_the_shards(full_sweep):
    out, _, _ = full_sweep
    plan = json.loads((out / "plan.json").read_text())
    merged = journal(out / "runs.jsonl")
    shard_records = {i: journal(out / f"shards/{i}/runs.jsonl") for i in range(1, SHARDS + 1)}
    union = [r["run_id"] for records in shard_records.values() for r in records]
    assert len(union) == len(set(union)) == len(plan["runs"])  # disjoint shards covering the plan
    assert sorted(r["run_id"] for r in merged) == sorted(union)
    for i, records in shard_records.items():
        # by-repetition: each shard measured every runtime of its one repetition
        assert {r["repetition"] for r in records} == {i - 1}
        assert {r["runtime"] for r in records} == {"torch/native/cpu", "onnxruntime/onnx-from-torch/cpu"}
        for record in records:
            twin = next(m for m in merged if m["run_id"] == record["run_id"])
            assert twin["shard"] == i and twin["result"] == record["result"]
            assert twin["host_signature"] and "CPUs" in twin["host_signature"]
    summary = json.loads((out / "merge.json").read_text())
    assert (summary["planned"], summary["recorded"], summary["missing"]) == (8, 8, 0)
    assert len(summary["hosts"]) == 1  # one machine: one signature


def test_exclusive_kept_the_tasks_of_a_node_one_at_a_time(cluster, full_sweep):
    out, _, _ = full_sweep
    tasks = scontrol_tasks(cluster, jobs(out)["array_job"])
    assert sorted(tasks) == ["1", "2", "3", "4"]
    spans: dict[str, list[tuple[float, float]]] = {}
    for i in range(1, SHARDS + 1):
        facts = json.loads((out / f"shards/{i}/shard.json").read_text())
        assert facts["node"] == tasks[str(i)]["NodeList"]  # the shard ran where Slurm put it
        assert tasks[str(i)]["NumNodes"] == "1" and tasks[str(i)]["OverSubscribe"] == "NO"
        spans.setdefault(facts["node"], []).append((facts["started_at"], facts["finished_at"]))
    assert max(len(s) for s in spans.values()) >= 2  # 4 shards on 3 nodes: a node ran two
    for node, intervals in spans.items():
        intervals.sort()
        for (_, end), (start, _) in zip(intervals, intervals[1:]):
            assert start >= end, f"{node} ran two shards at once: {intervals}"


@pytest.fixture(scope="module")
def cancelled_sweep(cluster, config, tmp_path_factory):
    """Shard 2 cancelled at once; the merge still runs (afterany). Then the same command again resumes it."""
    out = tmp_path_factory.mktemp("cancelled") / "results"
    submit(cluster, config, out)
    array = jobs(out)["array_job"]
    # Cancelled mid-flight, as a failing node or an impatient user would: a task cancelled while still pending
    # leaves no record in Slurm at all.
    deadline = time.monotonic() + 120
    while scontrol_tasks(cluster, array).get("2", {}).get("JobState") != "RUNNING":
        assert time.monotonic() < deadline, scontrol_tasks(cluster, array)
        time.sleep(0.2)
    subprocess.run(["scancel", f"{array}_2"], check=True, env=cluster.env)
    watched = greenrt(cluster, "status", str(out), "--wait", "--interval", "1")
    after_cancel = {
        "status": watched,
        "merge": json.loads((out / "merge.json").read_text()),
        "runs": pl.read_parquet(out / "tables/runs.parquet"),
        "journal": journal(out / "runs.jsonl"),
    }
    resubmitted = submit(cluster, config, out)
    rewatched = greenrt(cluster, "status", str(out), "--wait", "--interval", "1")
    return out, after_cancel, resubmitted, rewatched


def test_a_cancelled_shard_is_reported_and_the_merge_still_writes_tables(cancelled_sweep):
    _, after, _, _ = cancelled_sweep
    status = after["status"]
    assert status.returncode == 0, status.stdout + status.stderr  # the merge job itself completed
    assert "shard 2/4 CANCELLED exit 0:15" in status.stdout
    shard2 = next(s for s in after["merge"]["shards"] if s["index"] == 2)
    assert shard2["state"] == "CANCELLED" and shard2["exit_code"] == "0:15"
    assert shard2["missing"] == shard2["planned"] - shard2["recorded"] > 0
    assert after["merge"]["missing"] == shard2["missing"]
    others = [s for s in after["merge"]["shards"] if s["index"] != 2]
    assert [(s["state"], s["missing"]) for s in others] == [("COMPLETED", 0)] * 3
    ok = after["runs"].filter(pl.col("status") == "ok")
    assert ok.height == 8 - shard2["missing"] and 2 * 3 <= ok.height < 8
    # the run in flight when the shard was cancelled, if any, is recorded as interrupted, and counted as missing
    assert set(after["runs"]["status"]) <= {"ok", "interrupted"}


def test_resubmission_runs_only_the_unfinished_runs(cancelled_sweep):
    out, after, resubmitted, rewatched = cancelled_sweep
    assert "submitted shards 2 of 4" in resubmitted.stdout, resubmitted.stdout
    assert f"{after['runs'].height} already recorded" in resubmitted.stdout
    assert rewatched.returncode == 0, rewatched.stdout + rewatched.stderr
    assert "shard 2/4 COMPLETED exit 0:0" in rewatched.stdout
    assert "shard 1/4 not submitted" in rewatched.stdout  # nothing left there
    merged = journal(out / "runs.jsonl")
    assert len(merged) == len({r["run_id"] for r in merged}) == 8
    assert {r["status"] for r in merged} == {"ok"}
    before = {r["run_id"]: r["started_at"] for r in after["journal"] if r["status"] == "ok"}
    assert all(r["started_at"] == before[r["run_id"]] for r in merged if r["run_id"] in before)  # not measured again
    assert json.loads((out / "merge.json").read_text())["missing"] == 0
    assert (out / "shards/submit.sh").read_text().count("sbatch --parsable") == 2
