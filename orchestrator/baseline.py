"""Idle baseline: what the host draws doing nothing, measured before a sweep and subtracted from each run."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from orchestrator.energy import idle_power
from orchestrator.sampler import Sampler
from orchestrator.sensors.base import Sensor


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
        "errors": [str(e) for e in series.errors],
    }
