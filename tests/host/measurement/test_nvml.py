from __future__ import annotations

from pathlib import Path

import pytest
from testkit.fake_nvml import (
    FakeGpu,
    FakeNvml,
    NVMLError_DriverNotLoaded,
    NVMLError_LibraryNotFound,
)
from testkit.powercap import PowercapTree

from orchestrator.measurement.energy import window_energy
from orchestrator.measurement.sampler import SampleSeries, Sampler
from orchestrator.measurement.sensors import discover_sensors
from orchestrator.measurement.sensors.base import SensorReadError
from orchestrator.measurement.sensors.nvml import NvmlSensor, probe_nvml

S = 1_000_000_000


def test_units_and_fields() -> None:
    gpu = FakeGpu(energy_mj=123_456, power_mw=250_500, temperature_c=61, sm_clock_mhz=1755, mem_clock_mhz=2619,
                  reasons=0x4)
    sensor = NvmlSensor(FakeNvml([gpu]))
    (reading,) = sensor.read()
    assert reading.channel == "gpu-0"
    assert reading.energy_j == pytest.approx(123.456)  # mJ -> J
    assert reading.power_w == pytest.approx(250.5)  # mW -> W
    assert reading.temperature_c == 61.0
    assert (reading.sm_clock_mhz, reading.mem_clock_mhz, reading.throttle_reasons) == (1755, 2619, 0x4)
    assert sensor.channels() == {"gpu-0": "gpu"}


def test_optional_field_not_supported_gives_none_not_zero() -> None:
    sensor = NvmlSensor(FakeNvml([FakeGpu(temperature_c=None)]))
    (reading,) = sensor.read()
    assert reading.temperature_c is None
    assert reading.power_w == pytest.approx(150.0)


def test_no_energy_counter_falls_back_to_power_integral() -> None:
    gpu = FakeGpu(name="Tesla P100-PCIE-16GB", energy_mj=None, power_mw=100_000)
    nvml = FakeNvml([gpu])
    sensor, status = probe_nvml(nvml)
    assert sensor is not None and status.details["gpus"][0]["energy_counter"] is False
    assert "no energy counter on gpu-0" in status.reason

    series = SampleSeries(channels=sensor.channels())
    for t, mw in ((0, 100_000), (S, 200_000), (2 * S, 200_000)):
        gpu.power_mw = mw
        (reading,) = sensor.read()
        assert reading.energy_j is None
        series.append(t, reading, "gpu")
    result = window_energy(series, 0, 2 * S)["gpu-0"]
    # Trapezoids: (100 + 200) / 2 * 1 s + (200 + 200) / 2 * 1 s = 150 + 200 = 350 J
    assert result.status == "ok" and result.method == "power-integral"
    assert result.energy_j == pytest.approx(350.0)


def test_lost_gpu_raises_and_the_sampler_records_it() -> None:
    gpu = FakeGpu()
    sensor = NvmlSensor(FakeNvml([gpu]))
    gpu.lost = True
    with pytest.raises(SensorReadError, match="GpuIsLost"):
        sensor.read()

    sampler = Sampler([sensor], interval_s=0.01)
    gpu.lost = False
    sampler.start()
    gpu.lost = True
    series = sampler.stop()
    assert series.errors and series.errors[-1].channels == ("gpu-0",)
    assert "GpuIsLost" in series.errors[-1].reason


def test_library_not_found_is_unavailable_with_reason() -> None:
    sensor, status = probe_nvml(FakeNvml(init_error=NVMLError_LibraryNotFound))
    assert sensor is None and not status.available
    assert status.reason == "NVML library not found (no NVIDIA driver on this host)"


def test_driver_not_loaded_is_unavailable_with_reason() -> None:
    sensor, status = probe_nvml(FakeNvml(init_error=NVMLError_DriverNotLoaded))
    assert sensor is None and "driver not loaded" in status.reason


def test_zero_gpus_is_unavailable_and_releases_nvml() -> None:
    nvml = FakeNvml([])
    sensor, status = probe_nvml(nvml)
    assert sensor is None and not status.available
    assert "zero GPUs" in status.reason
    assert nvml.initialised == 0


def test_available_status_details() -> None:
    nvml = FakeNvml([FakeGpu(name="NVIDIA H200"), FakeGpu(name="NVIDIA A100-SXM4-80GB")], driver="570.86.15")
    sensor, status = probe_nvml(nvml)
    assert sensor is not None and status.available
    assert status.channels == {"gpu-0": "gpu", "gpu-1": "gpu"}
    assert status.details["driver_version"] == "570.86.15"
    gpus = status.details["gpus"]
    assert [g["name"] for g in gpus] == ["NVIDIA H200", "NVIDIA A100-SXM4-80GB"]
    assert [g["energy_counter"] for g in gpus] == [True, True]
    assert [g["power_is_1s_average"] for g in gpus] == [True, False]
    assert "1-second average" in status.details["power_note"]
    sensor.close()
    assert nvml.initialised == 0


def test_subset_of_gpus() -> None:
    nvml = FakeNvml([FakeGpu(), FakeGpu(power_mw=42_000)])
    sensor, status = probe_nvml(nvml, gpu_indices=[1])
    assert sensor is not None and sensor.channels() == {"gpu-1": "gpu"}
    assert [r.power_w for r in sensor.read()] == [pytest.approx(42.0)]
    missing, status = probe_nvml(FakeNvml([FakeGpu()]), gpu_indices=[3])
    assert missing is None and "out of range" in status.reason


def test_older_driver_uses_throttle_reasons() -> None:
    nvml = FakeNvml([FakeGpu(reasons=0x20)], event_reasons=False)
    (reading,) = NvmlSensor(nvml).read()
    assert reading.throttle_reasons == 0x20 and nvml.throttle_calls >= 1


def test_discover_sensors_reports_both_kinds(powercap_tree: PowercapTree, tmp_path: Path) -> None:
    sensors, statuses = discover_sensors(powercap_tree.root, nvml=FakeNvml())
    assert [s.name for s in sensors] == ["rapl", "nvml"]
    assert [(s.name, s.available) for s in statuses] == [("rapl", True), ("nvml", True)]

    sensors, statuses = discover_sensors(tmp_path / "none", nvml=FakeNvml(init_error=NVMLError_LibraryNotFound))
    assert sensors == []
    assert [(s.name, s.available) for s in statuses] == [("rapl", False), ("nvml", False)]
    assert all(s.reason for s in statuses)


def test_real_pynvml_probe_is_consistent() -> None:
    # On this host (driver or not), the real library must give a sensor iff it says available, with a reason.
    sensor, status = probe_nvml()
    assert status.name == "nvml" and status.reason
    assert (sensor is not None) == status.available
    if sensor is not None:
        assert len(sensor.read()) == len(sensor.channels())
        sensor.close()
