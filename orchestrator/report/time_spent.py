"""The report's "where the time went": a sweep's wall time split into preparation, idle baselines, and per phase
summed over its runs (load, warm-up, window, cooldown, the rest), each with its share of the wall time.

The sums come from the journal, read once (results/run_times.py's TimeLedger); the baselines from baseline.json.
What a journal does not hold is said, never filled in: a sweep recorded before preparation times were kept has no
preparation row, and its wall time starts at the idle baseline before its first run.
"""
from __future__ import annotations

from typing import Any

import polars as pl

from orchestrator.results.run_times import TimeLedger, baseline_spans

TITLE = "Where the time went"
SCHEMA = {"part": pl.String, "seconds": pl.Float64, "share_of_wall": pl.Float64, "note": pl.String}


def time_table(ledger: TimeLedger, baseline_json: dict[str, Any]) -> tuple[pl.DataFrame, str]:
    """(the table, one sentence saying what the wall time covers and what was not recorded)."""
    wall, baseline = ledger.wall(baseline_spans(baseline_json))
    if ledger.runs == 0 or wall <= 0:
        return pl.DataFrame(schema=SCHEMA), "No run has a start time and wall time: nothing to split."
    rows: list[tuple[str, float | None, str]] = [
        ("preparation", ledger.preparation if ledger.prepared_sessions else None,
         "environments, exports, int8 copies, reference outputs" if ledger.prepared_sessions
         else "not recorded: the journal predates it"),
        ("idle baseline", baseline, "measured before the runs, and rechecks"),
        ("load", ledger.load, "the runner's model load"),
        ("warm-up", ledger.warmup, "warm-up iterations (engine builds, compiles)"),
        ("window", ledger.window, "inside measured windows"),
        ("cooldown", ledger.cooldown, "between runs"),
    ]
    known = sum(seconds or 0.0 for _, seconds, _ in rows)
    rows.append(("other", max(wall - known, 0.0), "runner start-up and exit, accounting, fidelity, journal, gaps"))
    rows.append(("wall time", wall, f"{ledger.runs} run records"))
    frame = pl.DataFrame([{"part": part, "seconds": seconds, "share_of_wall": seconds / wall if seconds is not None
                           else None, "note": note} for part, seconds, note in rows], schema=SCHEMA)
    sharded = sum(1 for shard in ledger.sessions if shard is not None)
    covers = (f"Wall time: from the start of each sweep invocation ({_sessions(ledger)}) to the end of its last "
              f"run; the tables and report after it are not included.")
    if sharded:
        covers += f" {sharded} shards ran side by side: their times are summed, not the elapsed time."
    if not ledger.prepared_sessions:
        covers += " Preparation was not recorded (a journal written before it was): the wall time starts at the " \
                  "idle baseline before the first run."
    return frame, covers


def _sessions(ledger: TimeLedger) -> str:
    n = sum(len(s) for s in ledger.sessions.values())
    return "one invocation" if n == 1 else f"{n} invocations, the time between them left out"


def share_in_windows(frame: pl.DataFrame, with_cooldown: bool = True) -> float | None:
    """The share of the wall time inside measured windows (and cooldowns): what a sweep spends measuring."""
    shares = dict(zip(frame["part"], frame["share_of_wall"]))
    if shares.get("window") is None:
        return None
    return shares["window"] + (shares.get("cooldown") or 0.0 if with_cooldown else 0.0)
