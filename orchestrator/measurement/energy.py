"""Energy of a measurement window from sampled sensor series: pure functions over numpy arrays.

A window's energy is the cumulative counter at its end minus the counter at its start, each linearly interpolated
between the two samples around that instant. Power samples are integrated only for a channel that has no counter.
A window that cannot be computed honestly (not covered, read error, unexplained backwards counter) is "invalid"
with a reason and energy None: never 0.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from orchestrator.planning.gpus import SHORT_WINDOW_S, GpuDescription

if TYPE_CHECKING:
    from .sampler import SampleSeries

NS_PER_S = 1_000_000_000

# A cumulative energy counter that reads the same value for longer than this has stopped updating: RAPL moves
# every ~1 ms and NVML's total-energy counter every few tens of ms, and no powered CPU or GPU draws 0 W.
STALLED_COUNTER_S = 2.0


def longest_stall_s(t_ns: np.ndarray, counter: np.ndarray) -> float:
    """The longest time, in seconds, over which consecutive samples of a counter read the same value."""
    if len(t_ns) < 2:
        return 0.0
    longest, start = 0, 0
    for k in range(1, len(counter)):
        if counter[k] != counter[start]:
            start = k
        else:
            longest = max(longest, int(t_ns[k]) - int(t_ns[start]))
    return longest / NS_PER_S


class WindowNotCovered(ValueError):
    """The instant asked for lies outside the sampled series: extrapolating would be a guess."""


@dataclass(frozen=True)
class ChannelEnergy:
    channel: str
    domain: str
    status: Literal["ok", "invalid"]
    energy_j: float | None
    method: Literal["counter", "power-integral"] | None
    reason: str
    mean_power_w: float | None
    samples_in_window: int


def short_window_warning(seconds: float, gpus: Iterable[GpuDescription]) -> str | None:
    averaged = sorted({g.name for g in gpus if g.power_is_1s_average})
    if not averaged or seconds >= SHORT_WINDOW_S:
        return None
    return (
        f"window of {seconds:.3g} s is shorter than {SHORT_WINDOW_S:g} s on {', '.join(averaged)}, whose "
        "nvmlDeviceGetPowerUsage is a 1-second average: power samples in it lag the load (energy still comes "
        "from the total-energy counter)"
    )


def _bracket(t_ns: np.ndarray, t: int) -> tuple[int, int]:
    """Indices (lo, hi) with t_ns[lo] <= t <= t_ns[hi], hi - lo <= 1."""
    if len(t_ns) == 0 or t < t_ns[0] or t > t_ns[-1]:
        first = "none" if len(t_ns) == 0 else f"{int(t_ns[0])}..{int(t_ns[-1])}"
        raise WindowNotCovered(f"t={t} ns outside the samples ({first})")
    hi = int(np.searchsorted(t_ns, t, side="left"))
    if t_ns[hi] == t:
        return hi, hi
    return hi - 1, hi


def _lerp(t_ns: np.ndarray, y: np.ndarray, t: int) -> float:
    lo, hi = _bracket(t_ns, t)
    if lo == hi:
        return float(y[lo])
    # Differences in int64 first: monotonic ns since boot exceed float64's exact integer range after ~104 days.
    frac = int(t - t_ns[lo]) / int(t_ns[hi] - t_ns[lo])
    return float(y[lo] + (y[hi] - y[lo]) * frac)


def counter_at(t_ns: np.ndarray, energy_j: np.ndarray, t: int) -> float:
    """Cumulative energy at instant t, interpolated linearly between the two nearest samples."""
    return _lerp(np.asarray(t_ns, dtype=np.int64), np.asarray(energy_j, dtype=np.float64), int(t))


def integrate_power(t_ns: np.ndarray, power_w: np.ndarray, start_ns: int, end_ns: int) -> float:
    """Joules over [start_ns, end_ns]: trapezoids over the samples inside, power interpolated at both edges."""
    t_ns = np.asarray(t_ns, dtype=np.int64)
    power_w = np.asarray(power_w, dtype=np.float64)
    start_ns, end_ns = int(start_ns), int(end_ns)
    if end_ns < start_ns:
        raise ValueError(f"window ends before it starts ({start_ns} > {end_ns})")
    p_start = _lerp(t_ns, power_w, start_ns)
    p_end = _lerp(t_ns, power_w, end_ns)
    inside = (t_ns > start_ns) & (t_ns < end_ns)
    ts = np.concatenate(([start_ns], t_ns[inside], [end_ns]))
    ps = np.concatenate(([p_start], power_w[inside], [p_end]))
    dt_s = np.diff(ts - start_ns).astype(np.float64) / NS_PER_S
    return float(np.sum(dt_s * (ps[1:] + ps[:-1]) / 2.0))


def _fmt_s(ns: int, origin: int) -> str:
    return f"{(ns - origin) / NS_PER_S:+.3f} s"


def _invalid(channel: str, domain: str, reason: str, n: int = 0) -> ChannelEnergy:
    return ChannelEnergy(channel, domain, "invalid", None, None, reason, None, n)


def channel_window_energy(series: SampleSeries, channel: str, start_ns: int, end_ns: int) -> ChannelEnergy:
    domain = series.channels[channel]
    t, energy, power = series.channel_arrays(channel)
    backwards = series.channel_column(channel, "backwards").astype(bool)

    has_counter = np.isfinite(energy)
    if has_counter.any():
        method: Literal["counter", "power-integral"] = "counter"
        keep = has_counter
        values = energy
    elif np.isfinite(power).any():
        method = "power-integral"
        keep = np.isfinite(power)
        values = power
    else:
        failed = [e for e in series.errors if channel in e.channels]
        if failed:  # a sensor that failed every read (a GPU lost before the run) says why
            return _invalid(channel, domain, f"no readable sample: {failed[0].reason}")
        return _invalid(channel, domain, "no energy counter and no power samples for this channel")
    idx = np.flatnonzero(keep)
    ts, ys = t[idx], values[idx]

    # A read that failed inside the window says more than the gap it leaves (a GPU lost mid-run stops its samples).
    for err in series.errors:
        if channel in err.channels and start_ns <= err.t_ns <= end_ns:
            return _invalid(channel, domain, f"read error at {_fmt_s(err.t_ns, start_ns)} from window start: "
                                             f"{err.reason}", int(np.count_nonzero((ts >= start_ns) & (ts <= end_ns))))
    if start_ns < ts[0] or end_ns > ts[-1]:
        return _invalid(
            channel,
            domain,
            f"window not covered by samples: samples span {_fmt_s(int(ts[0]), start_ns)}..{_fmt_s(int(ts[-1]), start_ns)} "
            f"relative to the window start, window lasts {(end_ns - start_ns) / NS_PER_S:.3f} s",
        )
    lo, _ = _bracket(ts, start_ns)
    _, hi = _bracket(ts, end_ns)
    span_lo, span_hi = int(ts[lo]), int(ts[hi])
    n_inside = int(np.count_nonzero((ts >= start_ns) & (ts <= end_ns)))

    # Any failed read between the samples that bound the window may hide what happened in it.
    for err in series.errors:
        if channel in err.channels and span_lo <= err.t_ns <= span_hi:
            return _invalid(
                channel, domain, f"read error at {_fmt_s(err.t_ns, start_ns)} from window start: {err.reason}", n_inside
            )
    # A backwards flag on sample k means the counter fell between k-1 and k; only those inside (lo, hi] matter.
    between = idx[lo + 1 : hi + 1]
    if method == "counter" and backwards[between].any():
        return _invalid(
            channel, domain, "counter went backwards inside the window with no known wrap-around range", n_inside
        )

    if method == "counter":
        stalled = longest_stall_s(ts[lo : hi + 1], ys[lo : hi + 1])
        if stalled > STALLED_COUNTER_S:
            return _invalid(
                channel, domain, f"counter stopped updating for {stalled:.1f} s inside the window (a hung sensor "
                f"reads the same value; a live one moves every few ms)", n_inside
            )
        joules = _lerp(ts, ys, end_ns) - _lerp(ts, ys, start_ns)
        reason = "counter difference, interpolated at both edges"
        wraps = int(series.channel_column(channel, "wrapped")[between].astype(bool).sum())
        if wraps:
            reason += f"; {wraps} wrap-around(s) corrected"
    else:
        joules = integrate_power(ts, ys, start_ns, end_ns)
        reason = "no energy counter: power samples integrated (trapezoid, edges interpolated)"
    seconds = (end_ns - start_ns) / NS_PER_S
    mean_w = joules / seconds if seconds > 0 else None
    return ChannelEnergy(channel, domain, "ok", joules, method, reason, mean_w, n_inside)


def window_energy(series: SampleSeries, start_ns: int, end_ns: int) -> dict[str, ChannelEnergy]:
    """Energy of every channel of the series over [start_ns, end_ns] (host monotonic clock)."""
    start_ns, end_ns = int(start_ns), int(end_ns)
    if end_ns < start_ns:
        raise ValueError(f"window ends before it starts ({start_ns} > {end_ns})")
    return {ch: channel_window_energy(series, ch, start_ns, end_ns) for ch in series.channels}


def idle_power(series: SampleSeries) -> dict[str, float]:
    """Mean watts per channel over the whole series (taken while the machine idles).

    Counter-based (energy over the channel's sampled span); the power integral where there is no counter, and the
    single power sample where there is only one. A channel without a trustworthy figure is left out, not set to 0.
    """
    out: dict[str, float] = {}
    for ch in series.channels:
        t, energy, power = series.channel_arrays(ch)
        # The same samples channel_window_energy will use: the counter's where there is one, else the power's.
        finite = np.isfinite(energy) if np.isfinite(energy).any() else np.isfinite(power)
        if not finite.any():
            continue
        first, last = int(t[finite][0]), int(t[finite][-1])
        if last > first:
            result = channel_window_energy(series, ch, first, last)
            if result.status == "ok" and result.mean_power_w is not None:
                out[ch] = result.mean_power_w
        elif np.isfinite(power).any() and not any(ch in e.channels for e in series.errors):
            out[ch] = float(np.nanmean(power))
    return out


def dynamic_energy(raw_j: float, idle_w: float, seconds: float) -> float:
    """Energy above the idle baseline: raw - idle * seconds.

    Not clipped at 0: a light load can read below a baseline taken at a noisier moment, and clipping those to 0
    would bias every mean over repetitions upward. The sign is information; the statistics handle it.
    """
    return raw_j - idle_w * seconds
