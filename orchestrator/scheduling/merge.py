"""Merging a sharded sweep: the union of the shards' journals, the missing runs counted, the hosts grouped.

The merged runs.jsonl is an ordinary journal (tables and report read it as they read a single host's); each record
gains the shard that measured it and that node's host signature, so hardware can be told apart afterwards.
"""
from __future__ import annotations

import filecmp
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import polars as pl

from orchestrator.scheduling.sharded import expected_runs, read_manifest, shard_facts, shards_dir
from orchestrator.scheduling.slurm import NOT_KNOWN, TaskState
from orchestrator.results.record import INTERRUPTED, RunRecord
from orchestrator.errors import UserError
from orchestrator.results.journal import describe_problems, iter_journal_objects
from orchestrator.results.journal_scan import journal_problems
from orchestrator.results.store import read_json_object
from runners.protocol import write_json_atomic


def host_signature(host: dict[str, Any]) -> str:
    """What makes two nodes' numbers comparable: CPU model and count, GPU models, NVIDIA driver."""
    nvml = next((s for s in host.get("sensors", []) if s.get("name") == "nvml"), {}) or {}
    details = nvml.get("details") or {}
    gpus = [g.get("name", "?") if isinstance(g, dict) else str(g) for g in details.get("gpus", [])]
    gpu = f"{len(gpus)}x {', '.join(sorted(set(gpus)))}, driver {details.get('driver_version')}" if gpus else "no GPU"
    return f"{host.get('cpu_model', 'unknown CPU')} ({host.get('logical_cpus')} CPUs); {gpu}"


@dataclass
class ShardSummary:
    index: int
    planned: int
    recorded: int
    missing: int
    state: str
    exit_code: str | None
    node: str | None
    host_signature: str | None


@dataclass
class MergeSummary:
    planned: int
    recorded: int
    missing: int
    shards: list[ShardSummary] = field(default_factory=list)
    hosts: dict[str, list[int]] = field(default_factory=dict)  # signature -> shards measured there

    def to_dict(self) -> dict[str, Any]:
        return {"planned": self.planned, "recorded": self.recorded, "missing": self.missing,
                "shards": [vars(s) for s in self.shards], "hosts": self.hosts}


def _shard_indices(root: Path) -> list[int]:
    return sorted(int(p.name) for p in shards_dir(root).glob("*") if p.is_dir() and p.name.isdigit())


def check_mergeable(root: Path) -> list[str]:
    """Why merging would lose something the user has: the merge rewrites runs.jsonl, host.json and baseline.json
    of the sweep's folder, so each of those must read whole first, and each shard's host.json (its signature)."""
    refusals = []
    journal = root / "runs.jsonl"
    if journal.exists():
        problems = journal_problems(journal)
        if problems:
            refusals.append(f"{journal}: {len(problems)} unreadable line(s) ({', '.join(str(p.line) for p in problems[:10])}); "
                            f"the merge rewrites this journal from the shards and would drop them: repair or delete "
                            f"those lines (or move the file aside), then merge again")
    for path in (root / "host.json", root / "baseline.json",
                 *sorted(shards_dir(root).glob("*/host.json")), *sorted(shards_dir(root).glob("*/baseline.json"))):
        if os.path.lexists(path) and read_json_object(path)[1] is not None:  # a link loop too
            action = ("the merge writes it anew from the shards' and would replace it: move it aside (or restore it "
                      "from a copy), then merge again") if path.parent == root else (
                      "the merge copies it into the sweep's folder: restore it from a copy, then merge again")
            refusals.append(f"{path}: unreadable ({read_json_object(path)[1]}); {action}")
    return refusals


def merge_shards(root: Path, states: dict[int | None, TaskState] | None = None, state_problem: str | None = None,
                 warn: Callable[[str], None] | None = None) -> MergeSummary:
    """Union every shard's journal (and any earlier merge) into root/runs.jsonl; write merge.json and host.json.

    Refuses (UserError, nothing written) when that would lose a damaged file (check_mergeable); a shard journal's
    unreadable lines are left in it, said through warn, and their runs counted missing.
    """
    root = Path(root)
    refusals = check_mergeable(root)
    if refusals:
        raise UserError(refusals[0] + (f" (and {len(refusals) - 1} more: `greenrt status {root}` lists them)"
                                       if len(refusals) > 1 else ""))
    # run id -> (index, status, journal line): lines, not records, so that 200,000 records are never all held
    merged: dict[str, tuple[int | None, str, str]] = {}
    for _, data, record in iter_journal_objects(root / "runs.jsonl", []):  # an earlier merge: shards since win below
        merged[record.run_id] = (record.index, record.status, journal_line(data, record))
    signatures: dict[int, str] = {}
    hosts: dict[str, list[int]] = {}
    first_host: Path | None = None
    for index in _shard_indices(root):
        host_path = shards_dir(root) / str(index) / "host.json"
        if host_path.exists():
            signatures[index] = host_signature(json.loads(host_path.read_text()))
            hosts.setdefault(signatures[index], []).append(index)
            first_host = first_host or host_path
        journal = shards_dir(root) / str(index) / "runs.jsonl"
        problems: list = []
        for _, data, record in iter_journal_objects(journal, problems):
            merged.pop(record.run_id, None)  # the latest record of a run wins, and goes last
            merged[record.run_id] = (record.index, record.status, journal_line(
                data, record, {"shard": index, "host_signature": signatures.get(index)}))
        if problems and warn is not None:
            warn(describe_problems(journal, problems))
    _write_journal(root / "runs.jsonl", [line for _, _, line in sorted(
        merged.values(), key=lambda m: (m[0] is None, m[0]))])
    if first_host is not None:
        # The report's provenance shows one host: the first shard's, with every signature listed beside it.
        host = json.loads(first_host.read_text())
        _replace_if_changed(root / "host.json", lambda tmp: write_json_atomic(tmp, {**host, "shard_hosts": hosts}))
        baseline = first_host.with_name("baseline.json")
        if baseline.exists():
            _replace_if_changed(root / "baseline.json", lambda tmp: shutil.copyfile(baseline, tmp))

    expected = expected_runs(root)
    manifest = read_manifest(root) or {}
    summary = MergeSummary(planned=sum(len(v) for v in expected.values()), recorded=0, missing=0, hosts=hosts)
    for index, run_ids in expected.items():
        # an interrupted run (its shard was cancelled or timed out mid-run) is measured again on resubmission
        recorded = sum(1 for r in run_ids if r in merged and merged[r][1] != INTERRUPTED)
        state = (states or {}).get(index)
        if state is None:
            in_submission = index in manifest.get("tasks", [])
            state = TaskState("not submitted (no runs left)" if not in_submission else
                              f"unknown ({state_problem or NOT_KNOWN})")
        facts = shard_facts(root, index) or {}
        summary.shards.append(ShardSummary(index, len(run_ids), recorded, len(run_ids) - recorded, state.state,
                                           state.exit_code, state.node or facts.get("node"), signatures.get(index)))
        summary.recorded += recorded
        summary.missing += len(run_ids) - recorded
    _replace_if_changed(root / "merge.json", lambda tmp: write_json_atomic(tmp, summary.to_dict()))
    return summary


_FIELDS = tuple((name, field.alias or name) for name, field in RunRecord.model_fields.items())


def journal_line(data: dict[str, Any], record: RunRecord, update: dict[str, Any] | None = None) -> str:
    """The merged journal's line of a record with `update` applied: what dumping the record would write.

    A line greenrt wrote holds its record's dump already (every field, of the field's own type), so the line's
    object with the update is that dump, at a fraction of the cost at 200,000 records; any other line (an older
    schema, a value the record converted, a missing field) is dumped from the record, as before.
    """
    update = update or {}
    plain = all(alias in data and type(data[alias]) is type(value) and data[alias] == value
                for (name, alias), value in ((f, getattr(record, f[0])) for f in _FIELDS) if name != "failure")
    if plain and record.failure is not None:
        plain = data.get("failure") == record.failure.model_dump(mode="json")
    elif plain:
        plain = data.get("failure", ...) is None
    if plain:
        try:
            return json.dumps({**data, **update}, sort_keys=True, allow_nan=False) + "\n"
        except ValueError:  # a non-finite number the record's dump writes as null
            pass
    return json.dumps(record.model_copy(update=update).to_journal(), sort_keys=True, allow_nan=False) + "\n"


def _write_journal(path: Path, lines: list[str]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w") as fh:
            for line in lines:
                fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    _replace_if_changed(path, write)


def _replace_if_changed(path: Path, write: Callable[[Path], None]) -> None:
    """Write beside path, then replace it only if the bytes differ: a merge run again leaves its files untouched."""
    tmp = path.with_name(f".{path.name}.merge-tmp")
    write(tmp)
    if path.exists() and filecmp.cmp(tmp, path, shallow=False):
        tmp.unlink()
        return
    os.replace(tmp, path)


def mixed_hardware_cells(runs: pl.DataFrame) -> list[str]:
    """Cells whose repetitions were measured on different hardware (host signatures): not one population."""
    if runs.is_empty() or "host" not in runs.columns or runs["host"].drop_nulls().is_empty():
        return []
    keys = ["model", "batch_size", "runtime", "precision"]
    mixed = (runs.filter(pl.col("host").is_not_null()).group_by(keys, maintain_order=True)
             .agg(pl.col("host").n_unique().alias("hosts")).filter(pl.col("hosts") > 1).sort(keys))
    return [f"{r['model']} bs{r['batch_size']} {r['runtime']} {r['precision']} ({r['hosts']} hosts)"
            for r in mixed.iter_rows(named=True)]
