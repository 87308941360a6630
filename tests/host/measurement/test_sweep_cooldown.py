"""MeasurementProtocol.cooldown: fixed, adaptive on a fake GPU, and the fallback said once; each next record keeps it."""
from testkit.fake_nvml import FakeGpu, FakeNvml
from orchestrator.planning.config import parse_config
from orchestrator.measurement.sensors.base import SensorStatus
from orchestrator.measurement.sensors.nvml import NvmlSensor
from orchestrator.results.store import ResultsDir
from orchestrator.execution.measurement_protocol import MeasurementProtocol
from orchestrator.measurement.probe import Measurement

VALID = {"name": "t", "models": ["resnet50"], "batch_sizes": [1], "runtimes": ["torch/native/cpu"]}


class FakeTime:
    def __init__(self):
        self.now, self.slept = 0.0, []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def make_runner(tmp_path, sensors, cooldown):
    config = parse_config({**VALID, "cooldown": cooldown, "baseline": {"seconds": 0.05}})
    results = ResultsDir(tmp_path / "out")
    results.root.mkdir(parents=True, exist_ok=True)
    status = SensorStatus("nvml", bool(sensors), "1 GPU(s)" if sensors else "NVML library not found")
    return MeasurementProtocol(config, Measurement(sensors, [status]), results)


def test_fixed_cooldown_waits_its_seconds(tmp_path, logged_lines):
    fake_time = FakeTime()
    runner = make_runner(tmp_path, [], {"seconds": 4.0})
    facts = runner.cooldown(sleep=fake_time.sleep, clock=fake_time.clock)
    assert facts == {"mode": "fixed", "outcome": "fixed", "seconds": 4.0, "detail": ""}
    assert fake_time.slept == [4.0] and runner.facts().cooldown_before == facts and not logged_lines


def test_adaptive_without_a_gpu_waits_the_minimum_and_says_why_once(tmp_path, logged_lines):
    fake_time = FakeTime()
    runner = make_runner(tmp_path, [], {"mode": "adaptive", "seconds": 6.0})
    runner.measure_baseline()
    first = runner.cooldown(sleep=fake_time.sleep, clock=fake_time.clock)
    second = runner.cooldown(sleep=fake_time.sleep, clock=fake_time.clock)
    assert fake_time.slept == [6.0, 6.0]  # the minimum, not zero
    assert first["outcome"] == second["outcome"] == "fallback"
    assert "no readable GPU sensor (NVML library not found)" in first["detail"]
    assert len(logged_lines) == 1 and "waits the fixed minimum of 6 s" in logged_lines[0] and "NVML library not found" in logged_lines[0]


def test_adaptive_cooldown_watches_the_gpu_until_it_is_back_at_idle(tmp_path, logged_lines):
    fake = FakeGpu(temperature_c=35, power_mw=5_000)  # the fake's counter stands still: idle reads 0 W
    fake_time = FakeTime()
    runner = make_runner(tmp_path, [NvmlSensor(FakeNvml([fake]))], {"mode": "adaptive", "seconds": 1.0})
    runner.measure_baseline()
    fake.temperature_c = 60

    def sleep(seconds):
        fake_time.sleep(seconds)
        if fake_time.now >= 20.0:
            fake.temperature_c = 36

    facts = runner.cooldown(sleep=sleep, clock=fake_time.clock)
    assert facts["mode"] == "adaptive" and facts["outcome"] == "idle"
    assert 20.0 <= facts["seconds"] <= 22.0
    assert runner.facts().cooldown_before["gpus"]["gpu-0"]["temperature_c"] == 36.0
    assert not logged_lines


def test_adaptive_cooldown_that_hits_its_limit_is_logged(tmp_path, logged_lines):
    fake = FakeGpu(temperature_c=35, power_mw=5_000)
    fake_time = FakeTime()
    runner = make_runner(tmp_path, [NvmlSensor(FakeNvml([fake]))],
                         {"mode": "adaptive", "seconds": 1.0, "max_seconds": 30.0})
    runner.measure_baseline()
    fake.temperature_c = 60
    facts = runner.cooldown(sleep=fake_time.sleep, clock=fake_time.clock)
    assert facts["outcome"] == "limit" and facts["seconds"] == 30.0
    assert logged_lines == ["cooldown: 30 s limit reached before idle: gpu-0 60 °C (idle 35 °C)"]
