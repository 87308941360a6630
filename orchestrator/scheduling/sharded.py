"""A sharded sweep's files under its results directory, shared by the submitting host, the shards and the merge.

    shards/shards.json          count, policy and the tasks of the latest submission
    shards/jobs.jsonl           one line per submission: its array job and merge job
    shards/shards.sbatch, merge.sbatch, submit.sh   the scripts, readable and re-submittable by hand
    shards/<i>/runs.jsonl       shard i's journal (host.json, baseline.json beside it: that node's)
    shards/<i>/shard.json       where and when shard i ran, and the runs it was given
    merge.json                  what the merge found: per shard its Slurm state, runs recorded and missing
"""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.analysis.adaptive import Rounds, adaptive_table, plan_rounds, plan_slots
from orchestrator.planning.planner import Plan
from orchestrator.scheduling.shards import ShardSpec, shard_plan, split_runs
from orchestrator.results.record import INTERRUPTED, RunRecord
from orchestrator.results.journal import read_journal
from orchestrator.results.store import ResultsDir
from orchestrator.results.tables import runs_table
from runners.protocol import write_json_atomic


def shards_dir(root: Path) -> Path:
    return Path(root) / "shards"


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_manifest(root: Path, count: int, policy: str, tasks: list[int], config: Path) -> None:
    write_json_atomic(shards_dir(root) / "shards.json",
                      {"count": count, "policy": policy, "tasks": tasks, "config": str(config)})


def read_manifest(root: Path) -> dict[str, Any] | None:
    return _read(shards_dir(root) / "shards.json")


def append_submission(root: Path, array_job: str, merge_job: str) -> None:
    with open(shards_dir(root) / "jobs.jsonl", "a") as fh:
        fh.write(json.dumps({"array_job": array_job, "merge_job": merge_job, "by": "greenrt",
                             "submitted_at": time.time()}) + "\n")


def latest_submission(root: Path) -> dict[str, Any] | None:
    path = shards_dir(root) / "jobs.jsonl"
    if not path.exists():
        return None
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    for line in reversed(lines):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


def begin_shard(results: ResultsDir, plan: Plan, spec: ShardSpec, policy: str) -> Plan:
    """Record where and when this shard runs (its node, Slurm ids) and return the plan filtered to its runs."""
    mine = shard_plan(plan, spec, policy)
    write_json_atomic(results.own / "shard.json", {
        "index": spec.index, "count": spec.count, "policy": policy, "runs": [r.run_id for r in mine.runs],
        "node": os.environ.get("SLURMD_NODENAME") or socket.gethostname(), "hostname": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"), "slurm_array_job_id": os.environ.get("SLURM_ARRAY_JOB_ID"),
        "started_at": time.time(), "finished_at": None})
    return mine


def end_shard(results: ResultsDir) -> None:
    path = results.own / "shard.json"
    facts = _read(path) or {}
    write_json_atomic(path, {**facts, "finished_at": time.time()})


def shard_facts(root: Path, index: int) -> dict[str, Any] | None:
    return _read(shards_dir(root) / str(index) / "shard.json")


def expected_runs(root: Path) -> dict[int, list[str]]:
    """Each shard's run ids under the latest manifest, from plan.json: what the merge and status count against
    (an adaptive sweep's runs its rounds decided never to measure are not expected)."""
    manifest = read_manifest(root)
    plan_data = _read(Path(root) / "plan.json")
    if manifest is None or plan_data is None:
        return {}
    split = split_runs(Plan.from_dict(plan_data), manifest["count"], manifest["policy"])
    skip = not_needed(root, plan_data)
    return {i + 1: [r.run_id for r in runs if r.run_id not in skip] for i, runs in enumerate(split)}


def _journals(root: Path) -> list[Path]:
    return [root / "runs.jsonl", *sorted(shards_dir(root).glob("*/runs.jsonl"))]


def _rounds(root: Path, plan_data: dict[str, Any]) -> Rounds | None:
    if adaptive_table(plan_data) is None:
        return None
    records = [r for path in _journals(Path(root)) for r in read_journal(path)[0]]
    return plan_rounds(plan_data, runs_table(records))


def not_needed(root: Path, plan_data: dict[str, Any]) -> set[str]:
    """The planned runs of an adaptive sweep that its rounds, replayed from every journal of the sweep, decided
    never to measure (their cell stopped before them); none for a fixed count."""
    rounds = _rounds(root, plan_data)
    return {s.run_id for s in plan_slots(plan_data) if rounds is not None and rounds.measured(s) is False}


def adaptive_line(root: Path, plan_data: dict[str, Any]) -> str | None:
    """What `status` says of an adaptive sweep: its cells active and stopped, by which rule; None: fixed count."""
    rounds = _rounds(root, plan_data)
    if rounds is None:
        return None
    by: dict[str, int] = {}
    for stop in rounds.cells.values():
        by[stop.stopped_by or "active"] = by.get(stop.stopped_by or "active", 0) + 1
    stopped = ", ".join(f"{n} by {name}" for name, n in sorted(by.items()) if name != "active")
    return (f"adaptive (stop = {rounds.rule.stop!r}, {rounds.rule.min_runs} to {rounds.rule.max_runs} runs per "
            f"cell): {by.get('active', 0)} of {len(rounds.cells)} cells active"
            + (f"; stopped {stopped}" if stopped else "") + ("; finished" if rounds.finished else ""))


@dataclass(frozen=True)
class ShardProgress:
    index: int
    planned: int
    recorded: int
    failed: int
    node: str | None


def progress(root: Path) -> list[ShardProgress]:
    """Per shard: its runs, how many any journal of the sweep holds (earlier submissions count), how many failed."""
    root = Path(root)
    journals = _journals(root)
    latest: dict[str, RunRecord] = {}
    for path in journals:
        for record in read_journal(path)[0]:
            latest[record.run_id] = record
    rows = []
    for index, run_ids in expected_runs(root).items():
        # A shard stopped by SIGTERM (scancel, a time limit) records its run in flight as interrupted: not done.
        recorded = [latest[r] for r in run_ids if r in latest and latest[r].status != INTERRUPTED]
        facts = shard_facts(root, index) or {}
        rows.append(ShardProgress(index, len(run_ids), len(recorded),
                                  sum(1 for r in recorded if not r.ok), facts.get("node")))
    return rows


def all_recorded(root: Path) -> set[str]:
    """Run ids any journal of the sweep holds: the merged one, and every shard's of every submission."""
    root = Path(root)
    ids: set[str] = set()
    for path in _journals(root):
        ids |= {r.run_id for r in read_journal(path)[0] if r.status != INTERRUPTED}
    return ids
