"""When a cell of an adaptive sweep has run enough: the stopping rules, pure functions of the values seen so far.

A look is the moment after a round: at look t every cell has its first t values (fewer where runs failed). The
rules are replayed over every look from `min_runs` to the current one, so a cell that stopped at look t stays
stopped with the decision made on its first t values, whatever it is shown later: calling `cell_states` after
every round, or once on the whole record, gives the same states (resume and merged Slurm shards included).

Both rules spend their alpha over the planned looks, `max_runs - min_runs + 1` of them: by look j of L at most
alpha (j/L)^RHO is spent (RHO 0.75: nominal levels rising from 0.010 to 0.017 over 9 looks), and
each look's nominal level is the one at which a normal random walk, as the statistic of cumulative runs is,
crosses for the first time with that share (nominal_levels): the levels hold together over every look, as a
group-sequential design's do. Values are compared on the log scale (energy
and latency are ratios: a cell's spread is a share of its level); where a value is zero or negative, on their own
scale, for the whole group.

- precision: a cell stops once the t interval of its median (the geometric mean of a lognormal cell), at the
  look's nominal level, has a relative half-width at or under `target`.
- verdict: the leader is the lowest median of the runtimes still measuring. At each look, the active others
  are compared with it by a two-sided t-test (the rule's `test`, by default the moderated one: Welch's form, each
  other runtime's variance moderated by a prior fitted across its group, limma's empirical Bayes with three
  safeguards for a group of 9 or 15 runtimes; variance_prior, _posterior, _compare say which and why), Holm over
  those comparisons at the look's nominal level, the many-to-one family of analysis/best.py. A runtime
  significantly worse leaves the group ("separated").
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
from typing import Literal, get_args

import numpy as np

from orchestrator.analysis.comparisons import holm

# The design's constants, chosen on the simulation of bench/adaptive_simulation.py (docs/statistics.md has the
# trade-off table): the spending function's shape (1 spends evenly; 0.5 gives nearly even nominal levels, the
# Pocock shape; 0.75 keeps more for the last looks, where the close calls are, while the moderated test lets the
# large gaps separate early on less), the conditional power under which a comparison is not worth more runs, and
# the runs from which that is judged (from 2: the moderated variance of two values borrows its group's degrees of
# freedom; with Welch's alone two values gave too rough a spread). Exponent 0.75 and 75 % from 2 runs is the design
# under 40 % of the fixed design's runs that found the true best most often with no more wrong bests than the
# fixed design (seeds 23 and 11); 60 % from 3 finds it more often for about 43 % (docs/statistics.md)
RHO = 0.75
FUTILITY = 0.75
FUTILITY_MIN_RUNS = 2
# How the leader is compared with each other runtime (comparison): "moderated" (each runtime's variance shrunk
# toward a prior fitted across its group, limma's empirical Bayes; Welch's where the group has under 3 spreads),
# "welch" (each runtime's own variance), "paired" (per-round differences, the host's drift removed); "limma": the
# moderated test as limma publishes it, without this module's safeguards (the simulation shows why they are there)
Test = Literal["moderated", "welch", "paired", "limma"]
TEST: Test = "moderated"
TEST_NAMES = {"moderated": "moderated t-test", "welch": "Welch t-test", "paired": "paired t-test",
              "limma": "moderated t-test (limma)"}


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
    test: Test = TEST

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
        if self.test not in get_args(Test):
            raise ValueError(f"test must be one of {', '.join(get_args(Test))}, got {self.test!r}")

    @property
    def test_name(self) -> str:
        return TEST_NAMES[self.test]

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


@dataclass(frozen=True)
class VariancePrior:
    """A group's prior for its runtimes' variances on the compared scale: var (s0^2) worth df (d0) degrees of
    freedom; df 0: no prior (each runtime's own variance alone, Welch's test)."""
    df: float
    var: float


NO_PRIOR = VariancePrior(0.0, 0.0)


def variance_prior(variances: Sequence[float], dfs: Sequence[float], conservative: bool = True) -> VariancePrior:
    """The prior of the runtimes' variances, fitted across a group: limma's fitFDist (Smyth 2004, section 6.2), the
    moments of the log variances. log s^2 - digamma(d/2) + log(d/2) estimates log sigma^2 with variance
    trigamma(d/2); what the spread of those estimates has beyond that (the excess) is the spread of the true
    variances, trigamma(d0/2) when they are s0^2 d0 over a chi-square with d0 df (d0 by the inverse of trigamma,
    scipy's root finder on scipy's polygamma).

    Two departures from limma, both towards less credit for the prior, for a group of 9 or 15 runtimes where
    limma fits thousands of genes: the excess is taken at its estimate plus one standard error (the sample
    variance's, from the log chi-square's kurtosis, polygamma(3) over polygamma(1) squared): with 9 spreads of
    2 runs each that error is as large as the excess itself, and limma's point estimate then often finds no excess
    at all and an infinite d0, the prior known exactly, which made wrong "best" verdicts about 15 times more
    frequent than the fixed design's in the simulation (docs/statistics.md); and d0 at most the degrees of freedom
    of every variance together, all the prior can know. `conservative` False: limma's fit as published (the tests
    check that it finds a known prior). Variances of zero (identical values) and those without df tell nothing of
    the spread: left out. Fewer than 3 variances: no prior (NO_PRIOR)."""
    from scipy import optimize, special

    v, d = np.asarray(variances, dtype=np.float64), np.asarray(dfs, dtype=np.float64)
    keep = np.isfinite(v) & (v > 0) & (d > 0)
    v, d = v[keep], d[keep]
    if v.size < 3:
        return NO_PRIOR
    e = np.log(v) - special.digamma(d / 2) + np.log(d / 2)
    mean, spread = float(e.mean()), float(e.var(ddof=1))
    noise = special.polygamma(1, d / 2)
    kurtosis = float((special.polygamma(3, d / 2) / noise**2).mean())
    error = spread * math.sqrt(2 / (e.size - 1) + kurtosis / e.size) if conservative else 0.0
    excess = spread - float(noise.mean()) + error
    limit = float(d.sum()) if conservative else 1e12
    if excess <= 0 or special.polygamma(1, limit / 2) >= excess:
        df = limit
    else:
        u = optimize.brentq(lambda u: math.log(special.polygamma(1, math.exp(u))) - math.log(excess), -40.0,
                            math.log(limit / 2), xtol=1e-10)
        df = 2 * math.exp(u)
    return VariancePrior(df, math.exp(mean + special.digamma(df / 2) - math.log(df / 2)))


def _posterior(x: _Sample, prior: VariancePrior, lower: bool = False) -> tuple[float, float]:
    """(variance, its degrees of freedom): the sample's own, raised toward the prior (limma's squeezeVar), never
    lowered. The recorded spreads have a long upper tail (a median of 5 %, some of 25 % to 65 %) that a prior
    fitted on 9 or 15 of them cannot describe: pulling such a runtime's variance down toward the group's makes a
    wrong separation of it likelier (limma's robust fit treats those variances as outliers for the same reason).
    A runtime noisier than the prior keeps its own variance and df, Welch's (`lower`: limma's, both ways)."""
    d = x.n - 1
    if prior.df <= 0 or d + prior.df <= 0:
        return x.var, float(d)
    var = (prior.df * prior.var + d * x.var) / (prior.df + d)
    return (var, d + prior.df) if var >= x.var or lower else (x.var, float(d))


@dataclass(frozen=True)
class _Comparison:
    """The leader against another runtime on the compared scale: two-sided p, difference (other - leader), its
    standard error now, and the standard error it would have at max_runs values a side (conditional power)."""
    p: float
    diff: float
    se: float
    se_max: float


def _two_sample(a: _Sample, b: _Sample, max_runs: int, prior: VariancePrior = NO_PRIOR,
                lead_prior: VariancePrior = NO_PRIOR, lower: bool = False) -> _Comparison:
    """Welch's test, its degrees of freedom Satterthwaite's; with a prior, each variance the posterior one with its
    own df plus the prior's (the moderated t of limma, Welch's form for runtimes of unlike spreads).
    a: the leader, b: the other runtime; the prior is b's alone (lead_prior: none, as _compare asks but for
    "limma"; `lower`: variances pulled down toward the prior too, as limma does).
    Not Student's pooled df (2n - 2) even where the counts are equal: runtimes' spreads differ by up to 100 times,
    and with 2 or 3 runs a side the pooled df overstates what the two variance estimates know (2 where the noisier
    side alone gives 1), which made wrong "best" verdicts more frequent than the fixed design's (docs/statistics.md).
    The prior is the group's, fitted on every runtime's spread, so it knows as much as the data say the spreads
    are alike (variance_prior), no more."""
    from scipy import special

    (var_a, df_a), (var_b, df_b) = _posterior(a, lead_prior, lower), _posterior(b, prior, lower)
    diff = b.mean - a.mean
    va, vb = var_a / a.n, var_b / b.n
    se = math.sqrt(va + vb)
    se_max = math.sqrt((var_a + var_b) / max_runs)
    if se == 0:
        return _Comparison((0.0 if diff else 1.0), diff, 0.0, 0.0)
    df = (va + vb) ** 2 / (va**2 / df_a + vb**2 / df_b) if va and vb else df_a + df_b
    return _Comparison(float(2 * special.stdtr(df, -abs(diff) / se)), diff, se, se_max)


def _paired(lead: Sequence[float], other: Sequence[float], max_runs: int) -> _Comparison | None:
    """The paired t-test of the per-round differences other - leader (compared scale), over the rounds where both
    have a value: runs of one round are interleaved, so the host's drift, shared by the round, cancels in each
    difference. None with fewer than 2 such rounds."""
    from scipy import special

    d = [o - a for a, o in zip(lead, other) if math.isfinite(a) and math.isfinite(o)]
    if len(d) < 2:
        return None
    n, diff, var = len(d), statistics.fmean(d), statistics.variance(d)
    se, se_max = math.sqrt(var / n), math.sqrt(var / max_runs)
    if se == 0:
        return _Comparison((0.0 if diff else 1.0), diff, 0.0, 0.0)
    return _Comparison(float(2 * special.stdtr(n - 1, -abs(diff) / se)), diff, se, se_max)


def t_test(lead: Sequence[float], other: Sequence[float]) -> float:
    """Two-sided p of Welch's t-test of two cells' values, on the log scale where all are positive."""
    x, y = _scaled(lead), _scaled(other)
    sx, sy = _on_scale(x, y)
    return _two_sample(_sample(x, sx), _sample(y, sy), max(x.size, y.size)).p


def _conditional_power(c: _Comparison, alpha: float) -> float:
    """The chance that the comparison is significant at max_runs values each (two-sided, level alpha) if the
    difference and spreads seen so far were the truth: the usual B-value projection, normal approximation."""
    from scipy import special

    if c.se == 0:
        return 1.0 if c.diff else 0.0
    fraction = (c.se_max / c.se) ** 2  # information now over information at max_runs
    if fraction >= 1.0:
        return 0.0
    z_crit = special.ndtri(1 - alpha / 2)
    return float(special.ndtr((abs(c.diff) / c.se_max - z_crit) / math.sqrt(1 - fraction)))


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
    scaled: list[float]             # the values on the compared scale, run order (non-finite where a run failed)
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
        return self.prefixes[self.seen_runs(look)]

    def seen_runs(self, look: int) -> int:
        return min(look, self.stop_at or look, len(self.values))


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
    return _Cell(list(values), scaled.tolist(), prefixes)


def _group_prior(cells: Mapping[str, _Cell], t: int, conservative: bool = True) -> VariancePrior:
    """The variance prior of a group at look t, from every runtime's values seen by then (a separated one's and a
    tied one's included: they were measured on the same host, and their spreads say how alike its runtimes'
    spreads are)."""
    seen = [x for x in (c.seen(t) for c in cells.values()) if x is not None and x.n >= 2]
    return variance_prior([x.var for x in seen], [x.n - 1 for x in seen], conservative)


def _compare(rule: StoppingRule, lead_cell: _Cell, other_cell: _Cell, lead: _Sample, other: _Sample, t: int,
             prior: VariancePrior) -> _Comparison:
    """The leader against one other runtime by the rule's test; the paired test falls back on Welch's where the two
    share fewer than 2 rounds with values. The moderated test moderates the other runtime's variance, not the
    leader's: the leader is the lowest median of the group, a choice that favours a noisy runtime's low draw, and
    its variance, large by the same token, must not be pulled toward the group's (in the simulation, moderating
    the leader's too gave 29 wrong "best" verdicts of 3,000 where the best is 1 % ahead, the fixed design 27; with
    variances also lowered toward the prior, 40 instead of 17 where every runtime is the same)."""
    if rule.test == "paired":
        paired = _paired(lead_cell.scaled[:lead_cell.seen_runs(t)], other_cell.scaled[:other_cell.seen_runs(t)],
                         rule.max_runs)
        if paired is not None:
            return paired
    if rule.test == "limma":
        return _two_sample(lead, other, rule.max_runs, prior, prior, lower=True)
    return _two_sample(lead, other, rule.max_runs, prior)


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
    prior = _group_prior(cells, t, rule.test == "moderated") if rule.test in ("moderated", "limma") else NO_PRIOR
    tests = {name: _compare(rule, cells[leader], cells[name], lead, ready[name], t, prior) for name in active}
    adjusted = dict(zip(active, holm([tests[name].p for name in active])))
    look = t - rule.min_runs + 1
    for name in active:
        cell, y, p = cells[name], ready[name], adjusted[name]
        test = tests[name]
        if p < level and test.diff > 0:
            cell.stop(y.n, "verdict", f"separated: worse than {leader} ({rule.test_name}, Holm p {p:.2g} < "
                                      f"{level:.2g}) after {y.n} runs", look, p, level, separated=True)
        elif (min(y.n, lead.n) >= rule.futility_min_runs
              and _conditional_power(test, last_level) < rule.futility):
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
