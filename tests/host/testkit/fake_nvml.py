"""A stand-in for the `pynvml` module: only the functions greenrt calls, errors named like pynvml's."""
from __future__ import annotations

from dataclasses import dataclass


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):  # noqa: N801 - pynvml's names
    pass


class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801
    pass


class NVMLError_DriverNotLoaded(NVMLError):  # noqa: N801
    pass


class NVMLError_GpuIsLost(NVMLError):  # noqa: N801
    pass


class NVMLError_FunctionNotFound(NVMLError):  # noqa: N801
    pass


class NVMLError_NoPermission(NVMLError):  # noqa: N801
    pass


@dataclass
class FakeGpu:
    name: str = "NVIDIA H200"
    energy_mj: int | None = 1_000_000  # None: the GPU has no total-energy counter (pre-Volta)
    power_mw: int | None = 150_000
    temperature_c: int | None = 40
    sm_clock_mhz: int = 1980
    mem_clock_mhz: int = 3201
    reasons: int = 0
    lost: bool = False
    handle_refused: bool = False  # nvmlDeviceGetHandleByIndex raises NoPermission (Slurm's device cgroups)


class FakeNvml:
    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2

    NVMLError = NVMLError
    NVMLError_NotSupported = NVMLError_NotSupported
    NVMLError_LibraryNotFound = NVMLError_LibraryNotFound
    NVMLError_DriverNotLoaded = NVMLError_DriverNotLoaded
    NVMLError_GpuIsLost = NVMLError_GpuIsLost
    NVMLError_NoPermission = NVMLError_NoPermission

    def __init__(
        self,
        gpus: list[FakeGpu] | None = None,
        init_error: type[Exception] | None = None,
        driver: str = "999.01",
        event_reasons: bool = True,
    ) -> None:
        self.gpus = [FakeGpu()] if gpus is None else gpus
        self.init_error = init_error
        self.driver = driver
        self.initialised = 0  # NVML counts init/shutdown pairs
        self.throttle_calls = 0
        self.calls: list[tuple[str, int]] = []  # (function, GPU index) of every per-GPU field read, in order
        if event_reasons:
            self.nvmlDeviceGetCurrentClocksEventReasons = self._reasons

    def _gpu(self, handle: int, function: str = "") -> FakeGpu:
        self.calls.append((function, handle))
        gpu = self.gpus[handle]
        if gpu.lost:
            raise NVMLError_GpuIsLost()
        return gpu

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error()
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.initialised -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if self.gpus[index].handle_refused:
            raise NVMLError_NoPermission("Insufficient Permissions")
        return index

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return self._gpu(handle).name.encode()  # older pynvml returns bytes

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        gpu = self._gpu(handle, "energy")
        if gpu.energy_mj is None:
            raise NVMLError_NotSupported()
        return gpu.energy_mj

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        gpu = self._gpu(handle, "power")
        if gpu.power_mw is None:
            raise NVMLError_NotSupported()
        return gpu.power_mw

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        gpu = self._gpu(handle, "temperature")
        if gpu.temperature_c is None:
            raise NVMLError_NotSupported()
        return gpu.temperature_c

    def nvmlDeviceGetClockInfo(self, handle: int, clock: int) -> int:
        gpu = self._gpu(handle, "clock")
        return {self.NVML_CLOCK_SM: gpu.sm_clock_mhz, self.NVML_CLOCK_MEM: gpu.mem_clock_mhz}[clock]

    def _reasons(self, handle: int) -> int:
        return self._gpu(handle).reasons

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: int) -> int:
        self.throttle_calls += 1
        return self._gpu(handle).reasons
