"""A sweep's results directory: plan, host, the append-only journal, raw samples, tables.

The journal is the source of truth: one JSON line per finished or failed run, appended and fsynced, so a crash
loses at most the run in flight. Everything else is written atomically (temporary file, then rename).
"""
from __future__ import annotations

import errno
import json
import os
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from orchestrator.errors import UserError
from orchestrator.planning.planner import Plan, repetitions_change
from orchestrator.results.journal import JournalProblem, read_journal
from orchestrator.results.journal_scan import done_run_ids
from orchestrator.results.record import RunRecord, as_record
from orchestrator.results.results_files import read_results_bytes, results_file
from runners.protocol import write_json_atomic

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}")


def disk_full(exc: BaseException) -> bool:
    """Writing failed for want of space (or quota): the sweep stops, it is not the run's fault."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


class ResultsDir:
    def __init__(self, root: str | Path, shard: int | None = None) -> None:
        # Absolute: runners (in containers too) get paths under it and run in another working directory.
        self.root = Path(root).absolute()
        if os.path.lexists(self.root) and not self.root.is_dir():  # a link loop too: exists() says False for it
            raise UserError(f"{self.root}: exists and is not a directory (or a link to one)")
        # A shard of a sweep spread over hosts keeps its journal, host and idle baseline (they belong to the node
        # that measured them) under shards/<i>/; the plan, run folders and samples stay shared.
        self.shard = shard
        self.own = self.root / "shards" / str(shard) if shard is not None else self.root

    plan_path = property(lambda self: self.root / "plan.json")
    host_path = property(lambda self: self.own / "host.json")
    baseline_path = property(lambda self: self.own / "baseline.json")
    journal_path = property(lambda self: self.own / "runs.jsonl")
    samples_dir = property(lambda self: self.root / "samples")
    tables_dir = property(lambda self: self.root / "tables")

    def run_dir(self, run_id: str) -> Path:
        # Run ids come from the planner (sanitised) or from a plan.json on disk: never a path out of runs/.
        if not _SAFE_NAME.fullmatch(run_id):
            raise UserError(f"run id {run_id!r} is not a safe folder name (letters, digits, '.', '_', '-')")
        return self.root / "runs" / run_id

    def read_plan(self) -> dict[str, Any]:
        """plan.json, or one line naming it and what to do: without it, which runs were planned is unknown."""
        if not os.path.lexists(self.plan_path):
            raise UserError(f"{self.root}: not a greenrt results directory (no plan.json)")
        data, problem = read_json_object(self.plan_path)
        if problem is None and not isinstance(data.get("runs"), list):
            problem = "no list of runs"
        if problem is not None:
            raise UserError(f"{self.plan_path}: unreadable ({problem}); restore it from a copy of this folder "
                            f"(greenrt rewrites it only to add repetitions), or sweep again with --fresh, which moves the folder "
                            f"aside (nothing is deleted) and starts over")
        return data

    def read_facts(self, path: Path, say: Callable[[str], None]) -> dict[str, Any]:
        """host.json or baseline.json: {} when missing; when damaged, {} and one line (via say) naming the file."""
        if not os.path.lexists(path):
            return {}
        data, problem = read_json_object(path)
        if problem is not None:
            say(f"{path}: unreadable ({problem}); left as it is: the report's provenance goes without it; "
                f"restore it from a copy of this folder")
            return {}
        return data

    def baseline_history(self) -> list[dict[str, Any]]:
        """The idle baselines measured so far; the sweep appends to them, so a damaged file stops it here."""
        if not os.path.lexists(self.baseline_path):
            return []
        data, problem = read_json_object(self.baseline_path)
        if problem is not None:
            raise UserError(f"{self.baseline_path}: unreadable ({problem}); the sweep adds each idle baseline to it "
                            f"and would replace what it holds: restore it from a copy (or move it aside), then resume")
        return list(data.get("history", []))

    def open_for(self, plan: Plan) -> str | None:
        """Start a new sweep here, resume the same one, or add repetitions to it (the line saying so is returned);
        refuse to mix two different sweeps in one directory, and to drop repetitions already planned. A results file
        that is a link, a loop, a FIFO or a folder is refused before anything is written: a resume never measures
        into a folder whose journal it cannot read."""
        self.refuse_unreadable_files()
        said = None
        if self.plan_path.exists():
            existing = self.read_plan()
            if existing.get("config_digest") != plan.config_digest:
                said = self._extend(Plan.from_dict(existing), plan)
        elif self.root.is_dir() and any(self.root.iterdir()):
            # Never write a sweep into (or, with --fresh, move away) a folder that is not one of greenrt's.
            raise UserError(f"{self.root}: not empty and not a greenrt results directory (no plan.json); "
                            f"choose another --out")
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            self.write_json(self.plan_path, plan.to_dict())
        self.own.mkdir(parents=True, exist_ok=True)
        return said

    def refuse_unreadable_files(self) -> None:
        """One line (UserError) for the first of plan, host, baseline and journal that is there but not a regular
        file of this folder; nothing is read or written."""
        if not self.root.is_dir():
            return
        for path, what in ((self.plan_path, "plan.json"), (self.host_path, "host.json"),
                           (self.baseline_path, "baseline.json"), (self.journal_path, "the journal")):
            results_file(self.root, path, what)

    def _extend(self, recorded: Plan, plan: Plan) -> str:
        change = repetitions_change(recorded, plan)
        if change is None:
            raise UserError(
                f"{self.root} holds another sweep ({recorded.config_name}, digest {recorded.config_digest}); this "
                f"config's digest is {plan.config_digest}: use another --out, or --fresh to set the old results "
                f"aside and start over")
        before, after = change
        if after < before:
            raise UserError(f"{self.root} holds this sweep with repetitions = {before}; this config asks for {after}: "
                            f"valid: repetitions = {before} or more (repetitions are added to a sweep, never taken "
                            f"from it), or another --out")
        # The one rewrite of plan.json: every recorded run stays where it was, the new repetitions follow them.
        extended = replace(plan, extended=(*recorded.extended, {"from": before, "to": after, "at": time.time()}))
        self.write_json(self.plan_path, extended.to_dict())
        return (f"{self.root}: repetitions {before} -> {after}: {len(plan.runs) - len(recorded.runs)} runs added "
                f"after the {len(recorded.runs)} planned before")

    def write_json(self, path: Path, data: dict[str, Any]) -> None:
        write_json_atomic(path, data)

    def append(self, record: RunRecord | dict[str, Any]) -> None:
        """One line, fsynced. A write that fails (a full disk) is cut back off, so the journal stays whole."""
        line = (json.dumps(as_record(record).to_journal(), sort_keys=True, allow_nan=False) + "\n").encode()
        with open(self.journal_path, "ab") as fh:
            size = fh.seek(0, os.SEEK_END)
            try:
                if size and _last_byte(self.journal_path) != b"\n":
                    line = b"\n" + line  # a line cut short by a crash stays one unreadable line, not two
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            except BaseException:
                fh.truncate(size)
                raise

    def records(self) -> tuple[list[RunRecord], list[JournalProblem]]:
        """Every readable record, and each unreadable line with its number (the rest stays usable)."""
        return read_journal(self.journal_path)

    def recorded_run_ids(self) -> set[str]:
        """Runs that are done: finished or failed. A run whose latest record says it was interrupted is not."""
        paths = [self.journal_path]
        if self.shard is not None:
            # What the merge or another shard recorded is done too, so resubmitting with another shard count
            # measures nothing twice.
            paths += [self.root / "runs.jsonl", *sorted((self.root / "shards").glob("*/runs.jsonl"))]
        return set().union(*(done_run_ids(path) for path in paths))

    def set_aside(self) -> Path:
        """Move this directory's sweep to a new sibling folder (never deleted) and return where it went."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.root.with_name(f"{self.root.name}.old-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.root.with_name(f"{self.root.name}.old-{stamp}-{n}")
        self.root.rename(target)
        return target


def read_json_object(path: Path) -> tuple[dict[str, Any], str | None]:
    """A JSON object file of a results folder, or {} and why it cannot be read (a link, a loop, a FIFO or a folder
    in its place is never read)."""
    try:
        raw = read_results_bytes(path.parent, path, path.name)
    except UserError as exc:
        return {}, str(exc)
    if raw is None:
        return {}, "missing"
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        return {}, f"{type(exc).__name__}: {exc}"
    if not isinstance(data, dict):
        return {}, f"not a JSON object but {type(data).__name__}"
    return data, None


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1)
