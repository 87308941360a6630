"""Where a sweep's time went, from its records: each run's phases (`measured_run`, what `greenrt plan` learns from
earlier runs) and the sweep's sums over a journal (`TimeLedger`, what the report's "where the time went" shows).

A record holds: when the run began (`started_at`, to the second), its wall time (`wall_seconds`: request, launch,
accounting), the runner's load and warm-up seconds and its window's stamps (`result`), the cooldown before it
(`protocol.cooldown_before`) and, on the first run after a preparation, that preparation's start and seconds
(`prepared`). The idle baselines are baseline.json's history (when each ended, and its seconds).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.planning.planner import Cell
from orchestrator.planning.time_budget import MeasuredRun
from orchestrator.results.record import RunRecord


def _epoch(stamp: str | None) -> float | None:
    try:
        return datetime.fromisoformat(stamp).timestamp() if stamp else None
    except ValueError:
        return None


def window_seconds(result: dict[str, Any]) -> float | None:
    start, end = result.get("window_start_ns"), result.get("window_end_ns")
    return (end - start) / 1e9 if start and end and end > start else None


def measured_run(record: RunRecord) -> MeasuredRun:
    """One record's phases, in seconds: load, warm-up, window, the rest of its wall time, the cooldown before it."""
    result = record.result or {}
    load, warmup, window = result.get("load_seconds"), result.get("warmup_seconds"), window_seconds(result)
    inside = sum(v for v in (load, warmup, window) if v is not None)
    other = max(record.wall_seconds - inside, 0.0) if record.wall_seconds is not None else None
    iterations = result.get("iterations") or 0
    cooldown = (record.protocol.cooldown_before or {}).get("seconds") if record.protocol else None
    cell = Cell(record.model, record.batch_size, record.runtime, record.precision).key
    return MeasuredRun(cell, record.runtime, record.ok, load, warmup, window, other,
                       latency=window / iterations if window and iterations else None,
                       first_inference=result.get("engine_build_seconds"),
                       cooldown_before=float(cooldown) if isinstance(cooldown, (int, float)) else None)


@dataclass
class _Session:
    """One invocation of the sweep (a resume starts another): from its preparation's start, where recorded, to
    the end of its last run."""

    start: float | None = None
    first_run: float | None = None
    end: float | None = None


@dataclass
class TimeLedger:
    """Sums over every record of a journal in its order (a run measured again counts each time): fed one record at
    a time while the journal is read once (results/tables.py read_runs)."""

    runs: int = 0
    preparation: float = 0.0
    prepared_sessions: int = 0
    load: float = 0.0
    warmup: float = 0.0
    window: float = 0.0
    cooldown: float = 0.0
    run_other: float = 0.0
    sessions: dict[Any, list[_Session]] = field(default_factory=dict)  # per shard (None: not sharded)

    def add(self, record: RunRecord) -> None:
        run = measured_run(record)
        self.runs += 1
        self.load += run.load or 0.0
        self.warmup += run.warmup or 0.0
        self.window += run.window or 0.0
        self.run_other += run.other or 0.0
        self.cooldown += run.cooldown_before or 0.0
        began = _epoch(record.started_at)
        sessions = self.sessions.setdefault(record.shard, [])
        if record.prepared is not None or not sessions or _resumed(sessions[-1], began):
            start = _epoch(record.prepared.started_at) if record.prepared is not None else None
            sessions.append(_Session(start=start))
            if record.prepared is not None:
                self.preparation += record.prepared.seconds
                self.prepared_sessions += 1
        session = sessions[-1]
        if began is not None:
            session.first_run = began if session.first_run is None else min(session.first_run, began)
            end = began + (record.wall_seconds or 0.0)
            session.end = end if session.end is None else max(session.end, end)

    def wall(self, baselines: list[tuple[float, float]]) -> tuple[float, float]:
        """(wall seconds over the sessions, idle-baseline seconds inside them); baselines: (start, seconds) of each.
        A session without a recorded preparation starts at the idle baseline just before its first run."""
        wall = baseline = 0.0
        for session in (s for shard in self.sessions.values() for s in shard):
            if session.first_run is None or session.end is None:
                continue
            start = session.start
            if start is None:  # before `prepared` was recorded: from the baseline measured just before the runs
                before = [b for b, seconds in baselines if session.first_run - 3600 <= b <= session.first_run]
                start = min(before, default=session.first_run)
            wall += session.end - start
            baseline += sum(seconds for b, seconds in baselines if start <= b <= session.end)
        return wall, baseline


# A journal written before `prepared` was recorded marks no resume: a run starting this long after the previous one
# ended began another invocation (no cooldown or baseline recheck waits an hour between runs).
RESUME_GAP_S = 3600.0


def _resumed(session: _Session, began: float | None) -> bool:
    return began is not None and session.end is not None and began - session.end > RESUME_GAP_S


def baseline_spans(baseline_json: dict[str, Any]) -> list[tuple[float, float]]:
    """(start, seconds) of each idle baseline measured (baseline.json's history): it ends at `measured_at`."""
    spans = []
    for entry in baseline_json.get("history") or []:
        end, seconds = _epoch(entry.get("measured_at")), entry.get("seconds")
        if entry.get("status") == "ok" and end is not None and isinstance(seconds, (int, float)):
            spans.append((end - seconds, float(seconds)))
    return spans
