"""Per-cell statistics over repetitions: median and IQR, and the mean with a seeded 95% bootstrap interval.

The percentile bootstrap is used rather than BCa: with the 5-10 repetitions a sweep affords, BCa's acceleration
estimate is unstable and it returns nothing at all for tied data, where the percentile interval is simply the
tied value. The interval is None (with the reason) for a cell with fewer than two values: one run has no spread.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from orchestrator.analysis.bootstrap import mean_intervals
from orchestrator.analysis.frames import CELL_KEYS, METRICS, Metric, ok_runs, with_derived

CONFIDENCE = 0.95
N_RESAMPLES = 9999


@dataclass(frozen=True)
class Summary:
    n: int
    median: float | None
    q1: float | None
    q3: float | None
    iqr: float | None
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    note: str


def bootstrap_mean_ci(values: np.ndarray, seed: int, confidence: float = CONFIDENCE,
                      n_resamples: int = N_RESAMPLES) -> tuple[float, float]:
    # A fresh generator per call: a cell's interval must not depend on which cells were computed before it.
    # scipy.stats.bootstrap's resamples and interval, computed as one matrix product (analysis/bootstrap.py).
    low, high = mean_intervals(np.asarray(values, dtype=np.float64)[:, None], seed, confidence, n_resamples)[0]
    return float(low), float(high)


def _finite(values: np.ndarray | list[float]) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    return x[np.isfinite(x)]


def summarize(values: np.ndarray | list[float], seed: int = 0, missing_reason: str = "no value",
              ci: tuple[float, float] | None = None) -> Summary:
    """ci: the bootstrap interval when the caller computed it already (cell_statistics, for a cell's metrics at
    once); else it is computed here."""
    x = _finite(values)
    if x.size == 0:
        return Summary(0, None, None, None, None, None, None, None, missing_reason)
    median, mean = float(np.median(x)), float(np.mean(x))
    if x.size == 1:
        return Summary(1, median, None, None, None, mean, None, None, "one run: no spread, no interval")
    q1, q3 = (float(v) for v in np.percentile(x, [25, 75]))
    low, high = ci if ci is not None else bootstrap_mean_ci(x, seed)
    note = "all runs equal" if np.all(x == x[0]) else ""
    return Summary(int(x.size), median, q1, q3, q3 - q1, mean, low, high, note)


def _missing_reason(cell: pl.DataFrame, ok: pl.DataFrame, metric: Metric) -> str:
    if ok.is_empty():
        return "no successful run"
    if metric.energy:
        if any(status != "ok" for status in ok["energy_status"].to_list()):
            notes = sorted({n for n in ok["energy_note"].to_list() if n})
            return "energy unavailable: " + ("; ".join(notes) if notes else "not recorded")
        domain = metric.column.split("_")[0]
        if domain in ("gpu", "cpu") and ok[f"{domain}_energy_j"].drop_nulls().is_empty():
            return f"no {domain.upper()} energy sensor in these runs"
        if "dynamic" in metric.column:
            return "no idle baseline"
    return "no value"


def cell_statistics(runs: pl.DataFrame, seed: int = 0, metrics: tuple[Metric, ...] = METRICS) -> pl.DataFrame:
    """One row per cell and metric (long format), cells in sorted order, metrics in METRICS order."""
    rows = []
    runs = with_derived(runs) if not runs.is_empty() else runs
    if runs.is_empty():
        return pl.DataFrame(schema=_SCHEMA)
    for key, cell in runs.group_by(list(CELL_KEYS)):
        ok = ok_runs(cell)
        values = {m.column: _finite(ok[m.column].drop_nulls().to_numpy()) for m in metrics}
        intervals = _intervals(values, seed)
        for metric in metrics:
            s = summarize(values[metric.column], seed, _missing_reason(cell, ok, metric), intervals.get(metric.column))
            rows.append({**dict(zip(CELL_KEYS, key)), "metric": metric.column, "unit": metric.unit,
                         "runs": cell.height, "ok_runs": ok.height, "n": s.n, "median": s.median, "q1": s.q1,
                         "q3": s.q3, "iqr": s.iqr, "mean": s.mean, "ci_low": s.ci_low, "ci_high": s.ci_high,
                         "note": s.note})
    order = {m.column: i for i, m in enumerate(metrics)}
    frame = pl.DataFrame(rows, schema=_SCHEMA)
    return (frame.with_columns(pl.col("metric").replace_strict(order, return_dtype=pl.Int64).alias("_order"))
            .sort([*CELL_KEYS, "_order"]).drop("_order"))


def _intervals(values: dict[str, np.ndarray], seed: int) -> dict[str, tuple[float, float]]:
    """The bootstrap interval of every metric with two values or more: one matrix product per sample size."""
    by_size: dict[int, list[str]] = {}
    for column, x in values.items():
        if x.size > 1:
            by_size.setdefault(x.size, []).append(column)
    out: dict[str, tuple[float, float]] = {}
    for columns in by_size.values():
        bounds = mean_intervals(np.column_stack([values[c] for c in columns]), seed, CONFIDENCE, N_RESAMPLES)
        out.update({c: (float(low), float(high)) for c, (low, high) in zip(columns, bounds)})
    return out


_SCHEMA = {"model": pl.String, "batch_size": pl.Int64, "runtime": pl.String, "precision": pl.String,
           "metric": pl.String, "unit": pl.String, "runs": pl.Int64, "ok_runs": pl.Int64, "n": pl.Int64,
           "median": pl.Float64, "q1": pl.Float64, "q3": pl.Float64, "iqr": pl.Float64, "mean": pl.Float64,
           "ci_low": pl.Float64, "ci_high": pl.Float64, "note": pl.String}


def wide(cell_stats: pl.DataFrame, field: str = "median") -> pl.DataFrame:
    """One row per cell, one column per metric (its `field`): the readable table of the report."""
    if cell_stats.is_empty():
        return cell_stats
    return cell_stats.pivot(on="metric", index=list(CELL_KEYS), values=field, aggregate_function=None,
                            maintain_order=True)
