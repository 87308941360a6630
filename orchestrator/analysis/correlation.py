"""Correlation of energy per inference with time per inference (the study's rho = 0.99), all cells and per model.

One point per cell (the median over its repetitions), as the study had one point per configuration: pooling the
repetitions of a cell would count the same configuration several times and shrink the p-values without adding
configurations. Time is seconds per inference (window / samples), so cells with different budgets compare.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from orchestrator.analysis.frames import CELL_KEYS, energy_reason, ok_runs

MIN_POINTS = 3


@dataclass(frozen=True)
class Correlation:
    scope: str  # "all cells" or a model name
    energy: str  # the energy column correlated with time
    n: int
    spearman_rho: float | None
    spearman_p: float | None
    pearson_r: float | None
    pearson_p: float | None
    note: str


def correlate(energy: np.ndarray, time: np.ndarray, scope: str, energy_column: str,
              missing_reason: str = "no energy values") -> Correlation:
    x, y = np.asarray(time, dtype=np.float64), np.asarray(energy, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(x.size)
    if n == 0:
        return Correlation(scope, energy_column, 0, None, None, None, None, missing_reason)
    if n < MIN_POINTS:
        return Correlation(scope, energy_column, n, None, None, None, None, f"{n} cells: at least {MIN_POINTS} needed")
    if np.all(x == x[0]) or np.all(y == y[0]):
        return Correlation(scope, energy_column, n, None, None, None, None, "constant values: no correlation defined")
    from scipy import stats as sps  # seconds to import: only where a correlation is drawn

    s, p = sps.spearmanr(x, y), sps.pearsonr(x, y)
    return Correlation(scope, energy_column, n, float(s.statistic), float(s.pvalue), float(p.statistic),
                       float(p.pvalue), "")


def cell_points(runs: pl.DataFrame, energy_column: str = "j_per_inference") -> pl.DataFrame:
    """Per cell: median energy per inference and median seconds per inference over its successful runs."""
    ok = ok_runs(runs)
    if ok.is_empty():
        return pl.DataFrame(schema={**{k: ok.schema.get(k, pl.String) for k in CELL_KEYS},
                                    "energy": pl.Float64, "s_per_inference": pl.Float64})
    return (ok.group_by(list(CELL_KEYS), maintain_order=True)
            .agg(pl.col(energy_column).median().alias("energy"), pl.col("s_per_inference").median())
            .sort(list(CELL_KEYS)))


def energy_time_correlations(runs: pl.DataFrame,
                             energy_columns: tuple[str, ...] = ("j_per_inference", "dynamic_j_per_inference"),
                             ) -> pl.DataFrame:
    reason = "energy unavailable: " + energy_reason(runs) if not runs.is_empty() else "no runs"
    rows = []
    for column in energy_columns:
        points = cell_points(runs, column)
        why = reason
        if "dynamic" in column and not cell_points(runs, "j_per_inference")["energy"].drop_nulls().is_empty():
            why = "no idle baseline: raw energy only"
        scopes = [("all cells", points)] + [(m, points.filter(pl.col("model") == m))
                                            for m in sorted(points["model"].unique().to_list())]
        for scope, frame in scopes:
            rows.append(asdict(correlate(frame["energy"].to_numpy(), frame["s_per_inference"].to_numpy(), scope,
                                         column, why)))
    schema = {"scope": pl.String, "energy": pl.String, "n": pl.Int64, "spearman_rho": pl.Float64,
              "spearman_p": pl.Float64, "pearson_r": pl.Float64, "pearson_p": pl.Float64, "note": pl.String}
    return pl.DataFrame(rows, schema=schema)
