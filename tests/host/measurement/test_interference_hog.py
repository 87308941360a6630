"""Busy-host detection on this machine's real /proc: a CPU hog the test starts beside a window is flagged, named and
given its share; the same window with the hog taken as the run's own is not flagged by it; a runner's process tree
(found by the owner marker in its environment) is never interference; doctor says whether the host is quiet.

This machine may be shared: other processes may use it during the window. So the "quiet" verdict is asserted over
the same looks with the hog counted as the run's, whose other-share is exactly the hog's CPU time smaller, not
against an absolute zero that a busy neighbour would break.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testkit.nvidia_host import SimGpu, SimHost, run_greenrt
from orchestrator.measurement.interference import InterferenceObserver, summarize
from orchestrator.results.interference_payload import Thresholds

HZ = os.sysconf("SC_CLK_TCK")
HOG = "import time\nwhile True:\n    pass\n"


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def _started(argv: list[str], **kwargs) -> subprocess.Popen:
    process = subprocess.Popen(argv, start_new_session=True, **kwargs)
    deadline = time.monotonic() + 10
    while _cpu_s(process.pid) == 0 and time.monotonic() < deadline:  # running, not still being exec'd
        time.sleep(0.02)
    return process


def _end(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


@pytest.mark.process
def test_a_cpu_hog_beside_the_window_is_flagged_with_its_share_and_named():
    hog = _started([sys.executable, "-c", HOG])
    try:
        before, t0 = _cpu_s(hog.pid), time.monotonic()
        observer = InterferenceObserver(interval_s=0.25).start()
        t1 = time.monotonic()
        time.sleep(2.0)
        t2 = time.monotonic()
        busy = observer.stop()
        after, t3 = _cpu_s(hog.pid), time.monotonic()
    finally:
        _end(hog)
    [entry] = [t for t in busy.top if t.pid == hog.pid]
    assert entry.comm.startswith("python"), busy.top
    # What the observer gives the hog is what /proc said around the window, less at most what it could burn in
    # the moments between the test's reads and the observer's first and last looks.
    slack = (t1 - t0) + (t3 - t2) + 2 / HZ
    assert after - before - slack - 0.01 <= entry.cpu_s <= after - before + 0.01, (entry, before, after, slack)
    assert entry.cpu_s > 0.1, entry  # two seconds of a busy loop
    assert entry.share == pytest.approx(entry.cpu_s / (busy.window_s * busy.cores), abs=1e-3)
    assert busy.others_share >= entry.share
    assert busy.flagged and busy.reasons[0].startswith("other processes used"), busy.reasons
    # The same looks, the hog counted as the run's own (as a runner is): it is no longer interference.
    quiet = observer.result(exclude_pids=[hog.pid])
    assert hog.pid in quiet.excluded_pids and hog.pid not in [t.pid for t in quiet.top]
    assert quiet.others_cpu_s == pytest.approx(busy.others_cpu_s - entry.cpu_s, abs=2e-3)
    # At a threshold between the two, the hog alone decides the verdict.
    between = Thresholds(max_others_share=(busy.others_share + quiet.others_share) / 2, max_steal_share=1.0)
    common = {"own_pid": observer.own_pid, "cores": observer.cores, "ticks_per_s": HZ, "thresholds": between}
    assert summarize(observer.looks, **common).flagged
    assert not summarize(observer.looks, roots=[hog.pid], **common).flagged


@pytest.mark.process
def test_a_runner_found_by_its_owner_marker_is_the_runs_own_with_its_children(tmp_path: Path):
    # The "runner" carries the marker and starts a busy child (which inherits it); a second hog does not.
    runner_code = (f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {HOG!r}])\n"
                   "time.sleep(60)\n")
    marker = f"GREENRT_TEST_OWNER={os.getpid()}"
    runner = subprocess.Popen([sys.executable, "-c", runner_code], start_new_session=True,
                              env={**os.environ, "GREENRT_TEST_OWNER": str(os.getpid())})
    stranger = _started([sys.executable, "-c", HOG])
    try:
        time.sleep(0.5)
        observer = InterferenceObserver(interval_s=0.25, owner_marker=marker).start()
        time.sleep(1.5)
        payload = observer.stop()
        children = [int(p) for p in Path(f"/proc/{runner.pid}/task/{runner.pid}/children").read_text().split()]
    finally:
        _end(runner)
        _end(stranger)
    assert len(children) == 1
    assert {runner.pid, children[0]} <= set(payload.excluded_pids), payload.excluded_pids
    tops = [t.pid for t in payload.top]
    assert children[0] not in tops and stranger.pid in tops, payload.top


@pytest.mark.process
def test_doctor_says_whether_the_host_is_quiet_and_names_another_process_on_a_gpu(tmp_path: Path):
    # A process NVML lists on GPU 0 that is not greenrt's: doctor names it.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    try:
        host = SimHost([SimGpu("NVIDIA H100 80GB HBM3", other_pids=(sleeper.pid,))]).write(tmp_path / "host")
        done = run_greenrt(["doctor", "--powercap-root", str(tmp_path / "no-powercap")], env=host.env(), timeout=120)
    finally:
        _end(sleeper)
    assert done.returncode == 0, done.output
    [line] = [line for line in done.stdout.splitlines() if line.startswith("host activity (1 s): ")]
    assert line.startswith("host activity (1 s): busy now: ") and "(runs measured now would be flagged)" in line, line
    assert "other process(es) on the run's GPUs: python" in line and f"(pid {sleeper.pid}) on GPU 0" in line, line
