"""Energy accounting of one run: each channel's energy over the runner's window, raw and idle-subtracted.

Pure: takes the sampled series, the window, the idle baseline and which GPUs the run was given; says why whenever
a figure is missing. A GPU channel is marked `assigned` when its GPU was handed to the run: energy per inference
counts those, the node's other GPUs are kept beside them (orchestrator/results/tables.py).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from orchestrator.measurement.edges import edge_uncertainty
from orchestrator.measurement.energy import dynamic_energy, short_window_warning, window_energy
from orchestrator.planning.gpus import GpuDescription
from orchestrator.measurement.sampler import SampleSeries
from orchestrator.measurement.sensors.base import SensorStatus
from orchestrator.results.payloads import Energy, EnergyChannel


def unavailable_reason(statuses: list[SensorStatus]) -> str:
    return "no readable energy sensor on this host: " + "; ".join(f"{s.name}: {s.reason}" for s in statuses)


def window_temperature(series: SampleSeries, channel: str, start_ns: int, end_ns: int) -> dict[str, float] | None:
    """The channel's temperature at the samples nearest the window's edges, and its maximum inside: or None."""
    t = series.channel_column(channel, "t_ns")
    temperature = series.channel_column(channel, "temperature_c")
    known = np.isfinite(temperature)
    if not known.any():
        return None
    t, temperature = t[known], temperature[known]
    inside = (t >= start_ns) & (t <= end_ns)
    start = int(np.argmin(np.abs(t - start_ns)))
    end = int(np.argmin(np.abs(t - end_ns)))
    # The edge readings can be samples just outside the window; the maximum covers them too, so that a
    # reader never sees a "max" below the "end" printed beside it.
    edges = max(float(temperature[start]), float(temperature[end]))
    peak = max(float(temperature[inside].max()), edges) if inside.any() else edges
    return {"start": float(temperature[start]), "end": float(temperature[end]), "max": peak}


def account_energy(
    series: SampleSeries | None,
    window: tuple[int, int] | None,
    idle_w: dict[str, float] | None,
    statuses: list[SensorStatus],
    run_gpus: Sequence[GpuDescription] = (),
) -> Energy:
    if not any(s.available for s in statuses):
        return Energy.unavailable(unavailable_reason(statuses))
    if window is None or series is None:
        return Energy.unavailable("the run produced no measurement window")
    start_ns, end_ns = window
    seconds = (end_ns - start_ns) / 1e9
    assigned = {g.channel for g in run_gpus}
    channels: dict[str, EnergyChannel] = {}
    for name, energy in window_energy(series, start_ns, end_ns).items():
        idle = (idle_w or {}).get(name)
        dynamic = None
        if energy.energy_j is not None and idle is not None:
            dynamic = dynamic_energy(energy.energy_j, idle, seconds)
        facts: dict[str, Any] = {
            "domain": energy.domain,
            "status": energy.status,
            "raw_j": energy.energy_j,
            "dynamic_j": dynamic,
            "idle_w": idle,
            "method": energy.method,
            "mean_power_w": energy.mean_power_w,
            "samples_in_window": energy.samples_in_window,
            "reason": energy.reason or ("no idle baseline for this channel" if dynamic is None and energy.energy_j is not None else ""),
        }
        if energy.domain == "gpu":
            facts["assigned"] = name in assigned
            facts["temperature_c"] = window_temperature(series, name, start_ns, end_ns)
            facts.update(_edge_facts(series, name, start_ns, end_ns) if energy.status == "ok" else
                         {"edge_uncertainty_j": None, "counter_period_s": None,
                          "counter_period_source": None, "edge_note": "no energy for this window"})
        channels[name] = EnergyChannel.model_validate(facts)
    return Energy.accounted(channels, short_window_warning(seconds, run_gpus))


def _edge_facts(series: SampleSeries, channel: str, start_ns: int, end_ns: int) -> dict[str, Any]:
    t, energy, power = series.channel_arrays(channel)
    edges = edge_uncertainty(t, energy, power, start_ns, end_ns)
    return {"edge_uncertainty_j": edges.joules,
            "counter_period_s": edges.period.seconds if edges.period else None,
            "counter_period_source": edges.period.source if edges.period else None,
            "edge_note": f"{edges.reason}; period: {edges.period.detail}" if edges.period else edges.reason}
