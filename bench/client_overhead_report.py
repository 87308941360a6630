"""The figures of bench/client_overhead.py: the JSON's typed schema, the statistics over its rounds (pure), and
BENCHMARKS.md's section of them (bench/write_report.py).

One cell = one engine file (an ONNX model for ONNX Runtime, a TorchScript file for torch) x model x threads. Each
round runs, for every client language of that engine, greenrt's runner and a bare loop in the same language,
each in its own process, with the same inputs, threads, warm-up and number of timed iterations. Per segment the
median and mean of the per-iteration latencies; per round the ratio runner/bare of the two adjacent segments
of a language (their order alternates from round to round); per cell the median of those ratios with their range.
Across languages, the bare loops of one round on the same engine file: what the language itself costs.
"""
from __future__ import annotations

import statistics
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TARGET = 1.02  # bench/overhead.py's: the runner's loop adds at most 2 % to a bare loop in its language
SEGMENT_KINDS = ("runner", "bare")
Kind = Literal["runner", "bare"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BareLoopOutput(_Strict):
    """What every bench/bare_loops/ program prints: one JSON object."""

    language: str
    engine: str
    threads: int | None
    warmup_iterations: int
    versions: dict[str, str]
    latencies_ns: list[int] = Field(min_length=1)
    loop_ns: int


class SegmentTimes(_Strict):
    """One language's segments, round by round (ms): the series behind the medians."""

    runner_median: list[float]
    runner_mean: list[float]
    bare_median: list[float]
    bare_mean: list[float]


class LanguageFigures(_Strict):
    """A client language's runner against its bare loop in one cell."""

    language: str  # as tables name it: Python, Node.js, C++
    runtime: str  # the runner's runtime id
    bare_loop: str  # the bare loop's program, relative to the repository
    versions: dict[str, str]
    runner_median_ms: float  # medians over rounds of each segment's median (mean) latency
    runner_mean_ms: float
    bare_median_ms: float
    bare_mean_ms: float
    ratio: float  # median over rounds of runner median / bare median of the same round
    ratio_min: float
    ratio_max: float
    ratio_mean: float  # the same of the means
    round_ratios: list[float]
    rounds_ms: SegmentTimes


class CrossLanguage(_Strict):
    """Another language's bare loop (and runner) against Python's, round by round, on the same engine file."""

    reference: str
    other: str
    bare_ratio: float  # median over rounds of other bare median / Python bare median
    bare_ratio_min: float
    bare_ratio_max: float
    runner_ratio: float  # the same for the two runners
    round_bare_ratios: list[float]


class Cell(_Strict):
    engine: str
    artifact: str  # the engine file, relative to the artifact folder
    model: str
    batch_size: int
    threads: int | None  # None: the engine's default
    iterations_per_round: int
    warmup_iterations: int
    rounds: int
    languages: list[LanguageFigures]
    cross_language: CrossLanguage
    bench_seconds: float
    load_1m: tuple[float, float]  # the host's 1-minute load average at the cell's start and end: was it quiet?


class ClientOverheadReport(_Strict):
    target_ratio: float
    host: str
    cpu_count: int
    note: str  # how the figures were taken (a reduced check, or the lead's quiet run)
    cells: list[Cell]
    all_within_target: bool


# One round's latencies: language -> segment kind -> per-iteration ns.
RoundLatencies = dict[str, dict[str, list[int]]]


def _ms(ns: float) -> float:
    return ns / 1e6


def language_figures(rounds: list[RoundLatencies], language: str, label: str, runtime: str, bare_loop: str,
                     versions: dict[str, str]) -> LanguageFigures:
    """The runner/bare figures of `language` over `rounds` (pure)."""
    times = {f"{kind}_{stat}": [_ms(fn(r[language][kind])) for r in rounds]
             for kind in SEGMENT_KINDS for stat, fn in (("median", statistics.median), ("mean", statistics.fmean))}
    ratios = [a / b for a, b in zip(times["runner_median"], times["bare_median"])]
    ratios_mean = [a / b for a, b in zip(times["runner_mean"], times["bare_mean"])]
    return LanguageFigures(
        language=label, runtime=runtime, bare_loop=bare_loop, versions=versions,
        runner_median_ms=statistics.median(times["runner_median"]),
        runner_mean_ms=statistics.median(times["runner_mean"]),
        bare_median_ms=statistics.median(times["bare_median"]), bare_mean_ms=statistics.median(times["bare_mean"]),
        ratio=statistics.median(ratios), ratio_min=min(ratios), ratio_max=max(ratios),
        ratio_mean=statistics.median(ratios_mean), round_ratios=ratios, rounds_ms=SegmentTimes(**times))


def cross_language(rounds: list[RoundLatencies], reference: str, other: str, labels: dict[str, str]) -> CrossLanguage:
    """`other`'s bare loop and runner against `reference`'s, round by round (pure)."""
    def ratios(kind: str) -> list[float]:
        return [statistics.median(r[other][kind]) / statistics.median(r[reference][kind]) for r in rounds]

    bare = ratios("bare")
    return CrossLanguage(reference=labels[reference], other=labels[other], bare_ratio=statistics.median(bare),
                         bare_ratio_min=min(bare), bare_ratio_max=max(bare),
                         runner_ratio=statistics.median(ratios("runner")), round_bare_ratios=bare)


def round_order(languages: list[str], round_index: int) -> list[tuple[str, Kind]]:
    """The segments of one round: each language's runner and bare loop side by side, the whole order reversed
    every other round, so that each pair's order alternates and drift favours neither side (pure)."""
    order: list[tuple[str, Kind]] = [(language, kind) for language in languages for kind in SEGMENT_KINDS]
    return order if round_index % 2 == 0 else order[::-1]


def _threads(threads: int | None) -> str:
    return "default" if threads is None else str(threads)


def section(report: dict) -> list[str]:
    """BENCHMARKS.md's lines for bench/out/client-overhead.json (validated against ClientOverheadReport)."""
    r = ClientOverheadReport.model_validate(report)
    lines = [
        f"Per cell (one engine file, model, batch, threads), {r.cells[0].rounds if r.cells else 0} rounds; each round "
        "runs, for every client language of the engine, greenrt's runner (`RunRequest` in, `RunResult` out, as a "
        "sweep launches it) and a bare loop written in the same language with nothing of greenrt "
        "(bench/bare_loops/), each in its own process, on the same file, inputs, threads, warm-up count and number "
        "of timed iterations; the order is reversed every other round. Latency: the median of a segment's "
        "per-iteration latencies, then the median over rounds; runner/bare is taken per round (adjacent segments) "
        f"and given as its median with the range over rounds (target <= {r.target_ratio}). "
        f"{r.note + ' ' if r.note else ''}Host: {r.host}, {r.cpu_count} CPUs.", "",
        "| engine (file) | model | batch | threads | client | bare loop median ms | runner median ms | "
        "runner/bare (median, min-max) | runner/bare (means) | rounds x iterations |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    for c in r.cells:
        for f in c.languages:
            lines.append(f"| {c.engine} ({c.artifact}) | {c.model} | {c.batch_size} | {_threads(c.threads)} | "
                         f"{f.language} | {f.bare_median_ms:.3f} | {f.runner_median_ms:.3f} | {f.ratio:.3f} "
                         f"({f.ratio_min:.3f}-{f.ratio_max:.3f}) | {f.ratio_mean:.3f} | "
                         f"{c.rounds} x {c.iterations_per_round} |")
    lines += ["", "What the language itself costs: the bare loops of the same round on the same engine file, another "
              "language's against Python's (below 1: faster than Python), and the same ratio for the two runners.",
              "", "| engine (file) | model | threads | languages | Python bare ms | other bare ms | "
              "other/Python, bare loops (median, min-max) | other/Python, runners |",
              "|---|---|---|---|---|---|---|---|"]
    for c in r.cells:
        x = c.cross_language
        by_label = {f.language: f for f in c.languages}
        lines.append(f"| {c.engine} ({c.artifact}) | {c.model} | {_threads(c.threads)} | {x.other} vs {x.reference} "
                     f"| {by_label[x.reference].bare_median_ms:.3f} | {by_label[x.other].bare_median_ms:.3f} | "
                     f"{x.bare_ratio:.3f} ({x.bare_ratio_min:.3f}-{x.bare_ratio_max:.3f}) | {x.runner_ratio:.3f} |")
    versions = sorted({f"{f.language} ({c.engine}): " + ", ".join(f"{k} {v}" for k, v in sorted(f.versions.items()))
                       for c in r.cells for f in c.languages})
    within = "all within" if r.all_within_target else "NOT all within"
    loads = [x for c in r.cells for x in c.load_1m]
    load = (f" The host's 1-minute load average at the cells' starts and ends: {min(loads):.1f} to {max(loads):.1f} "
            f"on {r.cpu_count} CPUs." if loads else "")
    lines += ["", f"Versions: {'; '.join(versions)}. Median runner/bare ratios: {within} {r.target_ratio}.{load}"]
    return lines
