"""When a cell of an adaptive sweep has run enough: the stopping rules, pure functions of the values seen so far.

First version: the interface the sweep loop is wired to; the statistics are described in docs/statistics.md.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from orchestrator.analysis.comparisons import holm


@dataclass(frozen=True)
class StoppingRule:
    min_runs: int                          # >= 2
    max_runs: int                          # >= min_runs
    stop: Literal["precision", "verdict"]
    target: float | None = None            # precision: relative half-width of the median's interval, e.g. 0.02
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if self.min_runs < 2 or self.max_runs < self.min_runs:
            raise ValueError(f"need 2 <= min_runs <= max_runs, got min {self.min_runs}, max {self.max_runs}")
        if self.stop not in ("precision", "verdict"):
            raise ValueError(f"stop must be 'precision' or 'verdict', got {self.stop!r}")
        if self.stop == "precision" and (self.target is None or self.target <= 0):
            raise ValueError("the precision rule needs a target > 0 (relative half-width, e.g. 0.02)")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, got {self.alpha}")

    @property
    def looks(self) -> int:
        return self.max_runs - self.min_runs + 1


@dataclass(frozen=True)
class CellState:
    active: bool
    runs: int                              # values seen
    stopped_by: Literal["precision", "verdict", "max"] | None   # None while active
    why: str                               # one short sentence for tables/report


def look_alpha(rule: StoppingRule) -> float:
    """The alpha spent at each look: an even share of the whole over the planned looks (Bonferroni over looks)."""
    return rule.alpha / rule.looks


def _logs(values: Sequence[float]) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    return np.log(x[np.isfinite(x) & (x > 0)])


def median_halfwidth(values: Sequence[float], alpha: float) -> float:
    """Relative half-width of the t interval of the median on the log scale (a lognormal cell's median)."""
    from scipy import stats as sps

    y = _logs(values)
    if y.size < 2:
        return math.inf
    half = sps.t.ppf(1 - alpha / 2, y.size - 1) * y.std(ddof=1) / math.sqrt(y.size)
    return float(math.expm1(half))


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Welch t-test of equal medians on the log scale."""
    from scipy import stats as sps

    ya, yb = _logs(a), _logs(b)
    if ya.size < 2 or yb.size < 2:
        return 1.0
    if ya.var() == 0 and yb.var() == 0:
        return 0.0 if ya.mean() != yb.mean() else 1.0
    return float(sps.ttest_ind(ya, yb, equal_var=False).pvalue)


def _precision(rule: StoppingRule, cells: Mapping[str, Sequence[float]]) -> dict[str, CellState]:
    out = {}
    for cell, values in cells.items():
        n = len(values)
        if n < rule.min_runs:
            out[cell] = CellState(True, n, None, f"{n} of at least {rule.min_runs} runs")
        elif n >= rule.max_runs:
            out[cell] = CellState(False, n, "max", f"reached max {rule.max_runs} runs")
        else:
            half = median_halfwidth(values, look_alpha(rule))
            if half <= rule.target:
                out[cell] = CellState(False, n, "precision", f"median known to ±{half:.1%} (target ±{rule.target:.1%})")
            else:
                out[cell] = CellState(True, n, None, f"median known to ±{half:.1%}, target ±{rule.target:.1%}")
    return out


def _verdict(rule: StoppingRule, cells: Mapping[str, Sequence[float]]) -> dict[str, CellState]:
    out: dict[str, CellState] = {}
    remaining = dict(cells)
    short = [c for c, v in cells.items() if len(v) < rule.min_runs]
    for c in short:
        out[c] = CellState(True, len(cells[c]), None, f"{len(cells[c])} of at least {rule.min_runs} runs")
    ready = {c: v for c, v in remaining.items() if c not in out}
    if not ready:
        return out
    leader = min(ready, key=lambda c: (float(np.median(ready[c])), c))
    others = [c for c in ready if c != leader]
    adjusted = holm([welch_p(ready[leader], ready[c]) for c in others])
    level = look_alpha(rule)
    for c, p in zip(others, adjusted):
        n = len(ready[c])
        if p is not None and p < level:
            out[c] = CellState(False, n, "verdict", f"worse than {leader} (p {p:.2g} < {level:.2g})")
        elif n >= rule.max_runs:
            out[c] = CellState(False, n, "max", f"reached max {rule.max_runs} runs")
        else:
            out[c] = CellState(True, n, None, f"not yet separated from {leader}")
    n = len(ready[leader])
    if not short and all(not out[c].active for c in others):
        out[leader] = CellState(False, n, "verdict" if n < rule.max_runs else "max", "leader")
    else:
        out[leader] = CellState(n < rule.max_runs, n, None if n < rule.max_runs else "max", "leader")
    return out


def cell_states(rule: StoppingRule, groups: Mapping[str, Mapping[str, Sequence[float]]]) -> dict[str, CellState]:
    """groups: group key ("model|bs|precision") -> cell key -> the cell's per-run values in run order (lower is
    better: energy per inference, or latency where no energy). Called after every round; pure and deterministic."""
    states: dict[str, CellState] = {}
    for _group, cells in sorted(groups.items()):
        states.update(_precision(rule, cells) if rule.stop == "precision" else _verdict(rule, cells))
    return states
