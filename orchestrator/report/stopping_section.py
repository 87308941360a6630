"""The report's account of an adaptive sweep: the rule, the runs it saved, and per cell what stopped it after how
many runs (analysis/adaptive.py replays the rounds from the plan and the runs table, as the sweep decided them)."""
from __future__ import annotations

from typing import Any, Callable

import polars as pl

from orchestrator.analysis.adaptive import Rounds, stopping_table
from orchestrator.analysis.frames import CELL_KEYS
from orchestrator.report.document import Paragraph, Section

_RULES = {"precision": "a cell stopped once the interval of its median was within the target of it",
          "verdict": "a runtime stopped once it was separated from its group's leader, a group once its best-runtime "
                     "verdict (or a tie among those left) was settled",
          "max": "the planned maximum of runs was reached",
          "failed": "no run of the cell succeeded in its first rounds"}


def with_stopping(cells: pl.DataFrame, rounds: Rounds | None) -> pl.DataFrame:
    """The cells table with runs_used and stopped_by (an adaptive sweep), joined on the cell; as it was otherwise."""
    if rounds is None or cells.is_empty():
        return cells
    stops = stopping_table(rounds).select(*CELL_KEYS, "runs_used", "stopped_by")
    return cells.join(stops, on=list(CELL_KEYS), how="left", nulls_equal=True)


def stopping_section(rounds: Rounds | None, planned: int,
                     table: Callable[[str, str, pl.DataFrame], Any]) -> Section | None:
    """'Adaptive repetitions': the rule and, per cell, which rule stopped it and after how many runs; None for a
    sweep with a fixed count. `planned`: the runs the plan holds (every cell up to max)."""
    if rounds is None:
        return None
    rule = rounds.rule
    used = sum(stop.runs for stop in rounds.cells.values())
    counts: dict[str, int] = {}
    for stop in rounds.cells.values():
        counts[stop.stopped_by or "still active"] = counts.get(stop.stopped_by or "still active", 0) + 1
    target = f", target {rule.target:g}" if rule.target is not None else ""
    said = [f"Repetitions were adaptive: every cell ran at least {rule.min_runs} and at most {rule.max_runs} times, "
            f"one round (a repetition of every cell still active) at a time, under stop = '{rule.stop}'{target}, "
            f"alpha {rule.alpha:g}. {used} of the {planned} planned runs were measured "
            f"({used / planned:.0%})." if planned else "No run was planned."]
    said.append("Cells stopped: " + "; ".join(f"{n} by {name}" + (f" ({_RULES[name]})" if name in _RULES else "")
                                              for name, n in sorted(counts.items())) + ".")
    if not rounds.finished:
        said.append(f"The sweep is unfinished: {rounds.complete} round(s) recorded; the cells still active would "
                    f"be measured again by resuming it.")
    frame = stopping_table(rounds).rename({"stopped_why": "why", "stopped_metric": "judged_on"})
    return Section("Adaptive repetitions", [Paragraph(" ".join(said)),
                                            table("stopping", "What stopped each cell, after how many runs", frame)])

