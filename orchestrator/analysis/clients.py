"""The client language as a factor: the same base runtime driven from Python, Node.js or C++ (issue 25).

A client group is a sweep's successful runs of one model, batch size, precision and base runtime (the id without
its `@client` suffix, runners/clients.py) where two clients or more were measured. Per client and metric (p50
latency per batch; energy per inference where a sensor measured it): the median over runs with the interval the
report gives every runtime (stats.summarize: the seeded percentile-bootstrap interval of the mean), the ratio of
its median to the Python client's with a percentile-bootstrap interval (scipy's, both samples resampled
independently, at the report's level, resample count and seed), and the test against the Python client: the
report's two-sided Mann-Whitney U over runs with Cliff's delta (comparisons.py), Holm-adjusted over the group's
comparisons with the Python client on that metric (one family per group and metric, as the report's families are
per group and metric).

The Python client of a group is `@python` where it was measured (the Python runner on the engine the other clients
share), else the plain id. A plain id beside `@python` is one more row, compared with `@python` like any client.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl

from orchestrator.analysis.comparisons import ALPHA, MIN_RUNS, cliffs_delta, delta_magnitude, holm, mann_whitney
from orchestrator.analysis.frames import ok_runs
from orchestrator.analysis.stats import CONFIDENCE, N_RESAMPLES, Summary, summarize
from runners.clients import CLIENTS, PYTHON, language, split_client

GROUP_KEYS = ("model", "batch_size", "precision", "base")
# (column of the runs table, what a verdict says of a higher and of a lower figure)
LATENCY = "latency_p50_ms"
ENERGY = "j_per_inference"
CLIENT_METRICS = {LATENCY: ("slower", "faster"), ENERGY: ("more energy", "less energy")}
_CLIENT_ORDER = {name: i for i, name in enumerate(CLIENTS)}


@dataclass(frozen=True)
class Ratio:
    """A client's median over the Python client's, with its percentile-bootstrap interval (None: not computable)."""

    value: float | None
    low: float | None
    high: float | None
    note: str


@dataclass(frozen=True)
class ClientTest:
    """One client against the Python client on one metric: two-sided Mann-Whitney U over runs, Holm-adjusted."""

    p_value: float | None
    p_holm: float | None
    cliffs_delta: float | None  # P(client > Python) - P(client < Python) over pairs of runs
    magnitude: str | None
    significant: bool | None  # None: not tested (fewer than MIN_RUNS runs on a side)
    note: str


@dataclass(frozen=True)
class ClientFigure:
    """One client's figure on one metric, against the Python client's (None for the Python client itself)."""

    metric: str
    summary: Summary
    ratio: Ratio | None
    test: ClientTest | None
    verdict: str  # one line: "Node.js 3% slower than Python (Holm p 0.008)", "no difference detected at ..."


@dataclass(frozen=True)
class ClientRow:
    runtime: str
    client: str  # the id's suffix; "python" for a plain id
    label: str  # how the report names it: the language, told apart from a second Python client in the group
    is_reference: bool
    figures: dict[str, ClientFigure]  # metric column -> figure; a metric no run of the group measured is absent


@dataclass(frozen=True)
class ClientGroup:
    model: str
    batch_size: int
    precision: str
    base: str
    reference: str  # the Python client's runtime id
    metrics: tuple[str, ...]  # those measured in this group, CLIENT_METRICS' order
    rows: tuple[ClientRow, ...]  # the Python client first, then the others in runners/clients.py's order

    @property
    def where(self) -> str:
        return f"{self.model}, batch {self.batch_size}, {self.precision}, {self.base}"


def reference_client(runtimes: list[str]) -> str:
    """The Python client among a group's runtime ids: `@python` where present, else the plain id."""
    base = split_client(runtimes[0])[0]
    pinned = f"{base}@{PYTHON}"
    return pinned if pinned in runtimes else base


def client_label(runtime: str, runtimes: list[str]) -> str:
    """The language; a plain id beside `@python` is the Python runner in the runtime's own environment."""
    base, client = split_client(runtime)
    if client is None and f"{base}@{PYTHON}" in runtimes:
        return "Python, own environment"
    return language(runtime)


def ordered_clients(runtimes: list[str]) -> list[str]:
    """A group's runtime ids, the Python client first, then the plain id, then runners/clients.py's order."""
    reference = reference_client(runtimes)

    def order(runtime: str) -> tuple:
        client = split_client(runtime)[1]
        return (runtime != reference, client is not None, _CLIENT_ORDER.get(client or PYTHON, len(_CLIENT_ORDER)),
                runtime)

    return sorted(runtimes, key=order)


def _finite(frame: pl.DataFrame, column: str) -> np.ndarray:
    values = frame[column].drop_nulls().to_numpy().astype(np.float64)
    return values[np.isfinite(values)]


def median_ratio(values: np.ndarray, reference: np.ndarray, seed: int) -> Ratio:
    """median(values) / median(reference) and its percentile-bootstrap interval (the two samples resampled
    independently: the runs of two clients are not paired)."""
    if values.size == 0 or reference.size == 0:
        return Ratio(None, None, None, "no value on a side")
    if np.median(reference) <= 0 or np.any(reference <= 0):
        return Ratio(None, None, None, "the Python client's figure is not positive: no ratio")
    value = float(np.median(values) / np.median(reference))
    if values.size < 2 or reference.size < 2:
        return Ratio(value, None, None, "one run on a side: no interval")
    from scipy import stats as sps  # seconds to import: only where a client group exists

    def statistic(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.median(x, axis=axis) / np.median(y, axis=axis)

    with warnings.catch_warnings():
        # Tied runs (a value repeated) make scipy warn that the distribution is degenerate; the percentile interval
        # is then simply the tied ratio, which is what it is.
        warnings.simplefilter("ignore")
        result = sps.bootstrap((values, reference), statistic, vectorized=True, paired=False,
                               confidence_level=CONFIDENCE, n_resamples=N_RESAMPLES, method="percentile",
                               rng=np.random.default_rng(seed))
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if not (np.isfinite(low) and np.isfinite(high)):
        return Ratio(value, None, None, "no interval: the bootstrap gave no finite bounds")
    return Ratio(value, low, high, "")


def size_words(ratio: float) -> str:
    """'3%' (of a ratio near 1) or 'x2.4' (twice or more, or half or less): how far a ratio is from 1."""
    return f"x{ratio:.3g}" if ratio >= 2 or ratio <= 0.5 else f"{abs(ratio - 1) * 100:.2g}%"


def verdict_words(label: str, reference_label: str, metric: str, ratio: Ratio, test: ClientTest) -> str:
    """The one line a reader takes away: who is slower (or uses more energy) by how much, or that nothing was seen."""
    if test.significant is None:
        return test.note or "not tested"
    p = f"Holm p {test.p_holm:.2g}"
    if not test.significant:
        return f"no difference detected at this sample size ({p})"
    if ratio.value is None or ratio.value == 1:
        return f"{label} differs from {reference_label} with the same median ({p})"
    higher, lower = CLIENT_METRICS[metric]
    size = size_words(ratio.value)
    if size.startswith("x"):
        return f"{label} takes {size} the {'time' if metric == LATENCY else 'energy'} of {reference_label} ({p})"
    return f"{label} {size} {higher if ratio.value > 1 else lower} than {reference_label} ({p})"


def _tests(samples: dict[str, np.ndarray], reference: str, others: list[str], alpha: float) -> dict[str, ClientTest]:
    """Each client against the reference; the tested ones Holm-adjusted together (the group's family)."""
    raw: dict[str, tuple[float, float] | None] = {}
    notes: dict[str, str] = {}
    for runtime in others:
        short = [f"{r} has {samples[r].size} run{'s' if samples[r].size != 1 else ''}" for r in (runtime, reference)
                 if samples[r].size < MIN_RUNS]
        raw[runtime] = None if short else mann_whitney(samples[runtime], samples[reference])
        notes[runtime] = f"not tested: {', '.join(short)} (at least {MIN_RUNS} needed)" if short else ""
    adjusted = dict(zip(others, holm([r[1] if r else None for r in raw.values()])))
    tests = {}
    for runtime in others:
        r, p_adj = raw[runtime], adjusted[runtime]
        delta = cliffs_delta(samples[runtime], samples[reference]) if r else None
        tests[runtime] = ClientTest(r[1] if r else None, p_adj, delta,
                                    delta_magnitude(delta) if delta is not None else None,
                                    (p_adj < alpha) if p_adj is not None else None, notes[runtime])
    return tests


def _group(key: dict, group: pl.DataFrame, alpha: float, seed: int) -> ClientGroup:
    runtimes = ordered_clients(group["runtime"].unique().to_list())
    reference = runtimes[0]
    others = [r for r in runtimes if r != reference]
    labels = {r: client_label(r, runtimes) for r in runtimes}
    metrics = tuple(m for m in CLIENT_METRICS if m in group.columns and _finite(group, m).size)
    figures: dict[str, dict[str, ClientFigure]] = {r: {} for r in runtimes}
    for metric in metrics:
        samples = {r: _finite(group.filter(pl.col("runtime") == r), metric) for r in runtimes}
        tests = _tests(samples, reference, others, alpha)
        for runtime in runtimes:
            summary = summarize(samples[runtime], seed, "no value in any run")
            if runtime == reference:
                figures[runtime][metric] = ClientFigure(metric, summary, None, None, "the Python client (reference)")
                continue
            ratio = median_ratio(samples[runtime], samples[reference], seed)
            test = tests[runtime]
            figures[runtime][metric] = ClientFigure(metric, summary, ratio, test,
                                                    verdict_words(labels[runtime], labels[reference], metric,
                                                                  ratio, test))
    rows = tuple(ClientRow(r, split_client(r)[1] or PYTHON, labels[r], r == reference, figures[r]) for r in runtimes)
    return ClientGroup(key["model"], key["batch_size"], key["precision"], key["base"], reference, metrics, rows)


def client_groups(runs: pl.DataFrame, alpha: float = ALPHA, seed: int = 0) -> list[ClientGroup]:
    """Every group of a sweep's successful runs with two clients or more of one base runtime, in sorted order;
    [] for a sweep without a client suffix (nothing to compare)."""
    if runs.is_empty() or "runtime" not in runs.columns:
        return []
    if not any(split_client(r)[1] is not None for r in runs["runtime"].unique().to_list()):
        return []
    ok = ok_runs(runs)
    bases = {r: split_client(r)[0] for r in ok["runtime"].unique().to_list()}
    ok = ok.with_columns(pl.col("runtime").replace_strict(bases, return_dtype=pl.String).alias("base"))
    groups = []
    for key, group in sorted(ok.group_by(list(GROUP_KEYS)), key=lambda kg: tuple(str(k) for k in kg[0])):
        if group["runtime"].n_unique() >= 2:
            groups.append(_group(dict(zip(GROUP_KEYS, key)), group, alpha, seed))
    return groups


def client_frame(groups: list[ClientGroup]) -> pl.DataFrame:
    """One row per group, client and metric: every figure of the comparison (the report's CSV)."""
    rows = []
    for g in groups:
        for row in g.rows:
            for metric, f in row.figures.items():
                s, r, t = f.summary, f.ratio, f.test
                rows.append({"model": g.model, "batch_size": g.batch_size, "precision": g.precision, "base": g.base,
                             "runtime": row.runtime, "client": row.client, "language": row.label,
                             "reference": g.reference, "metric": metric, "runs": s.n, "median": s.median,
                             "mean": s.mean, "ci95_low": s.ci_low, "ci95_high": s.ci_high,
                             "ratio_to_python": r.value if r else (1.0 if row.is_reference and s.median else None),
                             "ratio_ci95_low": r.low if r else None, "ratio_ci95_high": r.high if r else None,
                             "p_value": t.p_value if t else None, "p_holm": t.p_holm if t else None,
                             "cliffs_delta": t.cliffs_delta if t else None, "magnitude": t.magnitude if t else None,
                             "significant": t.significant if t else None, "verdict": f.verdict,
                             "note": "; ".join(x for x in (s.note, r.note if r else "", t.note if t else "") if x)})
    return pl.DataFrame(rows, schema=CLIENT_SCHEMA)


CLIENT_SCHEMA = {"model": pl.String, "batch_size": pl.Int64, "precision": pl.String, "base": pl.String,
                 "runtime": pl.String, "client": pl.String, "language": pl.String, "reference": pl.String,
                 "metric": pl.String, "runs": pl.Int64, "median": pl.Float64, "mean": pl.Float64,
                 "ci95_low": pl.Float64, "ci95_high": pl.Float64, "ratio_to_python": pl.Float64,
                 "ratio_ci95_low": pl.Float64, "ratio_ci95_high": pl.Float64, "p_value": pl.Float64,
                 "p_holm": pl.Float64, "cliffs_delta": pl.Float64, "magnitude": pl.String,
                 "significant": pl.Boolean, "verdict": pl.String, "note": pl.String}
