"""A generative run's energy split by phase: each channel integrated over the prefill intervals, over the decode
intervals and over the gaps between iterations, separately. Pure: the sampled series, the window, the stamps.

Every interval boundary (the window's edges, each iteration's start, first token and end) is read from the same
channel the same way the window's energy is (measurement/energy.py): the cumulative counter interpolated linearly
between the two samples around it, or, for a channel without a counter, the power samples integrated. So the
phases telescope: prefill + decode + gaps is the window's energy up to float rounding (`closure_j` says by how
much), and the window's own checks (not covered, read error, stalled or backwards counter) decide each channel's
validity once. The idle correction is the window's: each phase's dynamic energy is its raw energy minus the
channel's idle power times the phase's seconds.

Short phases. A counter that steps every T (NVML's ~100 ms; RAPL's step is below the sampling interval, so T is
that interval: measurement/edges.py finds T from the samples) reads an edge up to P * T low. A 10 ms prefill lies
inside one step: its energy is then the counter's average power over a step around it times nothing or a whole
step, never the prefill's own power. greenrt reports it anyway, with its uncertainty made explicit per phase:
`edge_uncertainty_j` is the worst case (P * T at every edge of the phase's intervals, summed, as edges.py does for
a window), `edge_sd_j` what remains if the edges fall at random within the steps (each edge's error uniform in
[0, P * T]: sd = sqrt(sum (P T)^2 / 12)), and `short` flags a phase whose median interval is shorter than T. The
decode phase and the whole request are long enough for the counter; a prefill under T is a figure to be read with
its bound. (Measuring prefill energy apart would need a prefill-only loop in the runner: docs/generative.md.)
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from orchestrator.measurement.edges import DEFAULT_COUNTER_PERIOD_S, counter_period, power_near
from orchestrator.measurement.energy import channel_window_energy, counter_at, integrate_power
from orchestrator.measurement.sampler import SampleSeries
from orchestrator.results.generation_payload import (PHASES, ChannelPhase, ChannelPhases, Generation,
                                                     GenerationEnergy, GenerationTimesShape, PhaseTotal,
                                                     generation_payload, generation_times)
from orchestrator.results.payloads import Energy

NS_PER_S = 1_000_000_000

# Segment labels between consecutive boundaries; "unsplit" is an iteration without a first-token stamp.
_PREFILL, _DECODE, _GAPS, _UNSPLIT = "prefill", "decode", "gaps", "unsplit"


def segments(window: tuple[int, int], phases_ns: list[tuple[int, int | None, int]]
             ) -> tuple[np.ndarray, list[str]]:
    """The boundaries (window start, each iteration's start, first token and end, window end) and the label of
    each segment between two consecutive ones. Empty gaps are kept (0 s): every boundary is read once."""
    start, end = window
    bounds, labels = [start], []
    for s, first, e in phases_ns:
        if s < bounds[-1] or e > end:
            raise ValueError(f"iteration [{s}, {e}] lies outside the window [{start}, {end}] or before the previous one")
        labels.append(_GAPS)
        bounds.append(s)
        if first is None:
            labels.append(_UNSPLIT)
        else:
            labels += [_PREFILL, _DECODE]
            bounds.append(first)
        bounds.append(e)
    labels.append(_GAPS)
    bounds.append(end)
    return np.asarray(bounds, dtype=np.int64), labels


def _cumulative(series: SampleSeries, channel: str, bounds: np.ndarray, method: str) -> np.ndarray:
    """Energy of each segment between consecutive boundaries, as the window's energy would read it."""
    t, energy, power = series.channel_arrays(channel)
    if method == "counter":
        keep = np.isfinite(energy)
        at = np.array([counter_at(t[keep], energy[keep], int(b)) for b in bounds])
        return np.diff(at)
    keep = np.isfinite(power)
    return np.array([integrate_power(t[keep], power[keep], int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])])


def _edge_errors(series: SampleSeries, channel: str, bounds: np.ndarray, default_period_s: float
                 ) -> tuple[np.ndarray | None, float | None]:
    """Each boundary's worst-case counter error (P * T, J) and the counter period T; (None, None) without a counter."""
    t, energy, power = series.channel_arrays(channel)
    if not np.isfinite(energy).any():
        return None, None
    period = counter_period(t, energy, default_period_s)
    watts = [power_near(t, energy, power, int(b), period.seconds) for b in bounds]
    if any(w is None for w in watts):
        return None, period.seconds
    return np.array([max(0.0, w) * period.seconds for w in watts]), period.seconds


def _phase_of_channel(label: str, seg_j: np.ndarray, seg_s: np.ndarray, labels: np.ndarray, edge_j: np.ndarray | None,
                      period_s: float | None, idle_w: float | None) -> ChannelPhase:
    mine = np.flatnonzero(labels == label)
    raw = float(seg_j[mine].sum())
    seconds = float(seg_s[mine].sum())
    phase = ChannelPhase(raw_j=raw, dynamic_j=raw - idle_w * seconds if idle_w is not None else None)
    if edge_j is not None:
        # A segment k runs from boundary k to boundary k + 1: both edges count, each once per interval it bounds.
        edges = np.concatenate([edge_j[mine], edge_j[mine + 1]])
        phase.edge_uncertainty_j = float(edges.sum())
        phase.edge_sd_j = float(np.sqrt(np.sum(edges ** 2) / 12.0))
    if period_s is not None and label != _GAPS and mine.size:
        phase.short = bool(np.median(seg_s[mine]) < period_s)
    return phase


def channel_phases(series: SampleSeries, channel: str, window: tuple[int, int], bounds: np.ndarray,
                   labels: np.ndarray, idle_w: float | None, counted: bool,
                   default_period_s: float = DEFAULT_COUNTER_PERIOD_S) -> ChannelPhases:
    whole = channel_window_energy(series, channel, *window)
    out = ChannelPhases(domain=whole.domain, counted=counted, status=whole.status, reason=whole.reason)
    if whole.status != "ok" or whole.method is None:
        return out
    seg_j = _cumulative(series, channel, bounds, whole.method)
    seg_s = np.diff(bounds).astype(np.float64) / NS_PER_S
    edge_j, period_s = _edge_errors(series, channel, bounds, default_period_s)
    out.counter_period_s = period_s
    out.window_j = whole.energy_j
    out.iterations_j = float(seg_j[labels != _GAPS].sum())
    out.unsplit_j = float(seg_j[labels == _UNSPLIT].sum())
    for label in PHASES:
        setattr(out, label, _phase_of_channel(label, seg_j, seg_s, labels, edge_j, period_s, idle_w))
    return out


def _sum(values: list[float | None]) -> float | None:
    return None if not values or any(v is None for v in values) else float(sum(values))  # type: ignore[arg-type]


def _total(label: str, channels: list[tuple[str, ChannelPhases]], seg_s: np.ndarray, labels: np.ndarray) -> PhaseTotal:
    mine = np.flatnonzero(labels == label)
    phases = [(name, getattr(c, label)) for name, c in channels]
    present = [p for _, p in phases if p is not None]
    complete = len(present) == len(phases)
    return PhaseTotal(
        seconds=float(seg_s[mine].sum()), intervals=int(mine.size),
        median_interval_ms=float(np.median(seg_s[mine]) * 1e3) if mine.size else None,
        raw_j=_sum([p.raw_j for p in present]) if complete else None,
        dynamic_j=_sum([p.dynamic_j for p in present]) if complete else None,
        edge_uncertainty_j=_sum([p.edge_uncertainty_j for p in present]) if complete else None,
        edge_sd_j=(float(np.sqrt(sum(p.edge_sd_j ** 2 for p in present)))  # type: ignore[operator]
                   if complete and present and all(p.edge_sd_j is not None for p in present) else None),
        short_channels=[name for name, p in phases if p is not None and p.short])


def phase_energy(series: SampleSeries | None, window: tuple[int, int] | None, times: GenerationTimesShape,
                 idle_w: Mapping[str, float] | None, counted: Collection[str],
                 default_period_s: float = DEFAULT_COUNTER_PERIOD_S) -> GenerationEnergy:
    """The run's energy by phase, per channel and over its counted channels (those the run's energy counts).

    counted: the channels of the run's own energy (its Energy payload's `counted` ones); the others (GPUs the run
    was not given) are split too, and kept beside."""
    if series is None or window is None:
        return GenerationEnergy.unavailable("no sampled window")
    if not series.channels:
        return GenerationEnergy.unavailable("no energy channel was sampled")
    window = (int(window[0]), int(window[1]))
    try:
        bounds, label_list = segments(window, list(times.phases_ns))
    except ValueError as exc:
        return GenerationEnergy(status="invalid", reason=f"iteration stamps do not fit the window: {exc}")
    labels = np.asarray(label_list)
    seg_s = np.diff(bounds).astype(np.float64) / NS_PER_S
    channels = {name: channel_phases(series, name, window, bounds, labels, (idle_w or {}).get(name), name in counted,
                                     default_period_s)
                for name in series.channels}
    own = [(name, c) for name, c in channels.items() if c.counted]
    if not own:
        return GenerationEnergy(status="unavailable", reason="no sampled channel belongs to the run",
                                channels=channels)
    split = sum(1 for p in times.phases_ns if p[1] is not None)
    invalid = sorted(f"{name}: {c.reason}" for name, c in own if c.status != "ok")
    notes = invalid + ([f"{len(times.phases_ns) - split} of {len(times.phases_ns)} iterations have no first-token "
                        "stamp: their energy is in the request's, in neither phase"]
                       if split < len(times.phases_ns) else [])
    totals = {label: _total(label, own, seg_s, labels) for label in PHASES}
    window_j = _sum([c.window_j for _, c in own])
    unsplit_j = _sum([c.unsplit_j for _, c in own])
    parts = [totals[label].raw_j for label in PHASES] + [unsplit_j]
    closure = abs(window_j - sum(parts)) if window_j is not None and None not in parts else None  # type: ignore[arg-type]
    iterations_dynamic = None
    if not invalid and all((idle_w or {}).get(name) is not None for name, _ in own):
        iteration_s = float(seg_s[labels != _GAPS].sum())
        iterations_dynamic = _sum([c.iterations_j for _, c in own])
        iterations_dynamic = (iterations_dynamic - sum((idle_w or {})[n] for n, _ in own) * iteration_s
                              if iterations_dynamic is not None else None)
    status = "invalid" if len(invalid) == len(own) else "partial" if notes else "ok"
    return GenerationEnergy(
        status=status, reason="; ".join(notes), split_iterations=split, window_j=window_j,
        iterations_j=_sum([c.iterations_j for _, c in own]), iterations_dynamic_j=iterations_dynamic,
        prefill=totals[_PREFILL], decode=totals[_DECODE], gaps=totals[_GAPS], unsplit_j=unsplit_j, closure_j=closure,
        channels=channels)


def account_generation(result: Mapping[str, Any] | None, series: SampleSeries | None,
                       window: tuple[int, int] | None, idle_w: Mapping[str, float] | None,
                       energy: Energy) -> Generation | None:
    """A run's `generation` payload: its times from the runner's stamps and, where the run's energy was accounted,
    its energy by phase over the same channels. None for a run that is not generative (no RunResult.generation).

    Raises on stamps the payload cannot hold (out of order): the run's accounting fails with the reason."""
    times = generation_times(result)
    if times is None:
        return None
    # The runner's loop makes one stamp triple per window iteration, inside the window: anything else is a runner
    # that broke the protocol, and the run's accounting fails with the reason (never a figure over wrong intervals).
    iterations = (result or {}).get("iterations")
    if iterations is not None and len(times.phases_ns) != iterations:
        raise ValueError(f"generation: {len(times.phases_ns)} phase stamps for {iterations} window iterations")
    if window is not None and times.phases_ns and (times.phases_ns[0][0] < window[0]
                                                   or times.phases_ns[-1][2] > window[1]):
        raise ValueError(f"generation: the iterations [{times.phases_ns[0][0]}, {times.phases_ns[-1][2]}] lie outside "
                         f"the runner's window [{window[0]}, {window[1]}]")
    if energy.status in ("ok", "partial"):
        counted = {name for name, channel in energy.channels.items() if channel.counted}
        by_phase = phase_energy(series, window, times, idle_w, counted)
    else:
        by_phase = GenerationEnergy.unavailable(energy.reason or f"the run's energy is {energy.status}")
    return generation_payload(times, window, by_phase)
