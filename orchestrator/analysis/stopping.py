"""When a cell of an adaptive sweep has run enough: the stopping rules, pure functions of the values seen so far.

A look is the moment after a round: at look t every cell has its first t values (fewer where runs failed). The
rules are replayed over every look from `min_runs` to the current one, so a cell that stopped at look t stays
stopped with the decision made on its first t values, whatever it is shown later: calling `cell_states` after
every round, or once on the whole record, gives the same states (resume and merged Slurm shards included).

Both rules spend their alpha over the planned looks, `max_runs - min_runs + 1` of them: by look j of L at most
alpha (j/L)^RHO is spent (RHO 0.5: nearly even nominal levels, more at the first looks than even shares), and
each look's nominal level is the one at which a normal random walk, as the statistic of cumulative runs is,
crosses for the first time with that share (nominal_levels): the levels hold together over every look, as a
group-sequential design's do. Values are compared on the log scale (energy
and latency are ratios: a cell's spread is a share of its level); where a value is zero or negative, on their own
scale, for the whole group.

- precision: a cell stops once the t interval of its median (the geometric mean of a lognormal cell), at the
  look's nominal level, has a relative half-width at or under `target`.
- verdict: the leader is the lowest median of the runtimes still measuring. At each look, the active others
  are compared with it by Welch's t-test (two-sided; t_test), Holm over those comparisons at the look's nominal level,
  the many-to-one family of analysis/best.py. A runtime significantly worse leaves the group ("separated").
  A runtime whose chance to be separated by `max_runs`, computed as if the difference and spreads seen so far
  were the truth (conditional power), is under FUTILITY stops as tied with the leader: more runs would not
  change the answer. A settled tie is the set of runtimes left when every one of them has stopped that way or at
  `max_runs`; it stays in the group (never the leader compared with, whatever its median later), so the answer is
  then a tie. The leader stops when no other runtime of its group is active: best when every other one was
  separated, else tied. Stopping for futility never makes a claim, so it cannot add a wrong one.
See docs/statistics.md for why, and the simulation that checks the error control (bench/adaptive_simulation.py).
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from orchestrator.analysis.comparisons import holm

# The design's constants, chosen on the simulation of bench/adaptive_simulation.py (docs/statistics.md has the
# trade-off table): the spending function's shape (1 spends evenly; 0.5 gives nearly even nominal levels, the
# Pocock shape: more at the first looks, where the large gaps separate), the conditional power under which a
# comparison is not worth more runs, and the runs from which that is judged (two values give too rough a spread)
RHO = 0.5
FUTILITY = 0.6
FUTILITY_MIN_RUNS = 3


@lru_cache(maxsize=32)
def nominal_levels(min_runs: int, max_runs: int, alpha: float, rho: float) -> tuple[float, ...]:
    """The two-sided nominal level of each look, min_runs to max_runs values, such that a statistic following the
    normal model's path over the looks (independent increments, as a t statistic of cumulative runs does) crosses
    some look's level with probability alpha in all, alpha (j/L)^rho by look j of L: the Lan-DeMets spending
    function of the power family, its levels found on 100,000 seeded simulated paths (the same every time)."""
    from scipy import special

    looks = max_runs - min_runs + 1
    paths = np.random.default_rng(20231).standard_normal((100_000, max_runs)).cumsum(axis=1)
    z = np.abs(paths[:, min_runs - 1:] / np.sqrt(np.arange(min_runs, max_runs + 1)))
    alive = np.ones(z.shape[0], dtype=bool)
    levels = []
    for j in range(looks):
        spend = alpha * (((j + 1) / looks) ** rho - (j / looks) ** rho) * z.shape[0]  # paths to cross here
        column = z[alive, j]
        crit = float(np.quantile(column, 1 - min(1.0, spend / column.size))) if column.size else math.inf
        alive &= z[:, j] < crit
        levels.append(float(2 * special.ndtr(-crit)))
    return tuple(levels)


@dataclass(frozen=True)
class StoppingRule:
    min_runs: int                          # >= 2
    max_runs: int                          # >= min_runs
    stop: Literal["precision", "verdict"]
    target: float | None = None            # precision: relative half-width of the median's interval, e.g. 0.02
    alpha: float = 0.05
    # the design's constants (a config sets none of them; the simulation compares other choices)
    rho: float = RHO
    futility: float = FUTILITY
    futility_min_runs: int = FUTILITY_MIN_RUNS

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
        if self.rho <= 0 or not 0 <= self.futility < 1 or self.futility_min_runs < 2:
            raise ValueError(f"the spending exponent must be above 0 (got {self.rho}), the futility threshold "
                             f"from 0 to under 1 (got {self.futility}), futility from 2 runs on "
                             f"(got {self.futility_min_runs})")

    @property
    def looks(self) -> int:
        return self.max_runs - self.min_runs + 1

    def alpha_at(self, runs: int) -> float:
        """The nominal level of the look at `runs` values (see nominal_levels)."""
        j = min(max(runs - self.min_runs, 0), self.looks - 1)
        return nominal_levels(self.min_runs, self.max_runs, self.alpha, self.rho)[j]


@dataclass(frozen=True)
class CellState:
    active: bool
    runs: int                              # values seen
    stopped_by: Literal["precision", "verdict", "max"] | None   # None while active
    why: str                               # one short sentence for tables/report
    # the verdict rule's decision at the look that stopped the cell (1 to rule.looks): the Holm-adjusted p of its
    # comparison with the leader and that look's nominal level (None for the leader, which was compared with none)
    look: int | None = None
    p_holm: float | None = None
    level: float | None = None


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


@dataclass(frozen=True)
class _Sample:
    """A cell's first values on the compared scale, as the tests use them, and its median on its own scale."""
    n: int
    mean: float
    var: float   # ddof 1
    median: float


def _sample(raw: np.ndarray, scaled: np.ndarray) -> _Sample:
    return _Sample(int(scaled.size), float(scaled.mean()), float(scaled.var(ddof=1)) if scaled.size > 1 else 0.0,
                   float(np.median(raw)))


def _t(a: _Sample, b: _Sample) -> tuple[float, float, float]:
    """(two-sided p, difference b - a, its standard error): Welch's test, its degrees of freedom Satterthwaite's.
    Not Student's pooled df (2n - 2) even where the counts are equal: runtimes' spreads differ by up to 100 times,
    and with 2 or 3 runs a side the pooled df overstates what the two variance estimates know (2 where the noisier
    side alone gives 1), which made wrong "best" verdicts more frequent than the fixed design's (docs/statistics.md)."""
    from scipy import special

    diff = b.mean - a.mean
    va, vb = a.var / a.n, b.var / b.n
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1)) if va and vb else a.n + b.n - 2.0
    if se == 0:
        return (0.0 if diff else 1.0), diff, 0.0
    return float(2 * special.stdtr(df, -abs(diff) / se)), diff, se


def t_test(lead: Sequence[float], other: Sequence[float]) -> float:
    """Two-sided p of Welch's t-test of two cells' values, on the log scale where all are positive (_t)."""
    x, y = _scaled(lead), _scaled(other)
    sx, sy = _on_scale(x, y)
    return _t(_sample(x, sx), _sample(y, sy))[0]


def _conditional_power(a: _Sample, b: _Sample, diff: float, se: float, max_runs: int, alpha: float) -> float:
    """The chance that the comparison is significant at max_runs values each (two-sided, level alpha) if the
    difference and spreads seen so far were the truth: the usual B-value projection, normal approximation."""
    from scipy import special

    if se == 0:
        return 1.0 if diff else 0.0
    se_max = math.sqrt((a.var + b.var) / max_runs)
    fraction = (se_max / se) ** 2  # information now over information at max_runs
    if fraction >= 1.0:
        return 0.0
    z_crit = special.ndtri(1 - alpha / 2)
    return float(special.ndtr((abs(diff) / se_max - z_crit) / math.sqrt(1 - fraction)))


def _precision_cell(rule: StoppingRule, values: Sequence[float]) -> tuple[CellState, int | None]:
    """The cell's state and the number of values it had when it stopped (None while active)."""
    n, half = len(values), math.inf
    for t in range(rule.min_runs, min(n, rule.max_runs) + 1):
        half = median_halfwidth(values[:t], rule.alpha_at(t))
        if half <= rule.target:
            return CellState(False, n, "precision",
                             f"median known to ±{half:.1%} after {t} runs (target ±{rule.target:.1%})"), t
        if t == rule.max_runs:
            return CellState(False, n, "max", f"max {rule.max_runs} runs; median known to ±{half:.1%} "
                                              f"(target ±{rule.target:.1%})"), t
    if n < rule.min_runs:
        return CellState(True, n, None, f"{n} of at least {rule.min_runs} runs"), None
    return CellState(True, n, None, f"median known to ±{half:.1%}, target ±{rule.target:.1%}"), None


@dataclass
class _Cell:
    values: list[float]
    prefixes: list[_Sample | None]  # per number of runs seen, 0 to all: the sample of its finite values
    stop_at: int | None = None   # values it had when it stopped
    stopped_by: str | None = None
    why: str = ""
    separated: bool = False
    look: int | None = None
    p_holm: float | None = None
    level: float | None = None

    def stop(self, runs: int, by: str, why: str, look: int, p_holm: float | None = None,
             level: float | None = None, separated: bool = False) -> None:
        self.stop_at, self.stopped_by, self.why, self.separated = runs, by, why, separated
        self.look, self.p_holm, self.level = look, p_holm, level

    def seen(self, look: int) -> _Sample | None:
        """The sample of the first `look` runs, or of those it had when it stopped."""
        return self.prefixes[min(look, self.stop_at or look, len(self.values))]


def _cell(values: Sequence[float], scaled: np.ndarray) -> _Cell:
    # Welford's running mean and variance in plain floats: a replay asks for every prefix of every cell, and
    # numpy's per-call cost on ten values is most of a simulation's time
    prefixes: list[_Sample | None] = [None]
    raw: list[float] = []
    count, mean, m2 = 0, 0.0, 0.0
    for x, y in zip(values, scaled.tolist()):
        if math.isfinite(y):
            raw.append(float(x))
            count += 1
            delta = y - mean
            mean += delta / count
            m2 += delta * (y - mean)
        prefixes.append(_Sample(count, mean, m2 / (count - 1) if count > 1 else 0.0, statistics.median(raw))
                        if count else None)
    return _Cell(list(values), prefixes)


def _look(rule: StoppingRule, cells: dict[str, _Cell], t: int) -> None:
    """One look of the verdict rule at its nominal level: separations, futile comparisons, max, the leader.

    The leader, the runtime every comparison is made with, is the lowest median among the runtimes still measuring.
    A runtime stopped as tied keeps its first runs only: it may have the lowest median later, when the others' later
    runs come in, but it is never the one compared with. Its runs are of earlier rounds than the others' (a host's
    drift would not cancel), and it cannot gain runs: a test against it would rest on its few frozen values, and
    could separate the very runtime it was found tied with. It stays in the group, so the answer is a tie."""
    level, last_level = rule.alpha_at(t), rule.alpha_at(rule.max_runs)
    group = {name: c for name, c in cells.items() if not c.separated}
    ready = {name: seen for name, seen in ((name, c.seen(t)) for name, c in group.items())
             if seen is not None and seen.n >= rule.min_runs}
    measuring = [name for name in ready if cells[name].stop_at is None]
    if not measuring:
        return
    leader = min(measuring, key=lambda name: (ready[name].median, name))
    lead = ready[leader]
    active = [name for name in measuring if name != leader]
    tests = {name: _t(lead, ready[name]) for name in active}
    adjusted = dict(zip(active, holm([tests[name][0] for name in active])))
    look = t - rule.min_runs + 1
    for name in active:
        cell, y, p = cells[name], ready[name], adjusted[name]
        _p, diff, se = tests[name]
        if p < level and diff > 0:
            cell.stop(y.n, "verdict", f"separated: worse than {leader} (t-test, Holm p {p:.2g} < {level:.2g}) after "
                                      f"{y.n} runs", look, p, level, separated=True)
        elif (min(y.n, lead.n) >= rule.futility_min_runs
              and _conditional_power(lead, y, diff, se, rule.max_runs, last_level) < rule.futility):
            cell.stop(y.n, "verdict", f"tied with {leader}: under {rule.futility:.0%} chance to be separated by "
                                      f"{rule.max_runs} runs (Holm p {p:.2g} after {y.n} runs)", look, p, level)
        elif y.n >= rule.max_runs:
            cell.stop(y.n, "max", f"tied with {leader}: not separated after max {rule.max_runs} runs (Holm p {p:.2g} "
                                  f"≥ {level:.2g})", look, p, level)
    others_open = any(c.stop_at is None for name, c in group.items() if name != leader)
    if not others_open and len(ready) == len(group):
        tied = [name for name in group if name != leader and not cells[name].separated]  # this look's included
        n = lead.n
        why = (f"tied for lowest with {', '.join(sorted(tied))}" if tied else
               "best: every other runtime separated" if len(cells) > 1 else "the only runtime of its group")
        cells[leader].stop(n, "max" if n >= rule.max_runs else "verdict", why, look)


def _verdict_group(rule: StoppingRule, values: Mapping[str, Sequence[float]]) -> dict[str, _Cell]:
    raw = {name: np.asarray(v, dtype=np.float64) for name, v in sorted(values.items())}
    finite = [x[np.isfinite(x)] for x in raw.values()]
    log = all(np.all(x > 0) for x in finite)  # one scale for the whole group
    with np.errstate(invalid="ignore", divide="ignore"):
        cells = {name: _cell(values[name], np.log(x) if log else x) for name, x in raw.items()}
    longest = max((len(c.values) for c in cells.values()), default=0)
    for t in range(rule.min_runs, min(longest, rule.max_runs) + 1):
        _look(rule, cells, t)
    return cells


def _state(rule: StoppingRule, cell: _Cell, leading: bool) -> CellState:
    n = len(cell.values)
    if cell.stop_at is not None:
        return CellState(False, n, cell.stopped_by, cell.why, cell.look, cell.p_holm, cell.level)  # type: ignore[arg-type]
    if n >= rule.max_runs:  # a cell that lagged behind its group (failed runs) and has caught up with max
        return CellState(False, n, "max", f"max {rule.max_runs} runs")
    if n < rule.min_runs:
        return CellState(True, n, None, f"{n} of at least {rule.min_runs} runs")
    return CellState(True, n, None, "leading; the others not yet settled" if leading else
                     "not yet separated from the leader")


def _leader(rule: StoppingRule, cells: dict[str, _Cell]) -> str | None:
    group = {name: c.seen(rule.max_runs) for name, c in cells.items() if not c.separated}
    group = {name: x for name, x in group.items() if x is not None}
    return min(group, key=lambda name: (group[name].median, name)) if group else None


def verdict_states(rule: StoppingRule, values: Mapping[str, Sequence[float]]) -> dict[str, CellState]:
    cells = _verdict_group(rule, values)
    leader = _leader(rule, cells)
    return {name: _state(rule, c, name == leader) for name, c in cells.items()}


def runs_used(rule: StoppingRule, values: Mapping[str, Sequence[float]]) -> dict[str, int]:
    """How many of each cell's values (run order) the rule lets it have: the count when it stopped, else all of
    them. Given every run a fixed design would make, this is what the sweep loop, asking after every round, would
    have run, since the rule at a look sees only the first values of each cell (tests/host/analysis)."""
    if rule.stop == "precision":
        return {name: _precision_cell(rule, v)[1] or len(v) for name, v in values.items()}
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
            states.update({name: _precision_cell(rule, v)[0] for name, v in sorted(cells.items())})
        else:
            states.update(verdict_states(rule, cells))
    return states
