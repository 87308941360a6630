"""The one line that names the runs measured on a busy host: said once, at the top of the terminal summary
(report/finish.py -> cli/results.py) and of the report, never in every row.

A pure function of the runs table (orchestrator/results/tables.py: its busy, others_share and top_other_process
columns). A journal written before busy hosts were observed has no verdicts: nothing is said, since nothing is known.
"""
from __future__ import annotations

import polars as pl

NAMED = 6  # run ids named in the line; the rest are counted (every one is in tables/runs.csv, column busy)


def busy_runs(runs: pl.DataFrame) -> pl.DataFrame:
    """The rows of the runs measured on a busy host, in plan order."""
    if "busy" not in runs.columns or runs.is_empty():
        return runs.clear()
    return runs.filter(pl.col("busy").fill_null(False).cast(pl.Boolean))


def busy_line(runs: pl.DataFrame) -> str | None:
    """"3 of 8 runs were measured on a busy host ...": which, how busy at most, and by what; None when none was."""
    flagged = busy_runs(runs)
    if flagged.is_empty():
        return None
    observed = runs.filter(pl.col("busy").is_not_null()).height
    ids = flagged["run_id"].to_list()
    if len(ids) == observed and len(ids) > NAMED:  # naming a few of them would say nothing more than "all"
        text = f"all {observed} observed runs were measured on a busy host"
    else:
        named = ", ".join(ids[:NAMED]) + (f" and {len(ids) - NAMED} more" if len(ids) > NAMED else "")
        text = f"{len(ids)} of {observed} observed runs were measured on a busy host: {named}"
    shares = flagged.filter(pl.col("others_share").is_not_null())
    if not shares.is_empty():
        worst = shares.sort("others_share", descending=True).row(0, named=True)
        text += (f"; other processes used up to {worst['others_share']:.0%} of the CPUs "
                 f"({worst['run_id']}" + (f", most: {worst['top_other_process']}" if worst["top_other_process"]
                                          else "") + ")")
    return (text + ". Their latency and energy may be inflated by what else ran: see the busy, others_share and "
                   "top_other_process columns of tables/runs.csv, and [interference] in the config to measure them "
                   "again or stop instead")
