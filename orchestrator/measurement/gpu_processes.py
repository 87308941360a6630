"""The processes NVML sees on given GPUs (nvmlDeviceGetComputeRunningProcesses): during a window, any that is not
the run's own shares the GPU with it."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .host_activity import GpuProcess


class NvmlGpuProcesses:
    """A GpuReader over the GPUs of NVML indices `indices`. NVML is initialised here and shut down by close(); an
    error at either end, or on a read, reaches the caller (the observer records it as the GPUs' side unreadable)."""

    def __init__(self, indices: Sequence[int], nvml: Any = None) -> None:
        if nvml is None:
            import pynvml as nvml
        self._nvml = nvml
        nvml.nvmlInit()
        try:
            self._handles = [(i, nvml.nvmlDeviceGetHandleByIndex(i)) for i in indices]
        except Exception:
            nvml.nvmlShutdown()
            raise

    def __call__(self) -> list[GpuProcess]:
        found = []
        for index, handle in self._handles:
            for p in self._nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                used = getattr(p, "usedGpuMemory", None)
                found.append(GpuProcess(gpu_index=index, pid=int(p.pid),
                                        used_memory_bytes=int(used) if isinstance(used, int) else None))
        return found

    def close(self) -> None:
        self._nvml.nvmlShutdown()
