"""Energy accounting of one run: each channel's energy over the runner's window, raw and idle-subtracted.

Pure: takes the sampled series, the window and the idle baseline; says why whenever a figure is missing.
"""
from __future__ import annotations

from typing import Any

from orchestrator.energy import dynamic_energy, short_window_warning, window_energy
from orchestrator.sampler import SampleSeries
from orchestrator.sensors.base import SensorStatus


def unavailable_reason(statuses: list[SensorStatus]) -> str:
    return "no readable energy sensor on this host: " + "; ".join(f"{s.name}: {s.reason}" for s in statuses)


def account_energy(
    series: SampleSeries | None,
    window: tuple[int, int] | None,
    idle_w: dict[str, float] | None,
    statuses: list[SensorStatus],
    gpu_names: list[str],
) -> dict[str, Any]:
    if not any(s.available for s in statuses):
        return {"status": "unavailable", "reason": unavailable_reason(statuses), "channels": {}}
    if window is None or series is None:
        return {"status": "unavailable", "reason": "the run produced no measurement window", "channels": {}}
    start_ns, end_ns = window
    seconds = (end_ns - start_ns) / 1e9
    channels: dict[str, Any] = {}
    for name, energy in window_energy(series, start_ns, end_ns).items():
        idle = (idle_w or {}).get(name)
        dynamic = None
        if energy.energy_j is not None and idle is not None:
            dynamic = dynamic_energy(energy.energy_j, idle, seconds)
        channels[name] = {
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
    valid = [c for c in channels.values() if c["status"] == "ok"]
    status = "ok" if valid and len(valid) == len(channels) else ("partial" if valid else "invalid")
    reasons = sorted({f"{n}: {c['reason']}" for n, c in channels.items() if c["status"] != "ok"})
    return {
        "status": status,
        "reason": "; ".join(reasons),
        "channels": channels,
        "warning": short_window_warning(seconds, gpu_names),
    }
