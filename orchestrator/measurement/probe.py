"""What this host offers for measuring, probed once per command: its sensors, why each kind is or is not there,
and its GPUs."""
from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.planning.gpus import GpuDescription, from_details
from orchestrator.planning.planner import HostCapabilities
from orchestrator.measurement.sensors import discover_sensors
from orchestrator.measurement.sensors.base import Sensor, SensorStatus
from orchestrator.measurement.sensors.rapl import resolve_powercap_root
from runners.hostinfo import cpu_flags, memory_bytes


@dataclass
class Measurement:
    sensors: list[Sensor]
    statuses: list[SensorStatus]
    gpus: tuple[GpuDescription, ...] = field(default_factory=tuple)  # every GPU NVML sees, in NVML order

    @property
    def capabilities(self) -> HostCapabilities:
        """What the planner needs to know of this host: its GPUs, or why there are none."""
        return capabilities(self.statuses)


def capabilities(statuses: list[SensorStatus]) -> HostCapabilities:
    nvml = next((s for s in statuses if s.name == "nvml"), None)
    if nvml and nvml.available:
        return HostCapabilities(gpus=from_details(nvml.details.get("gpus", [])), cpu_flags=cpu_flags(),
                                memory_bytes=memory_bytes(), driver_version=nvml.details.get("driver_version"),
                                cuda_driver_version=nvml.details.get("cuda_driver_version"))
    return HostCapabilities(gpu_reason=nvml.reason if nvml else "NVML not probed", cpu_flags=cpu_flags(),
                            memory_bytes=memory_bytes())


def probe(powercap_root: str | None = None) -> Measurement:
    """Every readable sensor (RAPL under the powercap root, NVML), and the GPUs NVML describes."""
    sensors, statuses = discover_sensors(resolve_powercap_root(powercap_root))
    return Measurement(sensors, statuses, capabilities(statuses).gpus)
