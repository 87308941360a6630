"""Cooldown between runs: the pure verdict, the adaptive wait on a fake GPU that cools, and the honest fallback."""
import math

import pytest

from testkit.fake_nvml import FakeGpu, FakeNvml
from orchestrator.planning.config import Cooldown
from orchestrator.measurement.cooldown import (SETTLE_POLLS, IdleReference, adaptive_unavailable, cooldown_verdict, fixed_wait,
                                   idle_reference, power_ceiling, still_warm, wait_until_idle)
from orchestrator.measurement.sensors.base import Reading
from orchestrator.measurement.sensors.nvml import NvmlSensor

SETTINGS = Cooldown(mode="adaptive", seconds=5.0, max_seconds=60.0, temperature_margin_c=3.0, power_margin_w=10.0,
                    power_margin_fraction=0.1)
IDLE = IdleReference(temperature_c={"gpu-0": 35.0}, power_w={"gpu-0": 80.0})


def gpu(temperature, power, channel="gpu-0"):
    return Reading(channel, None, power_w=power, temperature_c=temperature)


def polls(*readings):
    return [[r] for r in readings]


def test_power_margin_is_the_larger_of_watts_and_fraction():
    assert power_ceiling(80.0, SETTINGS) == pytest.approx(90.0)  # 10 W > 8 W
    assert power_ceiling(300.0, SETTINGS) == pytest.approx(330.0)  # 10 % > 10 W


def test_still_warm_names_each_figure_above_its_margin():
    assert still_warm([gpu(38.0, 90.0)], IDLE, SETTINGS) == []  # exactly at both margins
    assert still_warm([gpu(38.5, 85.0)], IDLE, SETTINGS) == ["gpu-0 38 °C (idle 35 °C)"]
    assert still_warm([gpu(36.0, 150.0)], IDLE, SETTINGS) == ["gpu-0 150 W (idle 80 W)"]
    assert still_warm([gpu(None, 85.0)], IDLE, SETTINGS) == ["gpu-0: no temperature reading"]
    assert still_warm([gpu(36.0, 85.0, channel="gpu-1")], IDLE, SETTINGS) == ["gpu-0: no reading"]


def test_a_figure_the_baseline_lacks_is_not_watched():
    power_only = IdleReference(temperature_c={}, power_w={"gpu-0": 80.0})
    assert still_warm([gpu(90.0, 85.0)], power_only, SETTINGS) == []


def test_verdict_waits_the_minimum_even_when_idle():
    verdict = cooldown_verdict(4.9, polls(*[gpu(35.0, 80.0)] * SETTLE_POLLS), IDLE, SETTINGS)
    assert not verdict.done and "minimum" in verdict.detail


def test_verdict_needs_consecutive_idle_polls():
    idle = gpu(35.0, 80.0)
    assert not cooldown_verdict(10.0, polls(*[idle] * (SETTLE_POLLS - 1)), IDLE, SETTINGS).done
    one_dip = polls(gpu(45.0, 80.0), *[idle] * (SETTLE_POLLS - 1))
    verdict = cooldown_verdict(10.0, one_dip, IDLE, SETTINGS)
    assert not verdict.done and "45 °C" in verdict.detail
    verdict = cooldown_verdict(10.0, polls(gpu(45.0, 80.0), *[idle] * SETTLE_POLLS), IDLE, SETTINGS)
    assert verdict.done and verdict.outcome == "idle"


def test_verdict_stops_at_the_limit_and_says_what_is_still_warm():
    verdict = cooldown_verdict(60.0, polls(*[gpu(50.0, 80.0)] * SETTLE_POLLS), IDLE, SETTINGS)
    assert verdict.done and verdict.outcome == "limit" and verdict.detail == "gpu-0 50 °C (idle 35 °C)"
    assert cooldown_verdict(60.0, [], IDLE, SETTINGS).detail == "no readable poll"


class CoolingGpu:
    """A fake clock and sleep; each sleep cools the fake GPU towards idle (35 °C) with a 20 s time constant."""

    def __init__(self, fake: FakeGpu, hot_c: float, idle_c: float = 35.0, tau_s: float = 20.0) -> None:
        self.fake, self.hot, self.idle, self.tau, self.now = fake, hot_c, idle_c, tau_s, 1000.0
        self.start = self.now
        fake.temperature_c = int(hot_c)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        t = self.now - self.start
        self.fake.temperature_c = round(self.idle + (self.hot - self.idle) * math.exp(-t / self.tau))


def test_adaptive_wait_ends_when_the_gpu_is_back_near_idle():
    fake = FakeGpu(power_mw=85_000)
    sim = CoolingGpu(fake, hot_c=70.0)
    sensor = NvmlSensor(FakeNvml([fake]))
    facts = wait_until_idle([sensor], IDLE, SETTINGS, clock=sim.clock, sleep=sim.sleep)
    # 35 + 35 exp(-t/20) <= 38 after t = 20 ln(35/3) = 49 s (rounded readings), then settled over the next polls.
    assert facts["outcome"] == "idle" and facts["mode"] == "adaptive"
    assert 45.0 <= facts["seconds"] <= 53.0
    assert facts["gpus"]["gpu-0"]["temperature_c"] <= 38.0
    assert facts["gpus"]["gpu-0"]["power_w"] == pytest.approx(85.0)


def test_adaptive_wait_gives_up_at_the_limit():
    fake = FakeGpu(power_mw=85_000)
    sim = CoolingGpu(fake, hot_c=90.0, tau_s=600.0)
    facts = wait_until_idle([NvmlSensor(FakeNvml([fake]))], IDLE, SETTINGS, clock=sim.clock, sleep=sim.sleep)
    assert facts["outcome"] == "limit" and facts["seconds"] == pytest.approx(60.0)
    assert "°C (idle 35 °C)" in facts["detail"]


def test_a_lost_gpu_is_reported_not_taken_for_idle():
    fake = FakeGpu(power_mw=85_000, temperature_c=35)
    sensor = NvmlSensor(FakeNvml([fake]))
    fake.lost = True
    sim_now = [0.0]

    def sleep(seconds):
        sim_now[0] += seconds

    facts = wait_until_idle([sensor], IDLE, SETTINGS, clock=lambda: sim_now[0], sleep=sleep)
    assert facts["outcome"] == "limit" and "NVMLError_GpuIsLost" in facts["detail"]


def test_fixed_wait_sleeps_its_seconds_and_a_fallback_says_why():
    slept = []
    assert fixed_wait(7.5, slept.append) == {"mode": "fixed", "outcome": "fixed", "seconds": 7.5, "detail": ""}
    assert fixed_wait(0.0, slept.append)["seconds"] == 0.0
    assert slept == [7.5]
    facts = fixed_wait(10.0, slept.append, fallback="no readable GPU sensor (nvml: not installed)")
    assert facts["outcome"] == "fallback" and "no readable GPU sensor" in facts["detail"] and slept[-1] == 10.0


@pytest.mark.parametrize("channels, baseline, expected", [
    ([], {"status": "ok", "idle_w": {"gpu-0": 80.0}}, "no readable GPU sensor (NVML library not found)"),
    (["gpu-0"], {"status": "unavailable", "reason": "baseline disabled"}, "no idle baseline (baseline disabled)"),
    (["gpu-0"], None, "no idle baseline (not measured)"),
    (["gpu-0"], {"status": "ok", "idle_w": {"package-0": 20.0}}, "has no GPU temperature or power"),
    (["gpu-0"], {"status": "ok", "idle_w": {"gpu-0": 80.0}}, None),
])
def test_why_adaptive_cannot_run(channels, baseline, expected):
    problem = adaptive_unavailable(channels, "NVML library not found", baseline)
    assert (problem is None) if expected is None else (expected in problem)


def test_idle_reference_keeps_only_gpu_channels():
    baseline = {"status": "ok", "idle_w": {"gpu-0": 80.0, "package-0": 20.0}, "idle_temperature_c": {"gpu-0": 33.0}}
    assert idle_reference(baseline, ["gpu-0"]) == IdleReference({"gpu-0": 33.0}, {"gpu-0": 80.0})
