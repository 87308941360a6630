"""What this host offers for measuring, probed once per command: its sensors, why each kind is or is not there,
and its GPUs."""
from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator import host
from orchestrator.measurement.gpu import GpuDescription
from orchestrator.measurement.sensors import discover_sensors
from orchestrator.measurement.sensors.base import Sensor, SensorStatus
from orchestrator.measurement.sensors.rapl import resolve_powercap_root


@dataclass
class Measurement:
    sensors: list[Sensor]
    statuses: list[SensorStatus]
    gpus: tuple[GpuDescription, ...] = field(default_factory=tuple)  # every GPU NVML sees, in NVML order


def probe(powercap_root: str | None = None) -> Measurement:
    """Every readable sensor (RAPL under the powercap root, NVML), and the GPUs NVML describes."""
    sensors, statuses = discover_sensors(resolve_powercap_root(powercap_root))
    return Measurement(sensors, statuses, host.capabilities(statuses).gpus)
