"""Two sweeps side by side (two hosts, two driver versions): per cell, medians, their ratio and a test.

Sample unit: the run, as everywhere. Each metric's cell-by-cell tests form one family, Holm-adjusted together.
The ratio is B / A: below 1, sweep B is lower (faster, or less energy per inference).
"""
from __future__ import annotations

import numpy as np
import polars as pl

from orchestrator.analysis.comparisons import ALPHA, MIN_RUNS, holm, mann_whitney
from orchestrator.analysis.frames import CELL_KEYS, ok_runs

COMPARED = {"latency": "latency_p50_ms", "energy": "j_per_inference"}


def _values(frame: pl.DataFrame, column: str) -> np.ndarray:
    x = frame[column].drop_nulls().to_numpy().astype(np.float64)
    return x[np.isfinite(x)]


def compare_sweeps(runs_a: pl.DataFrame, runs_b: pl.DataFrame, alpha: float = ALPHA) -> pl.DataFrame:
    a, b = ok_runs(runs_a), ok_runs(runs_b)
    cells = sorted({tuple(r) for r in a.select(CELL_KEYS).rows()} | {tuple(r) for r in b.select(CELL_KEYS).rows()},
                   key=lambda c: tuple(str(v) for v in c))
    rows = []
    for cell in cells:
        where = [pl.col(k) == v for k, v in zip(CELL_KEYS, cell)]
        fa, fb = a.filter(*where), b.filter(*where)
        row = {**dict(zip(CELL_KEYS, cell)), "runs_a": fa.height, "runs_b": fb.height}
        for name, column in COMPARED.items():
            xa, xb = _values(fa, column), _values(fb, column)
            ma = float(np.median(xa)) if xa.size else None
            mb = float(np.median(xb)) if xb.size else None
            p = None
            if xa.size >= MIN_RUNS and xb.size >= MIN_RUNS:
                p = mann_whitney(xa, xb)[1]
            if not xa.size or not xb.size:
                sides = " and ".join(side for side, x in (("A", xa), ("B", xb)) if not x.size)
                note = f"no value in {sides}" + (" (energy unavailable)" if name == "energy" else "")
            elif p is None:
                note = f"not tested: fewer than {MIN_RUNS} runs on a side"
            else:
                note = ""
            row |= {f"{name}_a": ma, f"{name}_b": mb,
                    f"{name}_ratio": mb / ma if ma and mb is not None else None,
                    f"{name}_p": p, f"{name}_note": note}
        rows.append(row)
    schema = {**{"model": pl.String, "batch_size": pl.Int64, "runtime": pl.String, "precision": pl.String},
              "runs_a": pl.Int64, "runs_b": pl.Int64}
    for name in COMPARED:
        schema |= {f"{name}_a": pl.Float64, f"{name}_b": pl.Float64, f"{name}_ratio": pl.Float64,
                   f"{name}_p": pl.Float64, f"{name}_note": pl.String}
    frame = pl.DataFrame(rows, schema=schema)
    for name in COMPARED:
        adjusted = holm(frame[f"{name}_p"].to_list())
        frame = frame.with_columns(
            pl.Series(f"{name}_p_holm", adjusted, dtype=pl.Float64),
            pl.Series(f"{name}_significant", [None if p is None else p < alpha for p in adjusted], dtype=pl.Boolean))
    ordered = [*CELL_KEYS, "runs_a", "runs_b"]
    for name in COMPARED:
        ordered += [f"{name}_{s}" for s in ("a", "b", "ratio", "p", "p_holm", "significant", "note")]
    return frame.select(ordered)
