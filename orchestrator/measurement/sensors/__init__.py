"""Energy sensors of the host: RAPL (CPU package, DRAM) through powercap sysfs, NVML for NVIDIA GPUs."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .base import DOMAINS, Reading, Sensor, SensorReadError, SensorStatus
from .nvml import NvmlSensor, probe_nvml
from .rapl import RaplSensor, probe_rapl, pyrapl_verdict, resolve_powercap_root

__all__ = [
    "DOMAINS",
    "NvmlSensor",
    "RaplSensor",
    "Reading",
    "Sensor",
    "SensorReadError",
    "SensorStatus",
    "discover_sensors",
    "probe_nvml",
    "probe_rapl",
    "pyrapl_verdict",
    "resolve_powercap_root",
]


def discover_sensors(
    powercap_root: Path, nvml: Any = None, gpu_indices: Sequence[int] | None = None
) -> tuple[list[Sensor], list[SensorStatus]]:
    """Every sensor readable on this host, and one status for each kind (rapl, nvml), readable or not."""
    sensors: list[Sensor] = []
    statuses: list[SensorStatus] = []
    for sensor, status in (probe_rapl(Path(powercap_root)), probe_nvml(nvml, gpu_indices)):
        statuses.append(status)
        if sensor is not None:
            sensors.append(sensor)
    return sensors, statuses
