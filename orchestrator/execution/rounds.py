"""Which runs a sweep measures next: all its pending runs at once (a fixed `repetitions`), or round by round (an
adaptive one, analysis/adaptive.py), and what stopped each cell, kept in stopping.json.

A round is one repetition of every cell still active; at each round's end the journal is read again and the rounds
replayed from it, so a sweep resumed after SIGKILL decides round r from the records of rounds before r exactly as
the killed one did: no run is lost or measured twice. stopping.json is derived (journal + plan), written atomically,
and written again by `greenrt report` and the merge from the whole journal.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import polars as pl

from orchestrator.analysis.adaptive import Rounds, Slot, adaptive_table, replay, rule_from
from orchestrator.planning.planner import Plan, PlannedRun
from orchestrator.results.journal import read_journal
from orchestrator.results.store import ResultsDir
from orchestrator.results.tables import runs_table
from runners.protocol import write_json_atomic

logger = logging.getLogger(__name__)

STOPPING_FILE = "stopping.json"


def rounds_of(plan: Plan, runs: pl.DataFrame) -> Rounds | None:
    """The adaptive plan's rounds as `runs` (a runs table) decide them; None for a fixed count."""
    table = adaptive_table({"config": plan.config})
    slots = [Slot(run.run_id, run.repetition, run.cell.key) for run in plan.runs]
    return replay(rule_from(table), slots, runs) if table else None


def stopping_facts(rounds: Rounds) -> dict:
    """stopping.json's content: the rule, the rounds recorded, and per cell its runs and what stopped it."""
    rule = rounds.rule
    return {"rule": {"min": rule.min_runs, "max": rule.max_runs, "stop": rule.stop, "target": rule.target,
                     "alpha": rule.alpha},
            "rounds_complete": rounds.complete, "finished": rounds.finished,
            "cells": {cell: {"runs": s.runs, "stopped_by": s.stopped_by, "why": s.why, "metric": s.metric}
                      for cell, s in rounds.cells.items()},
            "written_at": time.time()}


def write_stopping(folder: Path, rounds: Rounds) -> Path:
    path = Path(folder) / STOPPING_FILE
    write_json_atomic(path, stopping_facts(rounds))
    return path


class RunSchedule:
    """The runs a sweep measures next, batch by batch: `next_batch()` until it is empty."""

    def __init__(self, plan: Plan, results: ResultsDir) -> None:
        self.plan, self.results = plan, results
        self.adaptive = adaptive_table({"config": plan.config}) is not None
        self._given = False
        self._last: list[str] = []

    def _journals(self) -> list[Path]:
        # A shard decides from every journal of the sweep, as resume counts runs done (ResultsDir.recorded_run_ids):
        # an earlier submission with another shard count may have measured some of its group's rounds.
        if self.results.shard is None:
            return [self.results.journal_path]
        root = self.results.root
        return [root / "runs.jsonl", *sorted((root / "shards").glob("*/runs.jsonl"))]

    def rounds(self) -> Rounds | None:
        records = [r for path in self._journals() for r in read_journal(path)[0]]
        return rounds_of(self.plan, runs_table(records))

    def upper_bound(self) -> int:
        """Runs still to measure at most: every pending run (an adaptive sweep may stop well short of it)."""
        recorded = self.results.recorded_run_ids()
        return sum(run.run_id not in recorded for run in self.plan.runs)

    def next_batch(self) -> list[PlannedRun]:
        recorded = self.results.recorded_run_ids()
        if not self.adaptive:  # every pending run, once: exactly the fixed sweep's loop
            batch = [] if self._given else [run for run in self.plan.runs if run.run_id not in recorded]
            self._given = True
            return batch
        rounds = self.rounds()
        assert rounds is not None
        write_stopping(self.results.own, rounds)
        if rounds.finished:
            return []
        r = rounds.complete
        batch = [run for run in self.plan.runs
                 if run.repetition == r and run.cell.key in rounds.active[r] and run.run_id not in recorded]
        stopped = len(rounds.active[0]) - len(rounds.active[r])
        if [run.run_id for run in batch] == self._last:  # every run is journaled or the sweep stops: never twice
            raise RuntimeError(f"round {r + 1}: the runs just measured are not in the journal: {self._last[:3]}")
        self._last = [run.run_id for run in batch]
        logger.info(f"round {r + 1} of at most {rounds.rule.max_runs}: {len(rounds.active[r])} cells active"
                    + (f", {stopped} stopped ({_stopped_by(rounds)})" if stopped else "")
                    + f"; {len(batch)} runs to measure")
        return batch


def _stopped_by(rounds: Rounds) -> str:
    counts: dict[str, int] = {}
    for stop in rounds.cells.values():
        if stop.stopped_by:
            counts[stop.stopped_by] = counts.get(stop.stopped_by, 0) + 1
    return ", ".join(f"{n} by {rule}" for rule, n in sorted(counts.items()))
