"""When a cell of an adaptive sweep has run enough: the stopping rules, pure functions of the values seen so far.

A look is the moment after a round: at look t every cell has its first t values (fewer where runs failed). The
rules are replayed over every look from `min_runs` to the current one, so a cell that stopped at look t stays
stopped with the decision made on its first t values, whatever it is shown later: calling `cell_states` after
every round, or once on the whole record, gives the same states (resume and merged Slurm shards included).

Both rules spend their alpha over the planned looks, `max_runs - min_runs + 1` of them: look j of L spends
alpha ((j/L)^RHO - ((j-1)/L)^RHO), more at the first looks, where clearly worse runtimes can leave (the union
bound over the looks: a wrong claim at any look has probability at most the sum of the looks' shares, the whole
alpha, however the looks are correlated). Values are compared on the log scale (energy and latency are
ratios: a cell's spread is a share of its level); where a value is zero or negative, on their own scale.

- precision: a cell stops once the t interval of its median (the geometric mean of a lognormal cell), at the
  look's share of alpha, has a relative half-width at or under `target`.
- verdict: the leader is the lowest median of the runtimes still in the group. At each look, the active others
  are compared with it by a t-test (two-sided; t_test), Holm over those comparisons at the look's share of alpha,
  the many-to-one family of analysis/best.py. A runtime significantly worse leaves the group ("separated").
  A runtime whose chance to be separated by `max_runs`, computed as if the difference and spreads seen so far
  were the truth (conditional power), is under FUTILITY stops as tied with the leader: more runs would not
  change the answer. A settled tie is the set of runtimes left when every one of them has stopped that way or at
  `max_runs`. The leader stops when no other runtime of its group is active: best when every other one was
  separated, else tied. Stopping for futility never makes a claim, so it cannot add a wrong one.
See docs/statistics.md for why, and the simulation that checks the error control (bench/adaptive_simulation.py).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from orchestrator.analysis.comparisons import holm

RHO = 0.5  # the spending function's shape: 1 spends evenly, under 1 more at the first looks
FUTILITY = 0.3  # conditional power under which a comparison is not worth more runs
FUTILITY_MIN_RUNS = 3  # two values give too rough a spread to give up on a comparison


@dataclass(frozen=True)
class StoppingRule:
    min_runs: int                          # >= 2
    max_runs: int                          # >= min_runs
    stop: Literal["precision", "verdict"]
    target: float | None = None            # precision: relative half-width of the median's interval, e.g. 0.02
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if self.min_runs < 2 or self.max_runs < self.min_runs:
            raise ValueError(f"repetitions need 2 <= min <= max, got min {self.min_runs}, max {self.max_runs}")
        if self.stop not in ("precision", "verdict"):
            raise ValueError(f"stop must be 'precision' or 'verdict', got {self.stop!r}")
        if self.stop == "precision" and (self.target is None or not 0 < self.target < 1):
            raise ValueError(f"stop 'precision' needs a target between 0 and 1 (relative half-width of the "
                             f"median's interval, e.g. 0.02), got {self.target}")
        if self.stop == "verdict" and self.target is not None:
            raise ValueError("stop 'verdict' takes no target (it is the precision rule's half-width)")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, got {self.alpha}")

    @property
    def looks(self) -> int:
        return self.max_runs - self.min_runs + 1

    def alpha_at(self, runs: int) -> float:
        """The alpha the look at `runs` values spends: alpha (j/L)^RHO - alpha ((j-1)/L)^RHO at look j of L."""
        j = min(max(runs - self.min_runs + 1, 1), self.looks)
        return self.alpha * ((j / self.looks) ** RHO - ((j - 1) / self.looks) ** RHO)


@dataclass(frozen=True)
class CellState:
    active: bool
    runs: int                              # values seen
    stopped_by: Literal["precision", "verdict", "max"] | None   # None while active
    why: str                               # one short sentence for tables/report


@dataclass(frozen=True)
class GroupVerdict:
    """What the verdict rule concluded for a group once none of its cells is active."""
    verdict: Literal["best", "tie", "open"]   # open: some cell still active
    leader: str | None
    tied: tuple[str, ...]                     # the runtimes not separated from the leader, leader excluded


def _scaled(values: Sequence[float]) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    return x[np.isfinite(x)]


def _on_scale(*samples: np.ndarray) -> list[np.ndarray]:
    return [np.log(s) for s in samples] if all(np.all(s > 0) for s in samples) else list(samples)


def median_halfwidth(values: Sequence[float], alpha: float) -> float:
    """Relative half-width of the (1 - alpha) t interval of a cell's median: on the log scale the interval of the
    mean of the logs, whose exponential is the median of a lognormal cell; inf with fewer than two values."""
    from scipy import special

    x = _scaled(values)
    if x.size < 2:
        return math.inf
    (y,) = _on_scale(x)
    half = special.stdtrit(y.size - 1, 1 - alpha / 2) * y.std(ddof=1) / math.sqrt(y.size)
    if y is not x:
        return float(math.expm1(half))
    centre = abs(float(np.mean(x)))
    return float(half / centre) if centre > 0 else math.inf


def t_test(lead: np.ndarray, other: np.ndarray) -> tuple[float, float, float, float]:
    """(two-sided p, difference other - lead, its standard error, df) of the t-test of the two samples: Student's
    (pooled) where they have as many values, as the leader and an active runtime do in lockstep rounds (then the
    statistic is Welch's, with the exact df under equal spreads), Welch's where the sizes differ."""
    from scipy import special

    a, b = _on_scale(lead, other)
    va, vb = a.var(ddof=1), b.var(ddof=1)
    diff = float(b.mean() - a.mean())
    if a.size == b.size:
        se, df = math.sqrt((va + vb) / a.size), 2.0 * a.size - 2
    else:
        va, vb = va / a.size, vb / b.size
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if va and vb else a.size + b.size - 2
    if se == 0:
        return (0.0 if diff else 1.0), diff, 0.0, math.inf
    return float(2 * special.stdtr(df, -abs(diff) / se)), diff, se, float(df)


def conditional_power(lead: np.ndarray, other: np.ndarray, max_runs: int, alpha: float) -> float:
    """The chance that the comparison is significant at max_runs values each (two-sided, level alpha) if the
    difference and spreads seen so far were the truth: the usual B-value projection, normal approximation."""
    from scipy import special

    _p, diff, se, _df = t_test(lead, other)
    if se == 0:
        return 1.0 if diff else 0.0
    a, b = _on_scale(lead, other)
    se_max = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / max_runs)
    fraction = min(1.0, (se_max / se) ** 2)  # information now over information at max_runs
    if fraction >= 1.0:
        return 0.0
    z_crit = special.ndtri(1 - alpha / 2)
    return float(special.ndtr((abs(diff) / se_max - z_crit) / math.sqrt(1 - fraction)))


def _precision_cell(rule: StoppingRule, values: Sequence[float]) -> CellState:
    n = len(values)
    for t in range(rule.min_runs, min(n, rule.max_runs) + 1):
        half = median_halfwidth(values[:t], rule.alpha_at(t))
        if half <= rule.target:
            return CellState(False, n, "precision",
                             f"median known to ±{half:.1%} after {t} runs (target ±{rule.target:.1%})")
        if t == rule.max_runs:
            return CellState(False, n, "max", f"max {rule.max_runs} runs; median known to ±{half:.1%} "
                                              f"(target ±{rule.target:.1%})")
    if n < rule.min_runs:
        return CellState(True, n, None, f"{n} of at least {rule.min_runs} runs")
    return CellState(True, n, None, f"median known to ±{half:.1%}, target ±{rule.target:.1%}")


@dataclass
class _Cell:
    values: list[float]
    stop_at: int | None = None   # values it had when it stopped
    stopped_by: str | None = None
    why: str = ""
    separated: bool = False

    def seen(self, look: int) -> np.ndarray:
        return _scaled(self.values[: min(look, self.stop_at or look)])


def _median(x: np.ndarray) -> float:
    return float(np.median(x))


def _look(rule: StoppingRule, cells: dict[str, _Cell], t: int) -> None:
    """One look of the verdict rule at its share of alpha: separations, futile comparisons, max, the leader."""
    level = rule.alpha_at(t)
    group = {name: c for name, c in cells.items() if not c.separated}
    ready = {name: c.seen(t) for name, c in group.items() if c.seen(t).size >= rule.min_runs}
    if not ready:
        return
    leader = min(ready, key=lambda name: (_median(ready[name]), name))
    active = [name for name in ready if name != leader and cells[name].stop_at is None]
    tests = {name: t_test(ready[leader], ready[name]) for name in active}
    adjusted = dict(zip(active, holm([tests[name][0] for name in active])))
    for name in active:
        cell, x, p = cells[name], ready[name], adjusted[name]
        if p < level and tests[name][1] > 0:
            cell.stop_at, cell.stopped_by, cell.separated = x.size, "verdict", True
            cell.why = f"separated: worse than {leader} (t-test, Holm p {p:.2g} < {level:.2g}) after {x.size} runs"
        elif (min(x.size, ready[leader].size) >= FUTILITY_MIN_RUNS
              and conditional_power(ready[leader], x, rule.max_runs, rule.alpha_at(rule.max_runs)) < FUTILITY):
            cell.stop_at, cell.stopped_by = x.size, "verdict"
            cell.why = f"tied with {leader}: under {FUTILITY:.0%} chance to be separated by {rule.max_runs} runs"
        elif x.size >= rule.max_runs:
            cell.stop_at, cell.stopped_by = x.size, "max"
            cell.why = f"tied with {leader}: not separated after max {rule.max_runs} runs"
    lead = cells[leader]
    others_open = any(c.stop_at is None for name, c in group.items() if name != leader)
    if lead.stop_at is None and not others_open and len(ready) == len(group):
        tied = [name for name in group if name != leader]
        n = ready[leader].size
        lead.stop_at, lead.stopped_by = n, ("max" if n >= rule.max_runs else "verdict")
        lead.why = (f"tied for lowest with {', '.join(sorted(tied))}" if tied else
                    "best: every other runtime separated" if len(cells) > 1 else "the only runtime of its group")


def _verdict_group(rule: StoppingRule, values: Mapping[str, Sequence[float]]) -> dict[str, _Cell]:
    cells = {name: _Cell(list(v)) for name, v in sorted(values.items())}
    longest = max((len(c.values) for c in cells.values()), default=0)
    for t in range(rule.min_runs, min(longest, rule.max_runs) + 1):
        _look(rule, cells, t)
    return cells


def _state(rule: StoppingRule, cell: _Cell, leading: bool) -> CellState:
    n = len(cell.values)
    if cell.stop_at is not None:
        return CellState(False, n, cell.stopped_by, cell.why)  # type: ignore[arg-type]
    if n >= rule.max_runs:  # a cell that lagged behind its group (failed runs) and has caught up with max
        return CellState(False, n, "max", f"max {rule.max_runs} runs")
    if n < rule.min_runs:
        return CellState(True, n, None, f"{n} of at least {rule.min_runs} runs")
    return CellState(True, n, None, "leading; the others not yet settled" if leading else
                     "not yet separated from the leader")


def _leader(rule: StoppingRule, cells: dict[str, _Cell]) -> str | None:
    group = {name: c.seen(rule.max_runs) for name, c in cells.items() if not c.separated}
    group = {name: x for name, x in group.items() if x.size}
    return min(group, key=lambda name: (_median(group[name]), name)) if group else None


def verdict_states(rule: StoppingRule, values: Mapping[str, Sequence[float]]) -> dict[str, CellState]:
    cells = _verdict_group(rule, values)
    leader = _leader(rule, cells)
    return {name: _state(rule, c, name == leader) for name, c in cells.items()}


def runs_used(rule: StoppingRule, values: Mapping[str, Sequence[float]]) -> dict[str, int]:
    """How many of each cell's values (run order) the verdict rule lets it have: the count when it stopped, else all
    of them. Given every run a fixed design would make, this is what the sweep loop, asking after every round,
    would have run (the rule at a look sees only the first values of each cell; tests/host/analysis)."""
    return {name: c.stop_at or len(c.values) for name, c in _verdict_group(rule, values).items()}


def group_verdict(rule: StoppingRule, values: Mapping[str, Sequence[float]]) -> GroupVerdict:
    """The verdict rule's answer for one group: best (every other runtime separated from the leader), a tie
    among those not separated, or open while a cell is active."""
    cells = _verdict_group(rule, values)
    if not cells or any(_state(rule, c, False).active for c in cells.values()):
        return GroupVerdict("open", None, ())
    leader = _leader(rule, cells)
    group = [name for name, c in cells.items() if not c.separated]
    tied = tuple(sorted(name for name in group if name != leader))
    return GroupVerdict("tie" if tied else "best", leader, tied)


def cell_states(rule: StoppingRule, groups: Mapping[str, Mapping[str, Sequence[float]]]) -> dict[str, CellState]:
    """groups: group key ("model|bs|precision") -> cell key -> the cell's per-run values in run order (lower is
    better: energy per inference, or latency where no energy). Called after every round; pure and deterministic."""
    states: dict[str, CellState] = {}
    for _group, cells in sorted(groups.items()):
        if rule.stop == "precision":
            states.update({name: _precision_cell(rule, v) for name, v in sorted(cells.items())})
        else:
            states.update(verdict_states(rule, cells))
    return states
