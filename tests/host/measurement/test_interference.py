"""Busy-host detection, its pure parts: /proc and /sys text written by the test, looks over it, the payload's
figures and verdict, the [interference] policy and its config section."""
from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest

from orchestrator.errors import UserError
from orchestrator.measurement.host_activity import (GpuProcess, HostLook, parse_cpu_times, parse_freq_khz,
                                                    parse_pid_stat)
from orchestrator.measurement.interference import InterferenceObserver, summarize
from orchestrator.results.interference_payload import Interference, Thresholds
from orchestrator.measurement.interference_policy import decide, observer_for, thresholds_of
from orchestrator.planning.config import parse_config as _parse


def parse_config(text: str):
    return _parse(tomllib.loads(text))

HZ = 100
OWN = 500  # greenrt's pid in the written /proc


def _stat_line(pid: int, comm: str, ppid: int, ticks: int, start: int) -> str:
    # proc(5) fields 3..22 after the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    # utime stime cutime cstime priority nice threads itrealvalue starttime
    utime, stime = ticks - ticks // 3, ticks // 3
    return f"{pid} ({comm}) R {ppid} {pid} {pid} 0 -1 0 0 0 0 0 {utime} {stime} 7 7 20 0 1 0 {start} 1000 10\n"


class FakeHost:
    """A /proc and a /sys/devices/system/cpu written by the test, and a clock it moves."""

    def __init__(self, root: Path) -> None:
        self.proc, self.cpu = root / "proc", root / "cpu"
        self.proc.mkdir(parents=True)
        self.cpu.mkdir()
        self.t_ns = 0
        self.procs: dict[int, tuple[str, int, int, int]] = {}  # pid -> comm, ppid, ticks, start ticks
        self.cpu_times = [0] * 10
        self.uptime_s = 1000.0
        self.gpu: list[GpuProcess] = []

    def look(self) -> HostLook:
        return HostLook(proc=self.proc, cpu_root=self.cpu, ticks_per_s=HZ, clock=lambda: self.t_ns)

    def write(self) -> None:
        for entry in self.proc.iterdir():
            if entry.is_dir() and int(entry.name) not in self.procs:
                shutil.rmtree(entry)
        for pid, (comm, ppid, ticks, start) in self.procs.items():
            (self.proc / str(pid)).mkdir(exist_ok=True)
            (self.proc / str(pid) / "stat").write_text(_stat_line(pid, comm, ppid, ticks, start))
        (self.proc / "stat").write_text("cpu  " + " ".join(map(str, self.cpu_times)) + "\ncpu0 1 2 3 4 5 6 7 8 0 0\n")
        (self.proc / "uptime").write_text(f"{self.uptime_s:.2f} 123.00\n")
        (self.proc / "loadavg").write_text("1.50 0.80 0.40 3/200 999\n")

    def advance(self, seconds: float, cores: int = 2, steal_ticks: int = 0, busy_ticks: int = 0) -> None:
        self.t_ns += int(seconds * 1e9)
        self.uptime_s += seconds
        total = int(seconds * HZ * cores)
        self.cpu_times[0] += busy_ticks
        self.cpu_times[7] += steal_ticks
        self.cpu_times[3] += total - busy_ticks - steal_ticks

    def run(self, pid: int, ticks: int) -> None:
        comm, ppid, old, start = self.procs[pid]
        self.procs[pid] = (comm, ppid, old + ticks, start)


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    h = FakeHost(tmp_path)
    h.procs = {1: ("systemd", 0, 900, 1), OWN: ("greenrt", 1, 5000, 90_000), 600: ("python", OWN, 100, 95_000),
               601: ("worker", 600, 50, 95_100), 700: ("stress", 1, 10_000, 50_000)}
    h.write()
    return h


def _looks(host: FakeHost, steps: list[dict]) -> list:
    look = host.look()
    looks = [look.snapshot()]
    for step in steps:
        step = dict(step)
        for pid, ticks in step.pop("run", {}).items():
            host.run(pid, ticks)
        for pid, entry in step.pop("spawn", {}).items():
            host.procs[pid] = entry
        for pid in step.pop("end", ()):
            del host.procs[pid]
        host.advance(**step)
        host.write()
        looks.append(look.snapshot())
    return looks


def test_parsers_read_proc_text_as_the_kernel_writes_it():
    sample = parse_pid_stat(_stat_line(42, "odd) name (x", 7, 300, 1234))
    assert (sample.pid, sample.ppid, sample.comm, sample.ticks, sample.start_ticks) == (42, 7, "odd) name (x", 300, 1234)
    times = parse_cpu_times("cpu  10 1 5 100 3 0 2 4 6 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n")
    assert (times.total, times.busy, times.steal) == (125, 18, 4)  # guest (6) is already inside user
    assert parse_freq_khz("2445000\n") == 2445.0
    with pytest.raises(ValueError):
        parse_freq_khz("0\n")  # a zero frequency is not a frequency


def test_a_hog_outside_the_runs_tree_is_flagged_named_and_its_share_given(host: FakeHost):
    # Over 2 s on 2 cores: stress uses 150 ticks (1.5 s, 37.5%); the run (600 and its child 601) and greenrt are
    # busy too, but they are not interference.
    looks = _looks(host, [{"seconds": 1.0, "run": {700: 75, 600: 90, 601: 10, OWN: 20}, "busy_ticks": 195},
                          {"seconds": 1.0, "run": {700: 75, 600: 90, 601: 10, OWN: 20}, "busy_ticks": 195}])
    p = summarize(looks, own_pid=OWN, roots=[600], cores=2, ticks_per_s=HZ)
    assert p.window_s == 2.0 and p.others_cpu_s == 1.5 and p.others_share == 0.375
    assert [(t.pid, t.comm, t.cpu_s, t.share) for t in p.top] == [(700, "stress", 1.5, 0.375)]
    assert {OWN, 600, 601} <= set(p.excluded_pids) and 700 not in p.excluded_pids
    assert p.flagged and "37.5%" in p.reasons[0] and "stress (pid 700)" in p.reasons[0]
    assert p.host_busy_share == pytest.approx(390 / 400) and p.steal_share == 0.0
    assert p.load_1m_max == 1.5
    # The same looks with the run's tree not excluded: the run's CPU counts as others'.
    q = summarize(looks, own_pid=OWN, cores=2, ticks_per_s=HZ)
    assert q.others_cpu_s == pytest.approx(1.5 + 2.0)


def test_a_quiet_window_is_not_flagged_and_says_so(host: FakeHost):
    looks = _looks(host, [{"seconds": 2.0, "run": {600: 350, 1: 2, OWN: 30}, "busy_ticks": 382}])
    p = summarize(looks, own_pid=OWN, roots=[600], cores=2, ticks_per_s=HZ)
    assert p.others_cpu_s == 0.02 and p.others_share == 0.005
    assert not p.flagged and p.reasons == []
    assert p.summary().startswith("quiet: other processes used 0.5% of 2 CPUs")


def test_processes_starting_and_ending_inside_the_window_count_as_far_as_seen(host: FakeHost):
    looks = _looks(host, [
        {"seconds": 1.0, "spawn": {800: ("make", 1, 40, int(host.uptime_s * HZ) + 10)}},  # started after look 1
        {"seconds": 1.0, "run": {800: 60, 700: 30}},
        {"seconds": 1.0, "end": [700, 800]},  # both ended: what they used after the last look is lost with them
    ])
    p = summarize(looks, own_pid=OWN, roots=[600], cores=2, ticks_per_s=HZ)
    assert {t.pid: t.cpu_s for t in p.top} == {800: 1.0, 700: 0.3}
    assert p.others_share == pytest.approx(1.3 / 6, abs=1e-4)  # rounded to 4 places


def test_a_reused_pid_is_a_new_process(host: FakeHost):
    looks = _looks(host, [{"seconds": 1.0, "end": [700]},
                          {"seconds": 1.0, "spawn": {700: ("other", 1, 20, int(host.uptime_s * HZ) + 50)}}])
    p = summarize(looks, own_pid=OWN, roots=[600], cores=2, ticks_per_s=HZ)
    assert [(t.comm, t.cpu_s) for t in p.top] == [("other", 0.2)]  # never 20 - 10_000 ticks


def test_a_child_of_the_run_stays_the_runs_after_its_parent_ends(host: FakeHost):
    looks = _looks(host, [{"seconds": 1.0, "run": {601: 50}}, {"seconds": 1.0, "end": [600], "run": {601: 80}}])
    host.procs[601] = ("worker", 1, host.procs[601][2], host.procs[601][3])  # reparented to init
    host.advance(1.0)
    host.write()
    looks.append(host.look().snapshot())
    p = summarize(looks, own_pid=OWN, roots=[600], cores=2, ticks_per_s=HZ)
    assert 601 in p.excluded_pids and p.others_cpu_s == 0


def test_the_window_is_bracketed_by_the_looks_around_it(host: FakeHost):
    looks = _looks(host, [{"seconds": 1.0, "run": {700: 100}},  # before the window
                          {"seconds": 1.0, "run": {700: 20}},   # the window: 1.2 s .. 1.8 s
                          {"seconds": 1.0, "run": {700: 100}}])  # after
    p = summarize(looks, window=(1_200_000_000, 1_800_000_000), own_pid=OWN, roots=[600], cores=2, ticks_per_s=HZ)
    assert p.window_s == 1.0 and p.looks == 2 and p.others_cpu_s == 0.2


def test_steal_above_its_threshold_flags_and_frequency_is_read_where_the_kernel_gives_it(host: FakeHost):
    for cpu, khz in (("cpu0", "2400000"), ("cpu1", "1800000")):
        (host.cpu / cpu / "cpufreq").mkdir(parents=True)
        (host.cpu / cpu / "cpufreq" / "scaling_cur_freq").write_text(khz + "\n")
    looks = _looks(host, [{"seconds": 2.0, "steal_ticks": 40}])
    p = summarize(looks, own_pid=OWN, roots=[600], cores=2, ticks_per_s=HZ)
    assert p.steal_share == 0.1 and p.flagged and p.reasons == [
        "the hypervisor stole 10.0% of CPU time (threshold 5%)"]
    assert (p.frequency.status, p.frequency.mean_mhz, p.frequency.min_mhz, p.frequency.max_mhz) == (
        "ok", 2100.0, 1800.0, 2400.0)


def test_an_unreadable_frequency_says_why_and_is_never_zero(host: FakeHost):
    looks = _looks(host, [{"seconds": 1.0}])
    p = summarize(looks, own_pid=OWN, cores=2, ticks_per_s=HZ)
    assert p.frequency.status == "unreadable" and p.frequency.mean_mhz is None
    assert "scaling_cur_freq" in p.frequency.reason and "cpufreq" in p.frequency.reason
    (host.cpu / "cpu0" / "cpufreq").mkdir(parents=True)
    (host.cpu / "cpu0" / "cpufreq" / "scaling_cur_freq").write_text("0\n")
    p = summarize(_looks(host, [{"seconds": 1.0}]), own_pid=OWN, cores=2, ticks_per_s=HZ)
    assert p.frequency.status == "unreadable" and "0 kHz" in p.frequency.reason


def test_other_processes_on_the_runs_gpus_flag_the_window(host: FakeHost):
    gpu_now = [GpuProcess(0, 601, 2**30), GpuProcess(0, 700, 3 * 2**29), GpuProcess(1, 4242, None)]
    look = host.look()
    look.gpu_reader = lambda: gpu_now
    first = look.snapshot()
    host.advance(1.0)
    host.write()
    p = summarize([first, look.snapshot()], own_pid=OWN, roots=[600], gpu_indices=[0, 1], cores=2, ticks_per_s=HZ)
    assert [(g.gpu_index, g.pid, g.comm, g.used_memory_mib) for g in p.gpu.processes] == [
        (0, 700, "stress", 1536.0), (1, 4242, None, None)]  # 601 is the run's own
    assert p.flagged and p.reasons == [("2 other process(es) on the run's GPUs: stress (pid 700) on GPU 0, "
                                        "? (pid 4242) on GPU 1")]
    kept = summarize([first, look.snapshot()], own_pid=OWN, roots=[600], gpu_indices=[0, 1], cores=2,
                     ticks_per_s=HZ, thresholds=Thresholds(gpu_others=False))
    assert not kept.flagged and len(kept.gpu.processes) == 2  # recorded, not flagged, when the config says so


def test_an_nvml_that_fails_leaves_the_gpu_side_unreadable_with_why(host: FakeHost):
    def refused(indices):
        raise RuntimeError("NVML Shared Library Not Found")

    observer = InterferenceObserver(own_pid=OWN, gpu_indices=[0], look=host.look(), cores=2,
                                    gpu_reader_factory=refused, interval_s=60).start()
    host.advance(1.0)
    host.write()
    p = observer.stop()
    assert p.gpu.status == "unreadable" and "NVML Shared Library Not Found" in p.gpu.reason and not p.flagged


def test_the_payload_is_json_and_reads_back_the_same(host: FakeHost):
    p = summarize(_looks(host, [{"seconds": 1.0, "run": {700: 100}}]), own_pid=OWN, cores=2, ticks_per_s=HZ)
    text = json.dumps(p.model_dump(mode="json"), allow_nan=False)
    assert Interference.model_validate(json.loads(text)) == p


def _flagged(host: FakeHost) -> Interference:
    return summarize(_looks(host, [{"seconds": 1.0, "run": {700: 100}}]), own_pid=OWN, roots=[600], cores=2,
                     ticks_per_s=HZ)


def test_the_policy_keeps_measures_again_within_its_bound_or_aborts(host: FakeHost):
    busy = _flagged(host)
    quiet = busy.model_copy(update={"flagged": False, "reasons": []})
    assert decide(quiet, "abort", 1, 2).action == "keep" and decide(quiet, "abort", 1, 2).note == ""
    assert decide(busy, "flag", 1, 2).action == "keep" and "kept, flagged" in decide(busy, "flag", 1, 2).note
    assert [decide(busy, "remeasure", attempt, 2).action for attempt in (1, 2, 3)] == ["remeasure", "remeasure", "keep"]
    assert "still busy after 3 measurements" in decide(busy, "remeasure", 3, 2).note
    abort = decide(busy, "abort", 1, 2)
    assert abort.action == "abort" and "stress (pid 700)" in abort.note


_CONFIG = 'name = "x"\nmodels = ["resnet50"]\nbatch_sizes = [1]\nruntimes = ["torch/native/cpu"]\n'


def test_the_config_chooses_the_policy_and_its_thresholds():
    cfg = parse_config(_CONFIG + "[interference]\non_busy = \"remeasure\"\nmax_remeasures = 3\n"
                                 "max_others_share = 0.2\n")
    assert (cfg.interference.on_busy, cfg.interference.max_remeasures) == ("remeasure", 3)
    assert thresholds_of(cfg.interference) == Thresholds(max_others_share=0.2, max_steal_share=0.05, gpu_others=True)
    # A policy, not what is measured: a sweep keeps its digest (and resumes) whatever it says.
    assert cfg.digest() == parse_config(_CONFIG).digest()


@pytest.mark.parametrize("line, says", [
    ('on_busy = "retry"', "'flag', 'remeasure' or 'abort'"),
    ("max_remeasures = 0", "greater than or equal to 1"),
    ("max_others_share = 1.5", "less than or equal to 1"),
    ('gpu_others = "yes"', "boolean"),
    ("treshold = 0.1", "valid keys here"),
])
def test_a_bad_interference_value_is_one_line_naming_what_is_valid(line: str, says: str):
    with pytest.raises(UserError) as caught:
        parse_config(_CONFIG + "[interference]\n" + line + "\n")
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and "interference." in message and says in message


def test_a_containers_processes_named_by_their_cgroup_are_the_runs(host: FakeHost):
    # A container's processes are not greenrt's children; its id in their cgroup says they are the run's.
    host.procs[900] = ("python", 880, 0, 90_500)
    host.write()
    (host.proc / "900" / "cgroup").write_text("0::/system.slice/docker-4f1c2a9e.scope\n")
    (host.proc / "700" / "cgroup").write_text("0::/user.slice/user-1000.slice/session-3.scope\n")
    observer = InterferenceObserver(own_pid=OWN, look=host.look(), cores=2, interval_s=60, watch_cgroups=True).start()
    host.run(900, 150)
    host.run(700, 50)
    host.advance(1.0)
    host.write()
    observer.exclude_cgroup("4f1c2a9e")
    p = observer.stop()
    assert 900 in p.excluded_pids and [t.pid for t in p.top] == [700] and p.others_cpu_s == 0.5
    with pytest.raises(RuntimeError):
        InterferenceObserver(own_pid=OWN, look=host.look()).exclude_cgroup("4f1c2a9e")


def test_the_observer_of_a_run_takes_the_configs_thresholds_and_interval():
    cfg = parse_config(_CONFIG + "[interference]\nmax_steal_share = 0.2\ninterval_ms = 250\ngpu_others = false\n")
    observer = observer_for(cfg.interference, gpu_indices=[1], owner_marker="GREENRT_OWNER_PID=7")
    assert observer.interval_s == 0.25 and observer.gpu_indices == [1] and observer.marker == b"GREENRT_OWNER_PID=7"
    assert observer.thresholds == Thresholds(max_others_share=0.1, max_steal_share=0.2, gpu_others=False)
