"""Whether a window was measured on a busy host: what else used the CPUs (processes outside greenrt and the run's
process tree, CPU steal), the load, the CPU frequency, and other processes on the run's GPUs.

InterferenceObserver looks at the host (host_activity.HostLook) when started, every interval in a daemon thread,
and when stopped; stop(window) returns the typed Interference payload of the looks that bracket the window, with
`flagged` and the reasons. summarize() is the pure part: looks in, payload out.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from .host_activity import HostLook, Snapshot
from orchestrator.results.interference_payload import (CpuFrequency, GpuOther, GpuOthers, Interference, ProcessShare,
                                                      Thresholds)

DEFAULT_THRESHOLDS = Thresholds()
TOP = 5  # processes named in the payload, the most CPU first
Key = tuple[int, int]  # (pid, start ticks): a process, whatever later reuses its pid


def _bracket(looks: Sequence[Snapshot], window: tuple[int, int] | None) -> list[Snapshot]:
    """The looks from the last one at or before the window's start to the first one at or after its end."""
    looks = sorted(looks, key=lambda s: s.t_ns)
    if window is None:
        return looks
    start, end = window
    first = max((i for i, s in enumerate(looks) if s.t_ns <= start), default=0)
    last = min((i for i, s in enumerate(looks) if s.t_ns >= end), default=len(looks) - 1)
    return looks[first:max(first, last) + 1]


def excluded_keys(looks: Sequence[Snapshot], own_pid: int, roots: Iterable[int], marked: Iterable[Key]) -> set[Key]:
    """greenrt's own process, and every process descending from a root pid or a marked process. A process's parent
    is the one it had when first seen: a child the run's tree started stays the run's after its parent ends."""
    parent: dict[Key, int] = {}
    key_of: dict[int, Key] = {}
    for look in looks:
        for p in look.procs.values():
            parent.setdefault((p.pid, p.start_ticks), p.ppid)
            key_of[p.pid] = (p.pid, p.start_ticks)
    roots = set(roots)
    excluded = {k for k in parent if k[0] in roots} | set(marked)
    verdict: dict[Key, bool] = {}

    def inside(key: Key, depth: int = 0) -> bool:
        if key in verdict:
            return verdict[key]
        if key in excluded:
            return True
        up = key_of.get(parent.get(key, 0))
        result = up is not None and up != key and depth < 512 and inside(up, depth + 1)
        verdict[key] = result
        return result

    chosen = {k for k in parent if inside(k)}
    chosen |= {k for k in parent if k[0] == own_pid}
    return chosen


def _cpu_seconds(span: Sequence[Snapshot], skip: set[Key], ticks_per_s: int) -> dict[Key, tuple[str, float]]:
    """CPU seconds of each process not in `skip` between the span's first and last looks. A process started after
    the first look counts from zero; one that ended counts up to the last look that saw it (what it used after
    that is lost with it)."""
    first = span[0]
    base = {(p.pid, p.start_ticks): p.ticks for p in first.procs.values()}
    end: dict[Key, tuple[str, int]] = {}
    seen_first: dict[Key, int] = {}
    for look in span:
        for p in look.procs.values():
            key = (p.pid, p.start_ticks)
            end[key] = (p.comm, p.ticks)
            seen_first.setdefault(key, p.ticks)
    used = {}
    for key, (comm, ticks) in end.items():
        if key in skip:
            continue
        if key in base:
            start = base[key]
        elif first.uptime_ticks is None or key[1] >= first.uptime_ticks:
            start = 0
        else:  # running at the first look but not read then: count from when it was
            start = seen_first[key]
        if ticks > start:
            used[key] = (comm, (ticks - start) / ticks_per_s)
    return used


def _frequency(span: Sequence[Snapshot]) -> CpuFrequency:
    values = [v for look in span for v in (look.freq_mhz or [])]
    if not values:
        return CpuFrequency(status="unreadable", reason=span[-1].freq_reason or "no look read a frequency")
    return CpuFrequency(status="ok", mean_mhz=round(sum(values) / len(values), 1), min_mhz=min(values),
                        max_mhz=max(values))


def _gpu(span: Sequence[Snapshot], gpu_indices: Sequence[int], skip_pids: set[int]) -> GpuOthers:
    if not gpu_indices:
        return GpuOthers(status="not observed", reason="the run was given no GPU")
    read = [look for look in span if look.gpu_procs is not None]
    if not read:
        return GpuOthers(status="unreadable", gpu_indices=list(gpu_indices),
                         reason=next((s.gpu_reason for s in span if s.gpu_reason), "no look read NVML"))
    comm = {p.pid: p.comm for look in span for p in look.procs.values()}
    others: dict[tuple[int, int], GpuOther] = {}
    for look in read:
        for g in look.gpu_procs or []:
            if g.pid not in skip_pids:
                mib = None if g.used_memory_bytes is None else round(g.used_memory_bytes / 2**20, 1)
                others[(g.gpu_index, g.pid)] = GpuOther(gpu_index=g.gpu_index, pid=g.pid, comm=comm.get(g.pid),
                                                        used_memory_mib=mib)
    return GpuOthers(status="ok", gpu_indices=list(gpu_indices), processes=list(others.values()))


def summarize(looks: Sequence[Snapshot], *, window: tuple[int, int] | None = None, own_pid: int,
              roots: Iterable[int] = (), marked: Iterable[Key] = (), gpu_indices: Sequence[int] = (),
              cores: int, ticks_per_s: int, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> Interference:
    """The payload of the looks that bracket `window` (monotonic ns; None: all of them)."""
    if len(looks) < 2:
        raise ValueError("a window needs at least two looks at the host")
    span = _bracket(looks, window)
    if len(span) < 2:  # a window outside the looks (a clock the observer does not share): all of them, not one
        span = sorted(looks, key=lambda s: s.t_ns)
    skip = excluded_keys(span, own_pid, roots, marked)
    window_s = max((span[-1].t_ns - span[0].t_ns) / 1e9, 1e-9)
    capacity = window_s * cores
    used = _cpu_seconds(span, skip, ticks_per_s)
    others_s = sum(s for _, s in used.values())
    ranked = sorted(used.items(), key=lambda item: -item[1][1])[:TOP]
    top = [ProcessShare(pid=k[0], comm=comm, cpu_s=round(s, 3), share=round(s / capacity, 4))
           for k, (comm, s) in ranked]
    a, b = span[0].cpu, span[-1].cpu
    busy = steal = None
    cpu_reason = span[0].cpu_reason or span[-1].cpu_reason
    if a is not None and b is not None and b.total > a.total:
        busy, steal = (b.busy - a.busy) / (b.total - a.total), (b.steal - a.steal) / (b.total - a.total)
    elif not cpu_reason:
        cpu_reason = "/proc/stat did not move between the looks"
    loads = [s.load_1m for s in span if s.load_1m is not None]
    gpu = _gpu(span, gpu_indices, {k[0] for k in skip} | {own_pid})
    payload = Interference(
        window_s=round(window_s, 3), looks=len(span), cores=cores, others_cpu_s=round(others_s, 3),
        others_share=round(others_s / capacity, 4), top=top, excluded_pids=sorted({k[0] for k in skip}),
        host_busy_share=None if busy is None else round(busy, 4), steal_share=None if steal is None else round(steal, 4),
        cpu_reason=cpu_reason, load_1m_max=max(loads) if loads else None, frequency=_frequency(span), gpu=gpu,
        thresholds=thresholds, flagged=False)
    payload.reasons = verdict_reasons(payload)
    payload.flagged = bool(payload.reasons)
    return payload


def verdict_reasons(p: Interference) -> list[str]:
    """Why a window counts as measured on a busy host; none: it does not."""
    t, reasons = p.thresholds, []
    if p.others_share > t.max_others_share:
        most = f"; most: {p.top[0].comm} (pid {p.top[0].pid}) {p.top[0].share:.1%}" if p.top else ""
        reasons.append(f"other processes used {p.others_share:.1%} of the {p.cores} CPUs' capacity "
                       f"(threshold {t.max_others_share:.0%}){most}")
    if p.steal_share is not None and p.steal_share > t.max_steal_share:
        reasons.append(f"the hypervisor stole {p.steal_share:.1%} of CPU time (threshold {t.max_steal_share:.0%})")
    if t.gpu_others and p.gpu.processes:
        named = ", ".join(f"{g.comm or '?'} (pid {g.pid}) on GPU {g.gpu_index}" for g in p.gpu.processes[:3])
        reasons.append(f"{len(p.gpu.processes)} other process(es) on the run's GPUs: {named}")
    return reasons


def _marker_of(proc: Path, pid: int, marker: bytes) -> bool:
    try:
        with open(proc / str(pid) / "environ", "rb") as fh:
            return marker in fh.read().split(b"\0")
    except OSError:  # gone, or another user's: not ours
        return False


def _cgroup_of(proc: Path, pid: int) -> str:
    try:
        with open(proc / str(pid) / "cgroup", encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


class InterferenceObserver:
    """Looks at the host from start() to stop(window), like the energy Sampler, and says what else used it.

    own_pid: greenrt's process (its sampler threads are not interference). exclude_pids: roots of the run's
    process tree. owner_marker: an environment entry ("NAME=value") every runner of this greenrt carries; processes
    with it and their descendants are the run's. exclude_tree() adds a root once it is known (a container's init);
    exclude_cgroup() makes the run's every process whose /proc/<pid>/cgroup names a fragment (a container's id),
    for an observer made with watch_cgroups=True (each process's cgroup is then read once, when first seen).
    """

    def __init__(self, *, thresholds: Thresholds = DEFAULT_THRESHOLDS, interval_s: float = 0.5, own_pid: int | None = None,
                 exclude_pids: Iterable[int] = (), owner_marker: str | None = None, gpu_indices: Sequence[int] = (),
                 look: HostLook | None = None, cores: int | None = None, gpu_reader_factory=None,
                 watch_cgroups: bool = False) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.thresholds, self.interval_s = thresholds, interval_s
        self.own_pid = os.getpid() if own_pid is None else own_pid
        self.roots = set(exclude_pids)
        self.marker = owner_marker.encode() if owner_marker else None
        self.gpu_indices = list(gpu_indices)
        self.look = look or HostLook()
        self.cores = cores or os.cpu_count() or 1
        self._gpu_factory = gpu_reader_factory
        self._gpu_reader = None
        self._gpu_error = ""
        self.looks: list[Snapshot] = []
        self.failed_looks: list[str] = []
        self.marked: set[Key] = set()
        self._checked: set[Key] = set()
        self.watch_cgroups = watch_cgroups
        self._cgroups: dict[Key, str] = {}
        self._fragments: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.payload: Interference | None = None

    def exclude_tree(self, pid: int) -> None:
        self.roots.add(pid)

    def exclude_cgroup(self, fragment: str) -> None:
        if not self.watch_cgroups:
            raise RuntimeError("exclude_cgroup needs an observer made with watch_cgroups=True")
        if fragment:
            self._fragments.add(fragment)

    def _look_once(self) -> None:
        snap = self.look.snapshot()
        if self.gpu_indices and self._gpu_reader is None:
            snap.gpu_reason = self._gpu_error
        if self.marker is not None or self.watch_cgroups:
            for p in snap.procs.values():
                key = (p.pid, p.start_ticks)
                if key in self._checked:
                    continue
                self._checked.add(key)
                if self.marker is not None and _marker_of(self.look.proc, p.pid, self.marker):
                    self.marked.add(key)
                if self.watch_cgroups:
                    self._cgroups[key] = _cgroup_of(self.look.proc, p.pid)
        self.looks.append(snap)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._look_once()
            except Exception as exc:  # noqa: BLE001 - a failed look leaves a gap the bracket spans; it is counted
                self.failed_looks.append(f"{type(exc).__name__}: {exc}")

    def start(self) -> InterferenceObserver:
        if self._thread is not None:
            raise RuntimeError("an InterferenceObserver runs once; make a new one")
        if self.gpu_indices:
            try:
                from .gpu_processes import NvmlGpuProcesses

                factory = self._gpu_factory or NvmlGpuProcesses
                self._gpu_reader = factory(self.gpu_indices)
                self.look.gpu_reader = self._gpu_reader
            except Exception as exc:  # noqa: BLE001 - no NVML here, or it refused: the GPU side is unreadable, with why
                self._gpu_error = f"NVML: {type(exc).__name__}: {exc}"
        self._look_once()
        self._thread = threading.Thread(target=self._loop, name="greenrt-interference", daemon=True)
        self._thread.start()
        return self

    def stop(self, window: tuple[int, int] | None = None) -> Interference:
        """The payload of the window (monotonic ns, as the runner's window_start_ns/window_end_ns); None: all."""
        if self._thread is None:
            raise RuntimeError("stop() before start()")
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
            self._look_once()
            if self._gpu_reader is not None and hasattr(self._gpu_reader, "close"):
                try:
                    self._gpu_reader.close()
                except Exception:  # noqa: BLE001, S110 - NVML's shutdown after the last read changes no figure
                    pass
        self.payload = self.result(window)
        return self.payload

    def _in_fragments(self) -> set[Key]:
        return {k for k, text in self._cgroups.items() if any(f in text for f in self._fragments)}

    def result(self, window: tuple[int, int] | None = None, exclude_pids: Iterable[int] = ()) -> Interference:
        """The payload over the looks taken, with more roots excluded if given (the looks are not taken again)."""
        payload = summarize(self.looks, window=window, own_pid=self.own_pid, roots=self.roots | set(exclude_pids),
                            marked=self.marked | self._in_fragments(), gpu_indices=self.gpu_indices, cores=self.cores,
                            ticks_per_s=self.look.ticks_per_s, thresholds=self.thresholds)
        if self.failed_looks:
            payload.failed_looks = len(self.failed_looks)
            payload.failed_look_reason = self.failed_looks[-1]
        return payload


def quiet_now(seconds: float = 1.0, thresholds: Thresholds = DEFAULT_THRESHOLDS,
              gpu_indices: Sequence[int] = ()) -> Interference:
    """Whether the host is quiet now: what processes other than this one used over `seconds` (and which are on
    the GPUs of `gpu_indices`)."""
    observer = InterferenceObserver(thresholds=thresholds, interval_s=max(seconds, 0.05),
                                    gpu_indices=gpu_indices).start()
    time.sleep(seconds)
    return observer.stop()
