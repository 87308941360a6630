from __future__ import annotations

import numpy as np
import pytest

from orchestrator.planning.gpus import GpuDescription, power_reading_is_averaged
from orchestrator.measurement.energy import (
    WindowNotCovered,
    counter_at,
    dynamic_energy,
    idle_power,
    integrate_power,
    short_window_warning,
    window_energy,
)
from orchestrator.measurement.sampler import SampleError, SampleSeries
from orchestrator.measurement.sensors.base import Reading

S = 1_000_000_000


def series_of(channel: str, domain: str, rows: list[tuple[float, float | None, float | None]]) -> SampleSeries:
    """rows: (t in s, energy J or None, power W or None)."""
    series = SampleSeries(channels={channel: domain})
    for t, e, p in rows:
        series.append(int(t * S), Reading(channel, e, power_w=p), domain)
    return series


COUNTER = [(0.0, 0.0, None), (1.0, 10.0, None), (2.0, 30.0, None), (3.0, 60.0, None)]
POWER = [(0.0, None, 10.0), (1.0, None, 20.0), (2.0, None, 40.0), (3.0, None, 40.0)]


def test_counter_at_interpolates_and_refuses_to_extrapolate() -> None:
    t = np.array([0, S, 2 * S], dtype=np.int64)
    e = np.array([0.0, 10.0, 30.0])
    assert counter_at(t, e, S // 4) == pytest.approx(2.5)  # 0 + 10 * 0.25
    assert counter_at(t, e, S) == 10.0  # exactly on a sample
    assert counter_at(t, e, 2 * S) == 30.0
    with pytest.raises(WindowNotCovered):
        counter_at(t, e, -1)
    with pytest.raises(WindowNotCovered):
        counter_at(t, e, 2 * S + 1)


def test_counter_at_keeps_nanosecond_precision_late_after_boot() -> None:
    # ~200 days of uptime: 1.7e16 ns is past float64's exact integers; the fraction must still be right.
    base = 17_280_000_000_000_000
    t = np.array([base, base + 1_000], dtype=np.int64)
    assert counter_at(t, np.array([0.0, 1.0]), base + 1) == pytest.approx(0.001)


def test_window_energy_counter_interpolated_at_both_edges() -> None:
    series = series_of("package-0", "cpu", COUNTER)
    result = window_energy(series, int(0.5 * S), int(2.5 * S))["package-0"]
    # E(0.5 s) = 0 + (10 - 0) * 0.5 = 5 J; E(2.5 s) = 30 + (60 - 30) * 0.5 = 45 J -> 45 - 5 = 40 J over 2 s = 20 W.
    assert result.status == "ok" and result.method == "counter" and result.domain == "cpu"
    assert result.energy_j == pytest.approx(40.0)
    assert result.mean_power_w == pytest.approx(20.0)
    assert result.samples_in_window == 2  # the samples at 1 s and 2 s


def test_integrate_power_trapezoid_with_edges_interpolated() -> None:
    t = np.array([0, S, 2 * S, 3 * S], dtype=np.int64)
    p = np.array([10.0, 20.0, 40.0, 40.0])
    # p(0.5) = 15 W, p(2.5) = 40 W.
    # [0.5, 1]: 0.5 * (15 + 20) / 2 = 8.75; [1, 2]: 1 * (20 + 40) / 2 = 30; [2, 2.5]: 0.5 * (40 + 40) / 2 = 20
    # -> 58.75 J
    assert integrate_power(t, p, int(0.5 * S), int(2.5 * S)) == pytest.approx(58.75)
    # Inside one interval: [0.25, 0.75]: p = 12.5 and 17.5 -> 0.5 * 15 = 7.5 J
    assert integrate_power(t, p, int(0.25 * S), int(0.75 * S)) == pytest.approx(7.5)


def test_window_energy_falls_back_to_power_integral_without_counter() -> None:
    series = series_of("gpu-0", "gpu", POWER)
    result = window_energy(series, int(0.5 * S), int(2.5 * S))["gpu-0"]
    assert result.status == "ok" and result.method == "power-integral"
    assert result.energy_j == pytest.approx(58.75)  # as computed above
    assert result.mean_power_w == pytest.approx(58.75 / 2)


def test_counter_is_preferred_over_power_when_both_exist() -> None:
    # Counter says 40 J for [0.5, 2.5] (see above); power samples of a constant 1000 W must not be used.
    rows = [(t, e, 1000.0) for t, e, _ in COUNTER]
    result = window_energy(series_of("gpu-0", "gpu", rows), int(0.5 * S), int(2.5 * S))["gpu-0"]
    assert result.method == "counter" and result.energy_j == pytest.approx(40.0)


@pytest.mark.parametrize("start,end", [(-0.5, 2.0), (1.0, 3.5), (-1.0, 4.0)])
def test_window_not_covered_is_invalid_never_zero(start: float, end: float) -> None:
    series = series_of("package-0", "cpu", COUNTER)
    result = window_energy(series, int(start * S), int(end * S))["package-0"]
    assert result.status == "invalid"
    assert result.energy_j is None and result.method is None and result.mean_power_w is None
    assert "not covered" in result.reason


def test_channel_without_any_sample_is_invalid() -> None:
    series = series_of("package-0", "cpu", COUNTER)
    series.channels["gpu-0"] = "gpu"  # known channel, never read successfully
    result = window_energy(series, 0, S)["gpu-0"]
    assert result.status == "invalid" and result.energy_j is None


@pytest.mark.parametrize(
    "error_at,channel,valid",
    [
        (1.5, "package-0", False),  # inside [1.2, 2.5]
        (1.1, "package-0", False),  # between the last sample before start (1 s) and the start (1.2 s)
        (2.8, "package-0", False),  # between the end (2.5 s) and the first sample after it (3 s)
        (0.5, "package-0", True),  # before the sample that bounds the window: irrelevant
        (1.5, "dram-0", True),  # another channel's failure
    ],
)
def test_read_error_around_window(error_at: float, channel: str, valid: bool) -> None:
    series = series_of("package-0", "cpu", COUNTER)
    series.errors.append(SampleError(int(error_at * S), "rapl", (channel,), "EIO"))
    result = window_energy(series, int(1.2 * S), int(2.5 * S))["package-0"]
    if valid:
        # E(2.5) = 45 J, E(1.2) = 10 + 20 * 0.2 = 14 J -> 31 J
        assert result.status == "ok" and result.energy_j == pytest.approx(31.0)
    else:
        assert result.status == "invalid" and result.energy_j is None
        assert "read error" in result.reason and "EIO" in result.reason


def test_backwards_counter_only_invalidates_windows_it_falls_in() -> None:
    series = series_of("package-0", "cpu", COUNTER)
    series.backwards[1] = True  # fell between 0 s and 1 s
    assert window_energy(series, int(0.5 * S), int(1.5 * S))["package-0"].status == "invalid"
    after = window_energy(series, S, 3 * S)["package-0"]
    assert after.status == "ok" and after.energy_j == pytest.approx(50.0)  # 60 - 10


def test_window_must_not_end_before_it_starts() -> None:
    with pytest.raises(ValueError):
        window_energy(series_of("package-0", "cpu", COUNTER), 2 * S, S)


def test_idle_power_counter_and_power_fallback() -> None:
    series = series_of("package-0", "cpu", [(0.0, 0.0, None), (1.0, 10.0, None), (3.0, 30.0, None)])
    series.channels.update({"gpu-0": "gpu", "gpu-1": "gpu"})  # gpu-1 never read: no idle figure rather than 0 W
    for t, p in ((0.0, 10.0), (1.0, 20.0), (2.0, 30.0)):
        series.append(int(t * S), Reading("gpu-0", None, power_w=p), "gpu")

    idle = idle_power(series)
    # package-0: (30 - 0) J / 3 s = 10 W.
    # gpu-0: time-weighted mean power: ((10 + 20) / 2 + (20 + 30) / 2) J / 2 s = 40 / 2 = 20 W.
    assert idle == pytest.approx({"package-0": 10.0, "gpu-0": 20.0})


def test_dynamic_energy_keeps_negative_values() -> None:
    assert dynamic_energy(40.0, 10.0, 2.0) == pytest.approx(20.0)  # 40 - 10 * 2
    assert dynamic_energy(15.0, 10.0, 2.0) == pytest.approx(-5.0)  # below the idle baseline: kept, not clipped


@pytest.mark.parametrize(
    "name,averaged",
    [
        ("NVIDIA H100 80GB HBM3", True),
        ("NVIDIA H200", True),
        ("NVIDIA H20", True),
        ("NVIDIA GH200 480GB", True),
        ("NVIDIA L4", True),
        ("NVIDIA L40S", True),
        ("NVIDIA A10", True),
        ("NVIDIA A10G", True),
        ("NVIDIA A40", True),
        ("NVIDIA RTX A6000", True),
        ("NVIDIA GeForce RTX 3090", True),
        ("NVIDIA GeForce RTX 4090", True),
        ("NVIDIA GeForce RTX 5080", True),
        ("NVIDIA RTX 6000 Ada Generation", True),
        ("NVIDIA B200", True),
        ("NVIDIA A100-SXM4-80GB", False),  # GA100: instantaneous per NVIDIA, and "A10" must not match it
        ("NVIDIA A30", False),  # GA100 as well
        ("Tesla V100-SXM2-32GB", False),
        ("Tesla T4", False),
        ("NVIDIA GeForce RTX 2080 Ti", False),
        ("Quadro RTX 6000", False),
    ],
)
def test_which_gpus_average_power_over_one_second(name: str, averaged: bool) -> None:
    assert power_reading_is_averaged(name) is averaged


def _gpus(*names: str) -> list[GpuDescription]:
    return [GpuDescription(i, n, f"GPU-{i}", f"00000000:{i:02x}:00.0", True, power_reading_is_averaged(n))
            for i, n in enumerate(names)]


def test_short_window_warning() -> None:
    warning = short_window_warning(2.0, _gpus("NVIDIA H200", "NVIDIA A100-SXM4-80GB"))
    assert warning is not None and "NVIDIA H200" in warning and "A100" not in warning
    assert short_window_warning(5.0, _gpus("NVIDIA H200")) is None
    assert short_window_warning(0.5, _gpus("NVIDIA A100-SXM4-80GB", "Tesla V100")) is None
    assert short_window_warning(0.5, []) is None


def test_a_sensor_lost_mid_window_is_invalid_with_the_read_error_not_a_coverage_gap() -> None:
    series = SampleSeries(channels={"gpu-0": "gpu"})
    for k in range(5):  # samples up to 2 s, then the GPU is lost: every later read fails
        series.append(k * S // 2, Reading("gpu-0", 100.0 * k / 2, power_w=100.0), "gpu")
    series.errors += [SampleError(t, "nvml", ("gpu-0",), "gpu-0: NVMLError_GpuIsLost: GPU is lost")
                      for t in (int(2.5 * S), 3 * S, int(3.5 * S))]
    lost = window_energy(series, 1 * S, 3 * S)["gpu-0"]
    assert lost.status == "invalid" and lost.energy_j is None
    assert lost.reason.startswith("read error at +1.500 s from window start") and "GpuIsLost" in lost.reason
    later = window_energy(SampleSeries(channels={"gpu-0": "gpu"}, errors=series.errors), 3 * S, 4 * S)["gpu-0"]
    assert later.status == "invalid" and "no readable sample" in later.reason and "GpuIsLost" in later.reason
