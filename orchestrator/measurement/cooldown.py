"""Cooldown between runs: a fixed wait, or (adaptive) until the GPUs are back near their idle temperature and power.

The decision is a pure function of the latest readings, the idle baseline and the settings; the wait around it
takes its clock and sleep as parameters, so both are tested without hardware and without waiting.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.planning.config import Cooldown
from orchestrator.measurement.sensors.base import Reading, Sensor

POLL_S = 0.5
# Consecutive polls that must all be within the margins: one low reading of a noisy sensor is not a cool GPU.
SETTLE_POLLS = 3


@dataclass(frozen=True)
class IdleReference:
    """Per GPU channel, what the idle baseline measured: the state an adaptive cooldown waits to get back to."""

    temperature_c: dict[str, float]
    power_w: dict[str, float]

    @property
    def channels(self) -> set[str]:
        return set(self.temperature_c) | set(self.power_w)


@dataclass(frozen=True)
class Verdict:
    done: bool
    outcome: str  # "waiting", "idle" (back within the margins) or "limit" (max_seconds reached first)
    detail: str


def idle_reference(baseline: dict[str, Any], gpu_channels: Iterable[str]) -> IdleReference:
    gpus = set(gpu_channels)
    temperature = {c: v for c, v in (baseline.get("idle_temperature_c") or {}).items() if c in gpus}
    power = {c: v for c, v in (baseline.get("idle_w") or {}).items() if c in gpus}
    return IdleReference(temperature, power)


def adaptive_unavailable(gpu_channels: Iterable[str], gpu_reason: str, baseline: dict[str, Any] | None) -> str | None:
    """Why an adaptive cooldown cannot watch the GPUs here (it then waits the fixed minimum), or None."""
    if not set(gpu_channels):
        return f"no readable GPU sensor ({gpu_reason})"
    if not baseline or baseline.get("status") != "ok":
        return f"no idle baseline ({(baseline or {}).get('reason', 'not measured')})"
    if not idle_reference(baseline, gpu_channels).channels:
        return "the idle baseline has no GPU temperature or power to return to"
    return None


def power_ceiling(idle_w: float, settings: Cooldown) -> float:
    return idle_w + max(settings.power_margin_w, settings.power_margin_fraction * idle_w)


def still_warm(readings: Sequence[Reading], reference: IdleReference, settings: Cooldown) -> list[str]:
    """What keeps one poll's GPUs from counting as idle; empty when every watched figure is within its margin."""
    by_channel = {r.channel: r for r in readings}
    warm = []
    for channel in sorted(reference.channels):
        reading = by_channel.get(channel)
        idle_t, idle_w = reference.temperature_c.get(channel), reference.power_w.get(channel)
        if reading is None:
            warm.append(f"{channel}: no reading")
            continue
        if idle_t is not None:
            if reading.temperature_c is None:
                warm.append(f"{channel}: no temperature reading")
            elif reading.temperature_c > idle_t + settings.temperature_margin_c:
                warm.append(f"{channel} {reading.temperature_c:.0f} °C (idle {idle_t:.0f} °C)")
        if idle_w is not None:
            if reading.power_w is None:
                warm.append(f"{channel}: no power reading")
            elif reading.power_w > power_ceiling(idle_w, settings):
                warm.append(f"{channel} {reading.power_w:.0f} W (idle {idle_w:.0f} W)")
    return warm


def cooldown_verdict(elapsed_s: float, recent: Sequence[Sequence[Reading]], reference: IdleReference,
                     settings: Cooldown) -> Verdict:
    """recent: the latest polls, oldest first (a failed read clears them, so nothing is judged across a gap)."""
    if elapsed_s < settings.seconds:
        return Verdict(False, "waiting", f"minimum cooldown of {settings.seconds:g} s")
    last = list(recent)[-SETTLE_POLLS:]
    warm = [w for poll in last for w in still_warm(poll, reference, settings)]
    if len(last) >= SETTLE_POLLS and not warm:
        return Verdict(True, "idle", "back within the margins of the idle baseline")
    if elapsed_s >= settings.max_seconds:
        now = still_warm(last[-1], reference, settings) if last else ["no readable poll"]
        return Verdict(True, "limit", "; ".join(now or ["not settled for long enough"]))
    return Verdict(False, "waiting", "; ".join(warm) or "settling")


def gpu_state(readings: Sequence[Reading]) -> dict[str, dict[str, float | None]]:
    return {r.channel: {"temperature_c": r.temperature_c, "power_w": r.power_w} for r in readings}


def wait_until_idle(sensors: Sequence[Sensor], reference: IdleReference, settings: Cooldown,
                    clock: Callable[[], float] = time.monotonic,
                    sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    start = clock()
    recent: deque[list[Reading]] = deque(maxlen=SETTLE_POLLS)
    error = ""
    while True:
        try:
            recent.append([r for s in sensors for r in s.read() if r.channel in reference.channels])
        except Exception as exc:  # SensorReadError by contract: the poll is unusable, the wait goes on
            recent.clear()
            error = str(exc) or type(exc).__name__
        elapsed = clock() - start
        verdict = cooldown_verdict(elapsed, recent, reference, settings)
        if verdict.done:
            detail = verdict.detail + (f"; last read error: {error}" if error and verdict.outcome == "limit" else "")
            return {"mode": "adaptive", "outcome": verdict.outcome, "seconds": round(elapsed, 3), "detail": detail,
                    "gpus": gpu_state(recent[-1]) if recent else {}}
        sleep(min(POLL_S, max(settings.max_seconds - elapsed, 0.0)))


def fixed_wait(seconds: float, sleep: Callable[[float], None] = time.sleep, fallback: str | None = None) -> dict[str, Any]:
    if seconds > 0:
        sleep(seconds)
    facts: dict[str, Any] = {"mode": "fixed", "outcome": "fixed", "seconds": seconds, "detail": ""}
    if fallback:
        facts.update(mode="adaptive", outcome="fallback", detail=f"waited the fixed minimum: {fallback}")
    return facts
