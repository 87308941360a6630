"""How far a window's energy from a stepping counter may lie from the truth at its two edges: pure functions.

NVML's total-energy counter does not move continuously: it steps at its own update period (about 100 ms on
Hopper), holding the energy of its last update in between. A window edge interpolated between two samples of such
a counter therefore reads between 0 and P * T joules below the true energy there (P: the power around the edge,
T: the update period). The window's energy is the difference of its two edges, so its error lies within the larger
of those two; greenrt states the sum, P_start * T + P_end * T, as the window's edge uncertainty.

T is estimated from the run's own samples (the span between the first and last observed counter change divided
by the number of steps between them: unlike the median of the intervals, it does not snap to a multiple of the
sampling interval when T is not one). Where the counter moved at nearly every sample, T is below the sampling
interval and that interval is used as an upper bound; where the samples show too few steps, a stated default.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

NS_PER_S = 1_000_000_000

# NVML's energy counter on Hopper steps about every 100 ms (issue 20); used only where the samples cannot show it.
DEFAULT_COUNTER_PERIOD_S = 0.1
MIN_STEPS = 3  # fewer observed steps than this do not show a period
# Changes at this share of consecutive sample pairs or more: the counter steps faster than it is sampled.
EVERY_SAMPLE_SHARE = 0.9

PeriodSource = Literal["measured", "sampling-interval", "default"]


@dataclass(frozen=True)
class CounterPeriod:
    seconds: float
    source: PeriodSource
    detail: str  # one line: how it was found


def counter_period(t_ns: np.ndarray, energy_j: np.ndarray,
                   default_s: float = DEFAULT_COUNTER_PERIOD_S) -> CounterPeriod:
    """The counter's update period from one channel's samples (time-ordered; nan where there was no reading)."""
    t_ns = np.asarray(t_ns, dtype=np.int64)
    energy_j = np.asarray(energy_j, dtype=np.float64)
    keep = np.isfinite(energy_j)
    t, e = t_ns[keep], energy_j[keep]
    if len(t) < 2:
        return CounterPeriod(default_s, "default", f"fewer than 2 counter samples: {default_s:g} s assumed")
    changed = np.flatnonzero(np.diff(e) != 0) + 1  # sample k read a new value since sample k-1
    if len(changed) < MIN_STEPS:
        return CounterPeriod(default_s, "default", f"the counter stepped {len(changed)} time(s) in "
                             f"{len(t)} samples, too few to show its period: {default_s:g} s assumed")
    sampling_s = float(np.median(np.diff(t))) / NS_PER_S
    share = len(changed) / (len(t) - 1)
    if share >= EVERY_SAMPLE_SHARE:
        return CounterPeriod(sampling_s, "sampling-interval",
                             f"the counter moved at {share:.0%} of {len(t) - 1} sample intervals: its period is at "
                             f"most the sampling interval, {sampling_s * 1e3:.1f} ms, used as the bound")
    span_s = int(t[changed[-1]] - t[changed[0]]) / NS_PER_S
    seconds = span_s / (len(changed) - 1)
    return CounterPeriod(seconds, "measured", f"{len(changed)} counter steps over {span_s:.2f} s of samples "
                         f"taken every {sampling_s * 1e3:.1f} ms")


def power_near(t_ns: np.ndarray, energy_j: np.ndarray, power_w: np.ndarray, at_ns: int,
               period_s: float) -> float | None:
    """The watts drawn around one edge: the higher of the counter's rate over [at - 2T, at + 2T] (clipped to the
    samples) and the power reading nearest the edge. Higher, because the edge error is bounded with it."""
    t_ns = np.asarray(t_ns, dtype=np.int64)
    candidates = []
    e_keep = np.isfinite(energy_j)
    te, e = t_ns[e_keep], np.asarray(energy_j, dtype=np.float64)[e_keep]
    if len(te) >= 2:
        half = int(2 * period_s * NS_PER_S)
        lo, hi = max(int(te[0]), at_ns - half), min(int(te[-1]), at_ns + half)
        if hi > lo:
            rate = (np.interp(hi, te, e) - np.interp(lo, te, e)) / ((hi - lo) / NS_PER_S)
            candidates.append(float(rate))
    p_keep = np.isfinite(power_w)
    if p_keep.any():
        tp, p = t_ns[p_keep], np.asarray(power_w, dtype=np.float64)[p_keep]
        candidates.append(float(p[int(np.argmin(np.abs(tp - at_ns)))]))
    return max(candidates) if candidates else None


@dataclass(frozen=True)
class EdgeUncertainty:
    joules: float | None  # None: no figure (no counter, or no power known at an edge)
    period: CounterPeriod | None
    reason: str


def edge_uncertainty(t_ns: np.ndarray, energy_j: np.ndarray, power_w: np.ndarray, start_ns: int, end_ns: int,
                     default_period_s: float = DEFAULT_COUNTER_PERIOD_S) -> EdgeUncertainty:
    """The window's edge uncertainty in joules: counter period times the power at each edge, summed over both."""
    if not np.isfinite(np.asarray(energy_j, dtype=np.float64)).any():
        return EdgeUncertainty(None, None, "no energy counter: power samples integrated, no counter steps")
    period = counter_period(t_ns, energy_j, default_period_s)
    watts = [power_near(t_ns, energy_j, power_w, edge, period.seconds) for edge in (start_ns, end_ns)]
    if any(w is None for w in watts):
        return EdgeUncertainty(None, period, "no power known at a window edge")
    joules = sum(max(0.0, w) * period.seconds for w in watts if w is not None)
    return EdgeUncertainty(joules, period, f"{period.seconds * 1e3:.1f} ms counter period x "
                           f"{watts[0]:.0f} W at the start + {watts[1]:.0f} W at the end")
