"""Idle baseline: what the host draws doing nothing, measured before a sweep and subtracted from each run."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import numpy as np

from orchestrator.measurement.energy import idle_power
from orchestrator.measurement.sampler import Sampler, SampleSeries
from orchestrator.measurement.sensors.base import Sensor


def measure_idle(sensors: list[Sensor], seconds: float, interval_s: float) -> dict[str, Any]:
    if not sensors:
        return {"status": "unavailable", "reason": "no readable energy sensor", "idle_w": {}}
    if seconds <= 0:
        return {"status": "unavailable", "reason": "baseline disabled in the config (baseline.seconds = 0)", "idle_w": {}}
    sampler = Sampler(sensors, interval_s=interval_s)
    sampler.start()
    time.sleep(seconds)
    series = sampler.stop()
    return {
        "status": "ok",
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": seconds,
        "idle_w": idle_power(series),
        # What an adaptive cooldown waits to get back to.
        "idle_temperature_c": idle_temperature(series),
        "errors": [str(e) for e in series.errors],
    }


def idle_temperature(series: SampleSeries) -> dict[str, float]:
    """Mean temperature per channel that reports one (GPUs); a channel without readings is left out, not 0."""
    out = {}
    for channel in series.channels:
        values = series.channel_column(channel, "temperature_c")
        if np.isfinite(values).any():
            out[channel] = float(np.nanmean(values))
    return out


def recheck_due(measured_at_s: float | None, now_s: float, recheck_minutes: float) -> bool:
    """Whether the idle baseline is old enough to be measured again (monotonic seconds; 0 minutes: never)."""
    return recheck_minutes > 0 and measured_at_s is not None and now_s - measured_at_s >= recheck_minutes * 60


def baseline_reference(baseline: dict[str, Any], index: int) -> dict[str, Any]:
    """What a run record keeps of the baseline its dynamic energy was computed with: its place in the history."""
    return {"index": index, "status": baseline.get("status"), "measured_at": baseline.get("measured_at")}


def describe_baseline(baseline: dict[str, Any]) -> str:
    """One line for the console: idle watts per channel, and the temperature where a channel has one."""
    if baseline.get("status") != "ok":
        return f"{baseline.get('status')}: {baseline.get('reason')}"
    temperature = baseline.get("idle_temperature_c") or {}
    return ", ".join(f"{k} {v:.1f} W" + (f" {temperature[k]:.0f} °C" if k in temperature else "")
                     for k, v in baseline.get("idle_w", {}).items()) or "no channel gave an idle figure"
