from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from testkit.powercap import PowercapTree

from orchestrator.measurement.energy import window_energy
from orchestrator.measurement.sampler import SampleSeries, Sampler
from orchestrator.measurement.sensors.base import Reading, Sensor, SensorReadError
from orchestrator.measurement.sensors.rapl import RaplSensor


class Advancer:
    """Adds uj to a zone every period_s in a thread, like a package drawing constant power."""

    def __init__(self, tree: PowercapTree, zone: str, uj: int, period_s: float) -> None:
        self.tree, self.zone, self.uj, self.period_s = tree, zone, uj, period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.tree.advance(self.zone, self.uj)

    def __enter__(self) -> Advancer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class FlakySensor(Sensor):
    """Wraps a sensor; reads number fail_from..fail_to (1-based) raise SensorReadError."""

    name = "flaky"

    def __init__(self, inner: Sensor, fail_from: int, fail_to: int) -> None:
        self.inner, self.fail_from, self.fail_to, self.reads = inner, fail_from, fail_to, 0

    def channels(self) -> dict[str, str]:
        return self.inner.channels()

    def read(self) -> list[Reading]:
        self.reads += 1
        if self.fail_from <= self.reads <= self.fail_to:
            raise SensorReadError(f"simulated EIO on read {self.reads}")
        return self.inner.read()


class SlowSensor(Sensor):
    name = "slow"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def channels(self) -> dict[str, str]:
        return {"slow-0": "cpu"}

    def read(self) -> list[Reading]:
        time.sleep(self.seconds)
        return [Reading("slow-0", 0.0)]


def test_samples_at_the_interval_and_bracket_the_run(powercap_tree: PowercapTree) -> None:
    interval = 0.02
    sampler = Sampler([RaplSensor(powercap_tree.root)], interval_s=interval)
    with Advancer(powercap_tree, "package-0", 1_000, 0.002):
        sampler.start()
        run_start = time.monotonic_ns()
        time.sleep(0.5)
        run_end = time.monotonic_ns()
        series = sampler.stop()

    t, energy, _ = series.channel_arrays("package-0")
    assert t[0] <= run_start and t[-1] >= run_end  # the synchronous first and final samples
    # 0.5 s at 20 ms: ~25 polls plus the first and final samples; allow for a loaded machine.
    assert 15 <= len(t) <= 30
    gaps = np.diff(t[:-1]) / 1e9  # the final sample comes whenever stop() is called
    assert np.median(gaps) == pytest.approx(interval, rel=0.25)
    assert np.all(np.diff(energy) >= 0) and energy[-1] > 0
    assert set(series.channel) == {"package-0", "dram-0", "package-1"}
    result = window_energy(series, run_start, run_end)["package-0"]
    assert result.status == "ok" and result.energy_j > 0
    assert series.errors == []


def test_read_error_is_recorded_and_sampling_continues(powercap_tree: PowercapTree) -> None:
    flaky = FlakySensor(RaplSensor(powercap_tree.root), fail_from=3, fail_to=5)
    with Sampler([flaky], interval_s=0.01) as sampler:
        time.sleep(0.2)
    series = sampler.series
    assert series is not None
    assert [e.reason for e in series.errors] == [f"simulated EIO on read {n}" for n in (3, 4, 5)]
    assert all(e.channels == ("package-0", "dram-0", "package-1") and e.sensor == "flaky" for e in series.errors)
    t, _, _ = series.channel_arrays("package-0")
    last_error = series.errors[-1].t_ns
    assert np.count_nonzero(t > last_error) >= 5  # it went on
    # A window across the failures is invalid; one entirely after them is fine.
    across = window_energy(series, int(t[0]), int(t[-1]))["package-0"]
    assert across.status == "invalid" and "simulated EIO" in across.reason
    after = t[t > last_error]
    assert window_energy(series, int(after[1]), int(after[-1]))["package-0"].status == "ok"


def test_stop_is_immediate_even_with_a_long_interval(powercap_tree: PowercapTree) -> None:
    sampler = Sampler([RaplSensor(powercap_tree.root)], interval_s=10.0)
    sampler.start()
    began = time.monotonic()
    series = sampler.stop()
    assert time.monotonic() - began < 1.0
    assert len(series.channel_arrays("package-0")[0]) == 2  # first and final
    assert not sampler.running


def test_ticks_do_not_drift_with_slow_reads() -> None:
    # Each read takes 10 ms; at a 20 ms interval, scheduling "20 ms after the last read" would give ~20 reads in
    # 0.6 s, absolute ticks ~30.
    sampler = Sampler([SlowSensor(0.01)], interval_s=0.02)
    sampler.start()
    time.sleep(0.6)
    series = sampler.stop()
    assert len(series) >= 25


def test_series_to_polars_and_parquet_round_trip(powercap_tree: PowercapTree, tmp_path: Path) -> None:
    empty = SampleSeries(channels={"package-0": "cpu"})
    frame = empty.to_polars()
    assert frame.height == 0 and frame.schema == SampleSeries.polars_schema()

    flaky = FlakySensor(RaplSensor(powercap_tree.root), fail_from=2, fail_to=2)
    sampler = Sampler([flaky], interval_s=10.0)
    sampler.start()
    sampler.sample_once()  # the failing read
    series = sampler.stop()
    path = tmp_path / "samples.parquet"
    series.write_parquet(path)
    back = SampleSeries.read_parquet(path)
    assert back.to_polars().equals(series.to_polars())
    assert back.errors == series.errors and back.channels == series.channels
    assert back.to_polars().height == 6  # 2 reads x 3 channels
