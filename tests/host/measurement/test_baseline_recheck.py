"""The idle baseline between runs: when it is due again, what it keeps, and which one each run was corrected with."""
import json

import pytest

from testkit.fake_nvml import FakeGpu, FakeNvml
from orchestrator.measurement.baseline import baseline_reference, describe_baseline, idle_temperature, recheck_due
from orchestrator.planning.config import parse_config
from orchestrator.measurement.sampler import SampleSeries
from orchestrator.measurement.sensors.base import Reading, SensorStatus
from orchestrator.measurement.sensors.nvml import NvmlSensor
from orchestrator.results.store import ResultsDir
from orchestrator.execution.measurement_protocol import MeasurementProtocol
from orchestrator.measurement.probe import Measurement

VALID = {"name": "t", "models": ["resnet50"], "batch_sizes": [1], "runtimes": ["torch/native/cpu"]}


@pytest.mark.parametrize("measured_at, now, minutes, due", [
    (100.0, 100.0 + 59.9 * 60, 60, False),
    (100.0, 100.0 + 60 * 60, 60, True),
    (100.0, 1e9, 0, False),  # 0: never re-measured
    (None, 1e9, 60, False),  # never measured: the sweep's first baseline is not a recheck
])
def test_recheck_is_due_after_its_minutes(measured_at, now, minutes, due):
    assert recheck_due(measured_at, now, minutes) is due


def test_idle_temperature_is_the_mean_of_channels_that_report_one():
    series = SampleSeries(channels={"gpu-0": "gpu", "package-0": "cpu"})
    for t, temp in ((0, 40.0), (1, 42.0), (2, None)):
        series.append(t, Reading("gpu-0", 1.0 + t, power_w=80.0, temperature_c=temp), "gpu")
        series.append(t, Reading("package-0", 1.0 + t), "cpu")
    assert idle_temperature(series) == {"gpu-0": pytest.approx(41.0)}


def test_describe_baseline_names_watts_and_temperature():
    line = describe_baseline({"status": "ok", "idle_w": {"gpu-0": 81.25, "package-0": 20.0},
                              "idle_temperature_c": {"gpu-0": 33.4}})
    assert line == "gpu-0 81.2 W 33 °C, package-0 20.0 W"
    assert describe_baseline({"status": "unavailable", "reason": "no readable energy sensor"}) == \
        "unavailable: no readable energy sensor"


def runner_for(tmp_path, sensors, **baseline):
    config = parse_config({**VALID, "baseline": {"seconds": 0.05, **baseline}})
    results = ResultsDir(tmp_path / "out")
    results.root.mkdir(parents=True, exist_ok=True)
    status = SensorStatus("nvml", bool(sensors), "1 GPU(s)" if sensors else "NVML library not found")
    return MeasurementProtocol(config, Measurement(sensors, [status]), results)


def test_recheck_measures_again_and_keeps_the_history(tmp_path):
    fake = FakeGpu(temperature_c=41)
    runner = runner_for(tmp_path, [NvmlSensor(FakeNvml([fake]))], recheck_minutes=30)
    first = runner.measure_baseline()
    assert first["idle_temperature_c"] == {"gpu-0": 41.0}
    assert runner.facts().baseline.model_dump() == {"index": 0, "status": "ok", "measured_at": first["measured_at"]}
    assert runner.recheck_baseline(now=runner._baseline_at + 29 * 60) is None
    fake.temperature_c = 44
    # Just past the interval: (t + 1800) - t is not exactly 1800 in floating point for every monotonic t.
    again = runner.recheck_baseline(now=runner._baseline_at + 30 * 60 + 0.5)
    assert again is not None and again["idle_temperature_c"] == {"gpu-0": 44.0}
    assert runner.facts().baseline.index == 1
    stored = json.loads(runner.results.baseline_path.read_text())
    assert [b["idle_temperature_c"]["gpu-0"] for b in stored["history"]] == [41.0, 44.0]
    assert stored["latest"] == stored["history"][-1]


def test_a_resumed_sweep_numbers_its_baselines_after_the_earlier_ones(tmp_path):
    runner = runner_for(tmp_path, [NvmlSensor(FakeNvml())])
    earlier = {"status": "ok", "idle_w": {"gpu-0": 70.0}, "measured_at": "2026-01-01T00:00:00+00:00"}
    runner.results.write_json(runner.results.baseline_path, {"latest": earlier, "history": [earlier, earlier]})
    runner.measure_baseline()
    assert runner.facts().baseline.index == 2
    assert len(json.loads(runner.results.baseline_path.read_text())["history"]) == 3


def test_without_sensors_nothing_is_rechecked(tmp_path):
    runner = runner_for(tmp_path, [], recheck_minutes=1)
    assert runner.measure_baseline()["status"] == "unavailable"
    assert runner.recheck_baseline(now=1e12) is None
    assert runner.facts().baseline.status == "unavailable"


def test_baseline_reference_is_what_a_record_keeps():
    assert baseline_reference({"status": "ok", "measured_at": "T", "idle_w": {"gpu-0": 1.0}}, 3) == \
        {"index": 3, "status": "ok", "measured_at": "T"}
