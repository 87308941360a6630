"""Window edges (issue 20, point 10): NVML's read order and timestamps, the counter period, the edge uncertainty.

A stepping counter is simulated here exactly: it holds the true energy of its last update tick, like NVML's.
"""
from __future__ import annotations

import numpy as np
import pytest

from testkit.fake_nvml import FakeGpu, FakeNvml
from orchestrator.measurement.accounting import account_energy
from orchestrator.measurement.edges import DEFAULT_COUNTER_PERIOD_S, counter_period, edge_uncertainty
from orchestrator.measurement.energy import counter_at
from orchestrator.measurement.sampler import SampleSeries, Sampler
from orchestrator.measurement.sensors.base import Reading, SensorStatus
from orchestrator.measurement.sensors.nvml import NvmlSensor, probe_nvml
from orchestrator.planning.gpus import GpuDescription
from orchestrator.results.tables import run_row
from testkit.records import make_record

S = 1_000_000_000


class LoggingClock:
    """A monotonic clock that steps 1000 ns a call and logs each call among the NVML calls."""

    def __init__(self, calls: list) -> None:
        self.calls, self.now = calls, 0

    def __call__(self) -> int:
        self.now += 1000
        self.calls.append(("clock", self.now))
        return self.now


def test_nvml_reads_every_energy_counter_first_each_with_its_own_timestamp():
    nvml = FakeNvml([FakeGpu(), FakeGpu(), FakeGpu(energy_mj=None), FakeGpu()])
    sensor = NvmlSensor(nvml)
    sensor.clock = clock = LoggingClock(nvml.calls)
    nvml.calls.clear()
    readings = sensor.read()
    functions = [f for f, _ in nvml.calls if f != "clock"]
    # Three counters (GPU 2 has none), back to back, before any other field of any GPU.
    assert functions[:3] == ["energy"] * 3 and "energy" not in functions[3:], functions
    assert [g for f, g in nvml.calls if f == "energy"] == [0, 1, 3]
    # Each counter is stamped by the clock reads right around its own call: (before + after) // 2.
    stamps = {}
    for k, (function, gpu) in enumerate(nvml.calls):
        if function == "energy":
            before, after = nvml.calls[k - 1], nvml.calls[k + 1]
            assert before[0] == after[0] == "clock"
            stamps[f"gpu-{gpu}"] = (before[1] + after[1]) // 2
    assert {r.channel: r.t_ns for r in readings if r.t_ns is not None} == stamps
    assert len(set(stamps.values())) == 3  # not one timestamp for the whole read
    no_counter = next(r for r in readings if r.channel == "gpu-2")
    assert no_counter.energy_j is None and no_counter.t_ns is None and no_counter.power_w == 150.0
    assert clock.now > max(stamps.values())  # other fields were read after the counters


class _Stamped:
    """A sensor whose readings carry their own timestamps, far from the read's mid-point."""

    name = "nvml"

    def channels(self):
        return {"gpu-0": "gpu", "gpu-1": "gpu"}

    def read(self):
        return [Reading("gpu-0", 1.0, t_ns=111), Reading("gpu-1", 2.0, power_w=5.0)]

    def close(self):
        pass


def test_the_sampler_stamps_a_reading_with_its_own_counter_time_and_the_samples_keep_it(tmp_path):
    ticks = iter(range(1000, 10**9, 1000))
    sampler = Sampler([_Stamped()], interval_s=10.0, clock=lambda: next(ticks))
    sampler.sample_once()
    series = sampler.snapshot()
    assert dict(zip(series.channel, series.t_ns)) == {"gpu-0": 111, "gpu-1": 1500}  # own stamp; else mid-read
    series.write_parquet(tmp_path / "s.parquet")
    assert SampleSeries.read_parquet(tmp_path / "s.parquet").t_ns == series.t_ns


def stepping_counter(period_s: float, watts, sample_s: float, seconds: float, jitter_s: float = 0.004,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, callable]:
    """Samples of a counter that steps every period_s (holding the energy of its last tick), sampled every
    sample_s with jitter; `watts(t_s)` is the true power. Returns t_ns, energy_j, power_w and the true energy."""
    rng = np.random.default_rng(seed)
    fine = np.arange(0, seconds + 1.0, 1e-4)
    true_e = np.concatenate([[0.0], np.cumsum(np.asarray([watts(t) for t in fine[:-1]]) * 1e-4)])

    def truth(t_ns: int) -> float:
        return float(np.interp(t_ns / S, fine, true_e))

    times = np.arange(0.01, seconds, sample_s)
    times = times + rng.uniform(-jitter_s, jitter_s, size=len(times))
    t_ns = (times * S).astype(np.int64)
    energy = np.asarray([truth(int(np.floor(t / S / period_s) * period_s * S)) for t in t_ns])
    power = np.asarray([watts(t / S) for t in t_ns])
    return t_ns, energy, power, truth


@pytest.mark.parametrize("period_s", [0.1, 0.07, 0.2])
def test_the_counter_period_is_measured_from_the_samples(period_s):
    t, e, _, _ = stepping_counter(period_s, lambda t: 400.0, 0.05, 6.0)
    period = counter_period(t, e)
    assert period.source == "measured"
    assert period.seconds == pytest.approx(period_s, rel=0.06), period


def test_a_counter_faster_than_the_sampling_is_bounded_by_the_sampling_interval():
    t, e, _, _ = stepping_counter(0.02, lambda t: 400.0, 0.05, 4.0)
    period = counter_period(t, e)
    assert period.source == "sampling-interval" and period.seconds == pytest.approx(0.05, rel=0.1), period


def test_too_few_steps_fall_back_to_the_stated_default():
    t = np.arange(0, 5) * S // 20
    period = counter_period(t, np.asarray([1.0, 1.0, 2.0, 2.0, 2.0]))
    assert period.source == "default" and period.seconds == DEFAULT_COUNTER_PERIOD_S
    assert "1 time(s)" in period.detail


@pytest.mark.parametrize("period_s, watts", [
    (0.1, lambda t: 420.0 + 30 * np.sin(t * 3)),
    (0.1, lambda t: 80.0 if t < 1.5 else 650.0),  # idle, then load: the start edge sits in the step
    (0.025, lambda t: 300.0),
])
def test_the_truth_lies_within_energy_plus_minus_the_edge_uncertainty(period_s, watts):
    t, e, p, truth = stepping_counter(period_s, watts, 0.05, 6.0, seed=3)
    rng = np.random.default_rng(7)
    widths = []
    for _ in range(200):
        start = int(rng.uniform(0.5, 3.0) * S)
        end = start + int(rng.uniform(0.3, 2.5) * S)
        measured = counter_at(t, e, end) - counter_at(t, e, start)
        edges = edge_uncertainty(t, e, p, start, end)
        true_j = truth(end) - truth(start)
        assert abs(measured - true_j) <= edges.joules + 1e-9, (start, end, measured, true_j, edges)
        widths.append(edges.joules)
    # A bound, not a blanket: about twice power x period (the sum of both edges).
    typical = 2 * period_s * np.mean([watts(x) for x in np.linspace(0.5, 5.5, 50)])
    assert max(widths) <= 3 * max(typical, 2 * 0.05 * 650)


def test_a_channel_without_a_counter_states_no_edge_uncertainty():
    t = np.arange(0, 20) * S // 20
    edges = edge_uncertainty(t, np.full(20, np.nan), np.full(20, 100.0), S // 4, S // 2)
    assert edges.joules is None and edges.period is None and "no energy counter" in edges.reason


GPUS = tuple(GpuDescription(i, "NVIDIA H100", f"GPU-{i}", None, True, True) for i in range(2))


def test_each_window_records_its_edge_uncertainty_per_channel_and_for_the_runs_gpus():
    series = SampleSeries(channels={"gpu-0": "gpu", "gpu-1": "gpu"})
    for name, watts in (("gpu-0", 500.0), ("gpu-1", 100.0)):
        t, e, p, _ = stepping_counter(0.1, lambda s, w=watts: w, 0.05, 4.0, seed=len(name))
        for ti, ei, pi in zip(t, e, p):
            series.append(int(ti), Reading(name, float(ei), power_w=float(pi)), "gpu")
    energy = account_energy(series, (1 * S, 3 * S), {}, [SensorStatus("nvml", True, "2 GPU(s)")], (GPUS[0],))
    own, other = energy.channels["gpu-0"], energy.channels["gpu-1"]
    assert own.counter_period_source == other.counter_period_source == "measured"
    assert own.counter_period_s == pytest.approx(0.1, rel=0.06)
    assert own.edge_uncertainty_j == pytest.approx(2 * 500 * own.counter_period_s, rel=0.02)
    assert other.edge_uncertainty_j == pytest.approx(2 * 100 * other.counter_period_s, rel=0.02)
    assert energy.edge_uncertainty_j == pytest.approx(own.edge_uncertainty_j)  # the run's GPU only
    record = make_record(runtime="torch/native/cuda", channels=energy.channels, window_s=2.0)
    record["energy"]["edge_uncertainty_j"] = energy.edge_uncertainty_j
    row = run_row(record)
    assert row["gpu_edge_uncertainty_j"] == pytest.approx(own.edge_uncertainty_j)
    assert row["edge_uncertainty_gpu-1_j"] == pytest.approx(other.edge_uncertainty_j)


def test_a_journal_written_before_edge_uncertainty_still_reads():
    channels = {"gpu-0": {"domain": "gpu", "status": "ok", "raw_j": 100.0, "dynamic_j": None, "method": "counter",
                          "mean_power_w": 50.0, "assigned": True}}
    row = run_row(make_record(runtime="torch/native/cuda", channels=channels, window_s=2.0))
    assert row["gpu_energy_j"] == pytest.approx(100.0)
    assert row["gpu_edge_uncertainty_j"] is None and row["edge_uncertainty_gpu-0_j"] is None


def test_a_refused_handle_leaves_that_gpu_out_with_the_reason_and_measures_the_others():
    nvml = FakeNvml([FakeGpu(), FakeGpu(handle_refused=True), FakeGpu(name="NVIDIA H100")])
    sensor, status = probe_nvml(nvml)
    assert status.available and sensor is not None
    assert sorted(status.channels) == ["gpu-0", "gpu-2"]
    assert [r.channel for r in sensor.read()] == ["gpu-0", "gpu-2"]
    (refused,) = status.details["refused_gpus"]
    assert refused["index"] == 1 and "NoPermission" in refused["reason"]
    assert "gpu-1 left out" in status.reason and "\n" not in status.reason
    assert [g["index"] for g in status.details["gpus"]] == [0, 2]
    sensor.close()


def test_every_handle_refused_makes_nvml_unavailable_with_the_reason():
    nvml = FakeNvml([FakeGpu(handle_refused=True), FakeGpu(handle_refused=True)])
    sensor, status = probe_nvml(nvml)
    assert sensor is None and not status.available
    assert "refused every GPU's handle" in status.reason and "gpu-0" in status.reason and "gpu-1" in status.reason
    assert nvml.initialised == 0  # NVML shut down again
