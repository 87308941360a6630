"""The common interface of every energy sensor: one small class per kind of sensor, behind this contract."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

# What a channel measures; totals add "cpu" + "dram" into CPU energy and "gpu" into GPU energy.
DOMAINS = ("cpu", "dram", "gpu")


class SensorReadError(RuntimeError):
    """A sensor that was readable could not be read now; the sampler records the reason and the time."""


@dataclass(frozen=True)
class SensorStatus:
    """Whether a kind of sensor can be read on this host, and why (never a silent absence)."""

    name: str  # "rapl" | "nvml"
    available: bool
    reason: str  # one line: what was found, or exactly why nothing can be read
    channels: dict[str, str] = field(default_factory=dict)  # channel -> domain
    details: dict[str, Any] = field(default_factory=dict)  # zone paths, GPU names, driver version, ...


@dataclass(frozen=True)
class Reading:
    """One channel at one instant. energy_j is cumulative since an arbitrary origin, already unwrapped."""

    channel: str
    energy_j: float | None
    power_w: float | None = None
    temperature_c: float | None = None
    sm_clock_mhz: int | None = None
    mem_clock_mhz: int | None = None
    throttle_reasons: int | None = None
    wrapped: bool = False  # the raw counter wrapped around since the previous read (and was corrected)
    backwards: bool = False  # the raw counter went backwards with no wrap-around to explain it
    # time.monotonic_ns() of this channel's own energy-counter read, where the sensor stamps it; None: the sampler
    # stamps the reading with the middle of the whole read (which, for several NVML calls per GPU, may lie tens of
    # ms from the counter's own instant).
    t_ns: int | None = None


class Sensor(ABC):
    name: str

    @abstractmethod
    def channels(self) -> dict[str, str]:
        """channel name -> domain (one of DOMAINS)."""

    @abstractmethod
    def read(self) -> list[Reading]:
        """One reading per channel; raises SensorReadError when the sensor cannot be read."""

    def close(self) -> None:  # noqa: B027 - most sensors hold nothing
        pass
