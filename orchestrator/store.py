"""A sweep's results directory: plan, host, the append-only journal, raw samples, tables.

The journal is the source of truth: one JSON line per finished or failed run, appended and fsynced, so a crash
loses at most the run in flight. Everything else is written atomically (temporary file, then rename).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import UserError
from orchestrator.planner import Plan
from runners.protocol import write_json_atomic


@dataclass(frozen=True)
class JournalProblem:
    line: int
    message: str


class ResultsDir:
    def __init__(self, root: str | Path) -> None:
        # Absolute: runners (in containers too) get paths under it and run in another working directory.
        self.root = Path(root).absolute()
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"{self.root}: exists and is not a directory")

    plan_path = property(lambda self: self.root / "plan.json")
    host_path = property(lambda self: self.root / "host.json")
    baseline_path = property(lambda self: self.root / "baseline.json")
    journal_path = property(lambda self: self.root / "runs.jsonl")
    samples_dir = property(lambda self: self.root / "samples")
    tables_dir = property(lambda self: self.root / "tables")

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def open_for(self, plan: Plan) -> None:
        """Start a new sweep here, or resume the same one; refuse to mix two different sweeps in one directory."""
        if self.plan_path.exists():
            try:
                existing = json.loads(self.plan_path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise UserError(f"{self.plan_path}: unreadable ({exc}); choose another --out") from None
            if existing.get("config_digest") != plan.config_digest:
                raise UserError(
                    f"{self.root} holds another sweep ({existing.get('config_name')}, digest "
                    f"{existing.get('config_digest')}); this config's digest is {plan.config_digest}: use another --out")
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self.write_json(self.plan_path, plan.to_dict())

    def write_json(self, path: Path, data: dict[str, Any]) -> None:
        write_json_atomic(path, data)

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True, allow_nan=False) + "\n"
        with open(self.journal_path, "a") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def records(self) -> tuple[list[dict[str, Any]], list[JournalProblem]]:
        """Every readable record, and each unreadable line with its number (the rest stays usable)."""
        records, problems = [], []
        if not self.journal_path.exists():
            return records, problems
        with open(self.journal_path, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    record = json.loads(raw)
                    if not isinstance(record, dict) or "run_id" not in record:
                        raise ValueError("not a run record")
                    records.append(record)
                except (ValueError, UnicodeDecodeError) as exc:
                    problems.append(JournalProblem(number, f"{self.journal_path}:{number}: unreadable record ({exc})"))
        return records, problems

    def recorded_run_ids(self) -> set[str]:
        return {r["run_id"] for r in self.records()[0]}
