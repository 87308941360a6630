"""The report's per-cell tables: one readable row per cell, and the failed runs counted by kind."""
from __future__ import annotations

import polars as pl

from orchestrator.analysis.frames import CELL_KEYS


def cell_table(stats: pl.DataFrame) -> pl.DataFrame:
    """One readable row per cell: medians with IQR for latency, mean and bootstrap CI for energy."""
    if stats.is_empty():
        return pl.DataFrame()

    def pick(metric: str, fields: dict[str, str]) -> pl.DataFrame:
        return (stats.filter(pl.col("metric") == metric)
                .select(*CELL_KEYS, *[pl.col(f).alias(alias) for f, alias in fields.items()]))

    base = stats.filter(pl.col("metric") == "latency_p50_ms").select(*CELL_KEYS, "runs", "ok_runs")
    parts = [pick("latency_p50_ms", {"median": "p50_ms", "iqr": "p50_iqr_ms"}),
             pick("latency_p90_ms", {"median": "p90_ms"}), pick("latency_p99_ms", {"median": "p99_ms"}),
             pick("throughput_per_s", {"median": "inferences_per_s"}),
             pick("j_per_inference", {"median": "J_per_inf", "mean": "J_per_inf_mean", "ci_low": "ci95_low",
                                      "ci_high": "ci95_high"}),
             pick("dynamic_j_per_inference", {"median": "dynamic_J_per_inf"})]
    for part in parts:
        base = base.join(part, on=list(CELL_KEYS), how="left", nulls_equal=True)
    return base


def failed_runs(runs: pl.DataFrame) -> pl.DataFrame:
    if runs.is_empty():
        return pl.DataFrame(schema={"run_id": pl.String})
    return (runs.filter(pl.col("status") != "ok")
            .select("run_id", "model", "batch_size", "runtime",
                    pl.col("failure_kind").cast(pl.String), pl.col("failure_message").cast(pl.String).str.slice(0, 300)))


def failures_per_cell(runs: pl.DataFrame) -> pl.DataFrame:
    """Per cell with a failed run: runs, failures, and how many of each kind (e.g. "timeout: 2, oom: 1")."""
    keys = ["model", "batch_size", "runtime", "precision"]
    if runs.is_empty() or "failure_kind" not in runs.columns:
        return pl.DataFrame(schema={"model": pl.String, "batch_size": pl.Int64, "runtime": pl.String,
                                    "precision": pl.String, "runs": pl.UInt32, "failed": pl.UInt32, "kinds": pl.String})
    totals = runs.group_by(keys).agg(pl.len().alias("runs"), (pl.col("status") != "ok").sum().alias("failed"))
    kinds = (runs.filter(pl.col("status") != "ok")
             .group_by([*keys, pl.col("failure_kind").cast(pl.String).fill_null("unknown")]).agg(pl.len().alias("n"))
             .sort([*keys, "failure_kind"])
             .group_by(keys, maintain_order=True)
             .agg(pl.format("{}: {}", "failure_kind", "n").str.join(", ").alias("kinds")))
    return totals.join(kinds, on=keys, how="inner").sort(keys)
