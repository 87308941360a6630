"""Runtimes compared within each model and batch size: Kruskal-Wallis across all, Mann-Whitney U per pair.

Sample unit: the run. A runtime's sample in a group is one value per successful repetition (its p50 latency, its
energy per inference). Tests are two-sided. The pairwise p-values of one family (a model, batch size, precision
and metric) are Holm-adjusted together. Cliff's delta is the effect size: P(a > b) - P(a < b) over all pairs of
runs, so for lower-is-better metrics a negative delta means runtime a tends to be better.

A runtime with fewer than MIN_RUNS values is not tested (None, with the reason): one run has no variability to
test against. Note that with the exact test, 3 runs per side can never reach p < 0.05 (the smallest two-sided p
is 0.1); 4 per side can (0.029).
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from orchestrator.analysis.frames import GROUP_KEYS, ok_runs

MIN_RUNS = 2
ALPHA = 0.05
OBJECTIVES = {"latency": "latency_p50_ms", "energy": "j_per_inference"}


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1); None entries are left out of the family."""
    present = [(p, i) for i, p in enumerate(pvalues) if p is not None]
    m = len(present)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(present)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def cliffs_delta(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = a[:, None] - b[None, :]
    return float((np.sign(diff)).sum() / diff.size)


def delta_magnitude(delta: float) -> str:
    """Romano et al. (2006) thresholds, the customary reading of Cliff's delta."""
    d = abs(delta)
    return "negligible" if d < 0.147 else "small" if d < 0.33 else "medium" if d < 0.474 else "large"


@dataclass(frozen=True)
class PairTest:
    runtime_a: str
    runtime_b: str
    n_a: int
    n_b: int
    median_a: float | None
    median_b: float | None
    u_statistic: float | None
    p_value: float | None
    p_holm: float | None
    cliffs_delta: float | None
    magnitude: str | None
    significant: bool | None  # None: not tested
    note: str


def mann_whitney(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    from scipy import stats as sps  # seconds to import: only when runtimes are compared, not at every CLI start

    result = sps.mannwhitneyu(a, b, alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def _samples(group: pl.DataFrame, column: str) -> dict[str, np.ndarray]:
    out = {}
    for runtime in sorted(group["runtime"].unique().to_list()):
        values = group.filter(pl.col("runtime") == runtime)[column].drop_nulls().to_numpy().astype(np.float64)
        out[runtime] = values[np.isfinite(values)]
    return out


def _median(x: np.ndarray) -> float | None:
    return float(np.median(x)) if x.size else None


def pairwise(samples: dict[str, np.ndarray], alpha: float = ALPHA) -> list[PairTest]:
    pairs = list(itertools.combinations(sorted(samples), 2))
    raw: list[tuple[float, float] | None] = []
    notes = []
    for a, b in pairs:
        xa, xb = samples[a], samples[b]
        short = [f"{r} has {samples[r].size} run{'s' if samples[r].size != 1 else ''}" for r in (a, b)
                 if samples[r].size < MIN_RUNS]
        raw.append(None if short else mann_whitney(xa, xb))
        notes.append(f"not tested: {', '.join(short)} (at least {MIN_RUNS} needed)" if short else "")
    adjusted = holm([r[1] if r else None for r in raw])
    tests = []
    for (a, b), r, p_adj, note in zip(pairs, raw, adjusted, notes):
        xa, xb = samples[a], samples[b]
        delta = cliffs_delta(xa, xb) if r else None
        tests.append(PairTest(a, b, int(xa.size), int(xb.size), _median(xa), _median(xb),
                              r[0] if r else None, r[1] if r else None, p_adj, delta,
                              delta_magnitude(delta) if delta is not None else None,
                              (p_adj < alpha) if p_adj is not None else None, note))
    return tests


@dataclass(frozen=True)
class GroupTest:
    runtimes: int
    h_statistic: float | None
    p_value: float | None
    note: str


def kruskal_wallis(samples: dict[str, np.ndarray]) -> GroupTest:
    usable = {r: x for r, x in samples.items() if x.size >= MIN_RUNS}
    if len(usable) < 2:
        return GroupTest(len(usable), None, None,
                         f"{len(usable)} runtime(s) with at least {MIN_RUNS} runs: at least 2 needed")
    values = np.concatenate(list(usable.values()))
    if np.all(values == values[0]):
        return GroupTest(len(usable), None, None, "all values identical: no test")
    from scipy import stats as sps

    result = sps.kruskal(*usable.values())
    skipped = sorted(set(samples) - set(usable))
    return GroupTest(len(usable), float(result.statistic), float(result.pvalue),
                     f"left out (fewer than {MIN_RUNS} runs): {', '.join(skipped)}" if skipped else "")


def _groups(runs: pl.DataFrame):
    # A sweep whose every cell was skipped has an empty runs table without a single column: nothing to compare.
    if runs.is_empty() or any(key not in runs.columns for key in (*GROUP_KEYS, "runtime")):
        return
    ok = ok_runs(runs)
    for key, group in sorted(ok.group_by(list(GROUP_KEYS)), key=lambda kg: tuple(str(k) for k in kg[0])):
        yield dict(zip(GROUP_KEYS, key)), group


def compare_runtimes(runs: pl.DataFrame, objectives: dict[str, str] = OBJECTIVES,
                     alpha: float = ALPHA) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(pairwise table, Kruskal-Wallis table), one family per model, batch size, precision and objective."""
    pair_rows, group_rows = [], []
    for key, group in _groups(runs):
        for objective, column in objectives.items():
            samples = _samples(group, column)
            if not any(x.size for x in samples.values()):
                continue  # nothing measured for this objective here (energy on a host without sensors)
            for test in pairwise(samples, alpha):
                pair_rows.append({**key, "objective": objective, "metric": column, **asdict(test)})
            group_rows.append({**key, "objective": objective, "metric": column, **asdict(kruskal_wallis(samples))})
    return (pl.DataFrame(pair_rows, schema=_PAIR_SCHEMA), pl.DataFrame(group_rows, schema=_GROUP_SCHEMA))


_KEY_SCHEMA = {"model": pl.String, "batch_size": pl.Int64, "precision": pl.String, "objective": pl.String,
               "metric": pl.String}
_PAIR_SCHEMA = {**_KEY_SCHEMA, "runtime_a": pl.String, "runtime_b": pl.String, "n_a": pl.Int64, "n_b": pl.Int64,
                "median_a": pl.Float64, "median_b": pl.Float64, "u_statistic": pl.Float64, "p_value": pl.Float64,
                "p_holm": pl.Float64, "cliffs_delta": pl.Float64, "magnitude": pl.String,
                "significant": pl.Boolean, "note": pl.String}
_GROUP_SCHEMA = {**_KEY_SCHEMA, "runtimes": pl.Int64, "h_statistic": pl.Float64, "p_value": pl.Float64,
                 "note": pl.String}
