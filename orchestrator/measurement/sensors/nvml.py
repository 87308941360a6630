"""GPU energy, power, temperature, clocks and throttle reasons through NVML (nvidia-ml-py's `pynvml`).

The NVML module is a parameter, so tests hand in a small fake; errors are recognised by their pynvml class NAMES
(`NVMLError_NotSupported`, ...) so that a fake only has to name its exception classes the same way.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from orchestrator.planning.gpus import GpuDescription, power_reading_is_averaged
from .base import Reading, Sensor, SensorReadError, SensorStatus

# Fields a GPU may simply not have: the reading is None, the sensor is still fine.
_FIELD_UNSUPPORTED = ("NVMLError_NotSupported", "NVMLError_FunctionNotFound", "NVMLError_NoPermission")

AVERAGED_POWER_NOTE = (
    "on Ampere and newer GPUs (except GA100: A100/A30/A800) nvmlDeviceGetPowerUsage is a 1-second average, so "
    "power samples lag and smooth; energy comes from the total-energy counter where the GPU has one"
)


def _is(exc: BaseException, *names: str) -> bool:
    return any(cls.__name__ in names for cls in type(exc).__mro__)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _FunctionNotFound(Exception):
    pass


_FunctionNotFound.__name__ = "NVMLError_FunctionNotFound"


def _missing(*args: Any) -> Any:
    """Stands in for a function the binding does not have: read as a field the GPU does not support."""
    raise _FunctionNotFound()


def _load_pynvml() -> ModuleType:
    import pynvml

    return pynvml


class NvmlSensor(Sensor):
    """One channel per GPU, `gpu-<index>`. Initialises NVML on construction and shuts it down on close().

    Indices are NVML's (PCI bus order), not CUDA's: CUDA_VISIBLE_DEVICES is deliberately not applied, since the
    energy of a GPU the runner does not use still belongs to the machine's bill; pass indices to narrow it.
    """

    name = "nvml"

    def __init__(self, nvml: Any = None, indices: Sequence[int] | None = None,
                 clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.nvml = nvml if nvml is not None else _load_pynvml()
        self.clock = clock
        self.nvml.nvmlInit()
        self._open = True
        try:
            count = self.nvml.nvmlDeviceGetCount()
            wanted = list(range(count)) if indices is None else list(indices)
            for i in wanted:
                if not 0 <= i < count:
                    raise ValueError(f"GPU index {i} out of range: NVML sees {count} GPU(s)")
            # A GPU whose handle NVML refuses (a Slurm job's device cgroup hides the others) is left out with the
            # reason; the GPUs that do answer are still measured.
            self.refused: dict[int, str] = {}
            self.indices, self._handles = [], []
            for i in wanted:
                try:
                    handle = self.nvml.nvmlDeviceGetHandleByIndex(i)
                except Exception as exc:
                    if not _is(exc, "NVMLError_NoPermission"):
                        raise
                    self.refused[i] = (f"NVML refused its handle ({type(exc).__name__}: {exc}); a job scheduler's "
                                       "device cgroup (Slurm) hides GPUs not allocated to this job")
                    continue
                self.indices.append(i)
                self._handles.append(handle)
            self._channels = [f"gpu-{i}" for i in self.indices]
            self.gpus = [self._describe(i, h) for i, h in zip(self.indices, self._handles)]
            self._energy_ok = [g.energy_counter for g in self.gpus]
            self._temp_sensor = getattr(self.nvml, "NVML_TEMPERATURE_GPU", 0)
            self._clock_sm = getattr(self.nvml, "NVML_CLOCK_SM", 1)
            self._clock_mem = getattr(self.nvml, "NVML_CLOCK_MEM", 2)
            self._reasons = self._pick_reasons_fn()
        except BaseException:
            self.close()
            raise

    def _describe(self, index: int, handle: Any) -> GpuDescription:
        name = _text(self.nvml.nvmlDeviceGetName(handle))
        try:
            self.nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            counter = True
        except Exception as exc:
            if not _is(exc, *_FIELD_UNSUPPORTED):
                raise
            counter = False
        # Both identify the GPU to CUDA and Docker whatever their enumeration order; optional for old bindings.
        uuid = self._optional(getattr(self.nvml, "nvmlDeviceGetUUID", _missing), handle)
        pci = self._optional(getattr(self.nvml, "nvmlDeviceGetPciInfo", _missing), handle)
        bus_id = getattr(pci, "busId", None) if pci is not None else None
        memory = self._optional(getattr(self.nvml, "nvmlDeviceGetMemoryInfo", _missing), handle)
        total = getattr(memory, "total", None) if memory is not None else None
        capability = self._optional(getattr(self.nvml, "nvmlDeviceGetCudaComputeCapability", _missing), handle)
        mig = self._optional(getattr(self.nvml, "nvmlDeviceGetMigMode", _missing), handle)  # [current, pending]
        return GpuDescription(index, name, _text(uuid) if uuid is not None else None,
                              _text(bus_id) if bus_id is not None else None, counter, power_reading_is_averaged(name),
                              int(total) if total else None,
                              f"{capability[0]}.{capability[1]}" if capability is not None else None,
                              bool(mig[0]) if mig is not None else None)

    def _pick_reasons_fn(self) -> Callable[[Any], int] | None:
        # "Throttle reasons" became "clocks event reasons" in NVML 12.2; a driver older than that lacks the new
        # symbol (FunctionNotFound) even when the Python binding has it, so try the new one, then the old one.
        candidates = [
            getattr(self.nvml, name, None)
            for name in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons")
        ]
        candidates = [fn for fn in candidates if fn is not None]
        if not self._handles:
            return candidates[0] if candidates else None
        for fn in candidates:
            try:
                fn(self._handles[0])
                return fn
            except Exception as exc:
                if not _is(exc, *_FIELD_UNSUPPORTED):
                    raise
        return None

    def channels(self) -> dict[str, str]:
        return {c: "gpu" for c in self._channels}

    def _optional(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            if _is(exc, *_FIELD_UNSUPPORTED):
                return None
            raise

    def _read_counters(self) -> list[tuple[float | None, int | None]]:
        """(joules, own timestamp) of every GPU's energy counter, read back to back before any other field: a
        window edge then lies as close as the clock allows to each counter's value, not tens of ms from it."""
        nv, clock = self.nvml, self.clock
        counters: list[tuple[float | None, int | None]] = []
        for k, handle in enumerate(self._handles):
            if not self._energy_ok[k]:
                counters.append((None, None))
                continue
            try:
                before = clock()
                mj = self._optional(nv.nvmlDeviceGetTotalEnergyConsumption, handle)
                after = clock()
            except Exception as exc:  # GPU lost, driver gone, timeout: the whole read is unusable
                raise SensorReadError(f"{self._channels[k]}: {type(exc).__name__}: {exc}") from exc
            counters.append((None, None) if mj is None else (mj / 1e3, (before + after) // 2))
        return counters

    def read(self) -> list[Reading]:
        nv = self.nvml
        readings = []
        counters = self._read_counters()
        for k, handle in enumerate(self._handles):
            energy_j, counter_t = counters[k]
            try:
                mw = self._optional(nv.nvmlDeviceGetPowerUsage, handle)
                temp = self._optional(nv.nvmlDeviceGetTemperature, handle, self._temp_sensor)
                sm = self._optional(nv.nvmlDeviceGetClockInfo, handle, self._clock_sm)
                mem = self._optional(nv.nvmlDeviceGetClockInfo, handle, self._clock_mem)
                reasons = self._optional(self._reasons, handle) if self._reasons is not None else None
            except SensorReadError:
                raise
            except Exception as exc:  # GPU lost, driver gone, timeout: the whole read is unusable
                raise SensorReadError(f"{self._channels[k]}: {type(exc).__name__}: {exc}") from exc
            readings.append(
                Reading(
                    self._channels[k],
                    energy_j,
                    power_w=None if mw is None else mw / 1e3,
                    temperature_c=None if temp is None else float(temp),
                    sm_clock_mhz=sm,
                    mem_clock_mhz=mem,
                    throttle_reasons=reasons,
                    t_ns=counter_t,
                )
            )
        return readings

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                self.nvml.nvmlShutdown()
            except Exception:  # shutting down a library that is going away anyway: nothing to report to
                pass


def _unavailable_reason(exc: BaseException) -> str:
    if _is(exc, "NVMLError_LibraryNotFound"):
        return "NVML library not found (no NVIDIA driver on this host)"
    if _is(exc, "NVMLError_DriverNotLoaded"):
        return "NVIDIA driver not loaded (NVML found, but the kernel module is not running)"
    if _is(exc, "NVMLError_NoPermission"):
        return f"NVML refused access to the GPUs (insufficient permissions: {exc})"
    return f"NVML could not be initialised: {type(exc).__name__}: {exc}"


def cuda_driver_version(nvml: Any) -> str | None:
    """nvmlSystemGetCudaDriverVersion(_v2) as "major.minor" (13000 -> "13.0"); None where the driver does not say."""
    for name in ("nvmlSystemGetCudaDriverVersion_v2", "nvmlSystemGetCudaDriverVersion"):
        fn = getattr(nvml, name, None)
        if fn is None:
            continue
        try:
            version = int(fn())
        except Exception as exc:
            if _is(exc, *_FIELD_UNSUPPORTED):
                continue
            raise
        return f"{version // 1000}.{version % 1000 // 10}"
    return None


def _refused_details(refused: dict[int, str]) -> list[dict[str, Any]]:
    return [{"index": i, "channel": f"gpu-{i}", "reason": why} for i, why in sorted(refused.items())]


def probe_nvml(
    nvml: Any = None, gpu_indices: Sequence[int] | None = None
) -> tuple[NvmlSensor | None, SensorStatus]:
    if nvml is None:
        try:
            nvml = _load_pynvml()
        except ImportError as exc:
            return None, SensorStatus("nvml", False, f"nvidia-ml-py (pynvml) not installed: {exc}")
    try:
        sensor = NvmlSensor(nvml, gpu_indices)
    except ValueError as exc:
        return None, SensorStatus("nvml", False, str(exc))
    except Exception as exc:
        if type(exc).__name__.startswith("NVMLError") or any(c.__name__ == "NVMLError" for c in type(exc).__mro__):
            return None, SensorStatus("nvml", False, _unavailable_reason(exc))
        raise
    refused = "; ".join(f"gpu-{i} left out: {why}" for i, why in sorted(sensor.refused.items()))
    if not sensor.gpus:
        sensor.close()
        if refused:
            return None, SensorStatus("nvml", False, f"NVML refused every GPU's handle: {refused}",
                                      details={"refused_gpus": _refused_details(sensor.refused)})
        return None, SensorStatus("nvml", False, "NVML is loaded but reports zero GPUs")
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
    except Exception as exc:
        driver = f"unknown ({type(exc).__name__})"
    details: dict[str, Any] = {
        "driver_version": driver,
        # The newest CUDA this driver runs ("13.0"): what each CUDA image's runtime needs at least.
        "cuda_driver_version": cuda_driver_version(nvml),
        # Plain dicts here because host.json keeps them; read them back with orchestrator.measurement.gpu.from_details.
        "gpus": [{**g.to_dict(), "channel": g.channel} for g in sensor.gpus],
        "power_note": AVERAGED_POWER_NOTE,
        # GPUs NVML would not hand out, with why: not measured, not given to runs, listed by doctor.
        "refused_gpus": _refused_details(sensor.refused),
    }
    names = ", ".join(f"gpu-{g.index} {g.name}" for g in sensor.gpus)
    no_counter = [f"gpu-{g.index}" for g in sensor.gpus if not g.energy_counter]
    reason = f"{len(sensor.gpus)} GPU(s), driver {driver}: {names}"
    if no_counter:
        reason += f"; no energy counter on {', '.join(no_counter)} (power samples are integrated instead)"
    if refused:
        reason += f"; {refused}"
    return sensor, SensorStatus("nvml", True, reason, channels=sensor.channels(), details=details)
