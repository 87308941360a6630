"""What else used the machine during one window, typed: the `interference` payload of a run's record.

Built by orchestrator/measurement/interference.py (floor 2, beside this room: the record holds it, so it lives with
the record's other payloads); JSON-able with model_dump(mode="json"), read back with Interference.model_validate.
Keys a newer greenrt adds are kept (extra="allow"), as in results/payloads.py.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow")


class Thresholds(_Part):
    """Above these a window is flagged. The defaults are [interference]'s (orchestrator/planning/config_sections.py),
    where they are justified."""

    max_others_share: float = 0.10
    max_steal_share: float = 0.05
    gpu_others: bool = True  # any other process on the run's GPUs flags the window


class ProcessShare(_Part):
    """One process outside the run: its CPU seconds in the window and their share of the machine's capacity."""

    pid: int
    comm: str
    cpu_s: float
    share: float


class CpuFrequency(_Part):
    status: Literal["ok", "unreadable"]
    mean_mhz: float | None = None
    min_mhz: float | None = None
    max_mhz: float | None = None
    reason: str = ""


class GpuOther(_Part):
    gpu_index: int
    pid: int
    comm: str | None = None  # None: NVML's pid is not in this /proc (another container's, or gone)
    used_memory_mib: float | None = None


class GpuOthers(_Part):
    status: Literal["ok", "unreadable", "not observed"]
    gpu_indices: list[int] = []
    processes: list[GpuOther] = []
    reason: str = ""


class Interference(_Part):
    window_s: float  # between the looks that bracket the window (at least the window itself)
    looks: int  # how many looks fell in that span
    cores: int
    others_cpu_s: float  # CPU seconds of processes outside greenrt and the run's process tree
    others_share: float  # others_cpu_s / (window_s * cores)
    top: list[ProcessShare] = []
    excluded_pids: list[int] = []  # greenrt and the run's tree, as seen
    # From /proc/stat: the machine's busy share (all processes, greenrt's and the run's included, and the kernel);
    # steal: time the hypervisor gave these CPUs to someone else. None, with cpu_reason, where unreadable.
    host_busy_share: float | None = None
    steal_share: float | None = None
    cpu_reason: str = ""
    load_1m_max: float | None = None  # counts the run's own threads too: recorded, not a threshold
    failed_looks: int = 0  # looks that raised: the bracket spans the gap they leave
    failed_look_reason: str = ""
    frequency: CpuFrequency
    gpu: GpuOthers
    thresholds: Thresholds
    flagged: bool
    reasons: list[str] = []
    # What [interference].on_busy made of it (execution/sweep.py): the decision's words, and how many earlier
    # attempts of this run were flagged and measured again ("remeasure"; only the last attempt is recorded).
    decision: str = ""
    earlier_flagged_attempts: int = 0

    def top_process(self) -> str | None:
        """The other process that used the most CPU, with its share: "python3 (pid 4242) 48.1%"."""
        if not self.top:
            return None
        first = self.top[0]
        return f"{first.comm} (pid {first.pid}) {first.share:.1%}"

    def summary(self) -> str:
        """One line for a terminal: the verdict and its main figures."""
        head = "busy" if self.flagged else "quiet"
        steal = "unreadable" if self.steal_share is None else f"{self.steal_share:.1%}"
        text = (f"{head}: other processes used {self.others_share:.1%} of {self.cores} CPUs over "
                f"{self.window_s:.1f} s, steal {steal}")
        if self.top:
            text += f"; most: {self.top_process()}"
        if self.gpu.status == "unreadable":
            text += f"; GPUs' processes unreadable ({self.gpu.reason})"
        elif self.gpu.processes:
            text += "; on the GPUs: " + ", ".join(f"{g.comm or '?'} (pid {g.pid}) on GPU {g.gpu_index}"
                                                  for g in self.gpu.processes[:3])
        return text
