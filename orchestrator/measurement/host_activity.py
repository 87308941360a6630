"""One look at what the host is doing, from Linux /proc and /sys: every process's CPU time, the machine's CPU time
(steal included), load, CPU frequency, and (given a reader) the processes on the GPUs.

The parsers are pure functions of the files' text, so that they are tested over samples written by a test; the
readers only open files and hand the text to them. Nothing here decides what is interference: see interference.py.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ProcSample:
    """One process at one look: CPU time in clock ticks (utime + stime, all its threads), its parent, and its start
    time in ticks since boot, which with the pid names the process (pids are reused)."""

    pid: int
    ppid: int
    comm: str
    ticks: int
    start_ticks: int


@dataclass(frozen=True)
class CpuTimes:
    """The first line of /proc/stat, in ticks: all CPUs' time, the part spent busy, and the part stolen by a
    hypervisor (time this machine's vCPUs waited for a physical CPU)."""

    total: int
    busy: int
    steal: int


@dataclass(frozen=True)
class GpuProcess:
    gpu_index: int
    pid: int
    used_memory_bytes: int | None


@dataclass
class Snapshot:
    t_ns: int  # time.monotonic_ns() of the look
    uptime_ticks: int | None  # /proc/uptime in ticks: processes started after it were not yet running
    procs: dict[int, ProcSample] = field(default_factory=dict)
    cpu: CpuTimes | None = None
    cpu_reason: str = ""
    load_1m: float | None = None
    freq_mhz: list[float] | None = None
    freq_reason: str = ""
    gpu_procs: list[GpuProcess] | None = None
    gpu_reason: str = ""


def parse_pid_stat(text: str) -> ProcSample:
    """/proc/<pid>/stat: "pid (comm) state ppid ...". The name may hold spaces and ')', so it ends at the last ')'."""
    head, _, rest = text.rpartition(")")
    pid_text, _, comm = head.partition(" (")
    fields = rest.split()
    # After the name: fields[0] is field 3 (state) of proc(5); utime, stime are 14, 15; starttime is 22.
    return ProcSample(pid=int(pid_text), ppid=int(fields[1]), comm=comm,
                      ticks=int(fields[11]) + int(fields[12]), start_ticks=int(fields[19]))


def parse_cpu_times(text: str) -> CpuTimes:
    """/proc/stat's aggregate "cpu" line. guest and guest_nice are already inside user and nice, so not added."""
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            values = [int(v) for v in parts[1:9]] + [0] * (8 - len(parts[1:9]))
            user, nice, system, _idle, _iowait, irq, softirq, steal = values
            return CpuTimes(total=sum(values), busy=user + nice + system + irq + softirq, steal=steal)
    raise ValueError("no aggregate 'cpu' line")


def parse_load(text: str) -> float:
    return float(text.split()[0])


def parse_uptime_ticks(text: str, ticks_per_s: int) -> int:
    return int(float(text.split()[0]) * ticks_per_s)


def parse_freq_khz(text: str) -> float:
    """scaling_cur_freq, in kHz, as MHz. Zero is not a frequency: it is refused, never averaged in."""
    khz = int(text.strip())
    if khz <= 0:
        raise ValueError(f"reads {khz} kHz")
    return khz / 1000.0


def _read(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def read_processes(proc: Path) -> dict[int, ProcSample]:
    """Every process /proc shows. One that ends between the listing and its read is simply not in this look."""
    found = {}
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        try:
            sample = parse_pid_stat(_read(proc / name / "stat"))
        except (OSError, ValueError, IndexError):
            continue
        found[sample.pid] = sample
    return found


def read_frequencies(cpu_root: Path) -> tuple[list[float] | None, str]:
    """Every CPU's current frequency in MHz, or None and why not (never 0)."""
    paths = sorted(cpu_root.glob("cpu[0-9]*/cpufreq/scaling_cur_freq"))
    if not paths:
        return None, (f"no {cpu_root}/cpu*/cpufreq/scaling_cur_freq (the kernel exposes no cpufreq "
                      "driver here, as in most virtual machines and containers)")
    values, problems = [], []
    for path in paths:
        try:
            values.append(parse_freq_khz(_read(path)))
        except (OSError, ValueError) as exc:
            problems.append(f"{path}: {exc}")
    if not values:
        return None, f"{problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
    return values, ""


GpuReader = Callable[[], list[GpuProcess]]


@dataclass
class HostLook:
    """Where one look reads: the roots are parameters so that tests point them at files they wrote."""

    proc: Path = Path("/proc")
    cpu_root: Path = Path("/sys/devices/system/cpu")
    gpu_reader: GpuReader | None = None
    ticks_per_s: int = field(default_factory=lambda: os.sysconf("SC_CLK_TCK"))
    clock: Callable[[], int] = time.monotonic_ns

    def snapshot(self) -> Snapshot:
        t = self.clock()
        try:
            uptime = parse_uptime_ticks(_read(self.proc / "uptime"), self.ticks_per_s)
        except (OSError, ValueError, IndexError):
            uptime = None
        snap = Snapshot(t_ns=t, uptime_ticks=uptime, procs=read_processes(self.proc))
        try:
            snap.cpu = parse_cpu_times(_read(self.proc / "stat"))
        except (OSError, ValueError) as exc:
            snap.cpu_reason = f"{self.proc / 'stat'}: {exc}"
        try:
            snap.load_1m = parse_load(_read(self.proc / "loadavg"))
        except (OSError, ValueError, IndexError):
            pass
        snap.freq_mhz, snap.freq_reason = read_frequencies(self.cpu_root)
        if self.gpu_reader is not None:
            try:
                snap.gpu_procs = self.gpu_reader()
            except Exception as exc:  # noqa: BLE001 - an NVML error of any class: the GPUs' side is unreadable, said so
                snap.gpu_reason = f"{type(exc).__name__}: {exc}"
        return snap
