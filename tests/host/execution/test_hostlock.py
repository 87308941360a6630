"""One sweep per host: a second sweep refuses to start while one holds the lock, naming the holder; a lock left by a
process killed with SIGKILL is taken over, and said so."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from testkit.faults_helpers import ORT, fault_config, run_sweep
from orchestrator.execution import hostlock
from orchestrator.errors import UserError

pytestmark = pytest.mark.process

HOLD = """
import sys, time
from pathlib import Path
from orchestrator.execution import hostlock
hostlock.acquire(Path(sys.argv[1]), Path(sys.argv[2]))
print("held", flush=True)
time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock for the sweep /srv/other-sweep."""
    path = tmp_path / "lock" / "greenrt-sweep.lock"
    process = subprocess.Popen([sys.executable, "-c", HOLD, "/srv/other-sweep", str(path)], stdout=subprocess.PIPE,
                               text=True, cwd=os.getcwd())
    assert process.stdout.readline().strip() == "held"
    yield process, path
    process.kill()
    process.wait()


def test_the_lock_is_exclusive_and_names_its_holder(holder, tmp_path):
    process, path = holder
    with pytest.raises(UserError) as refused:
        hostlock.acquire(tmp_path / "mine", path)
    message = str(refused.value)
    assert f"pid {process.pid} on " in message and "sweep /srv/other-sweep, since " in message
    assert "another greenrt sweep is measuring on this host" in message and str(path) in message


def test_a_lock_left_by_a_killed_sweep_is_taken_over_and_reported(holder, tmp_path):
    process, path = holder
    process.send_signal(signal.SIGKILL)
    process.wait()
    lock = hostlock.acquire(tmp_path / "mine", path)
    try:
        assert lock.recovered["pid"] == process.pid and lock.recovered["sweep"] == "/srv/other-sweep"
        assert not hostlock.alive(process.pid)
    finally:
        lock.release()
    again = hostlock.acquire(tmp_path / "mine", path)  # released: nothing to recover
    assert again.recovered is None
    again.release()


def test_a_second_sweep_refuses_to_start_while_one_measures(holder, tmp_path):
    process, path = holder
    config = fault_config(tmp_path / "c.toml", runtimes=[ORT])
    out = tmp_path / "out"
    done = run_sweep(config, out, path.parent)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: another greenrt sweep is measuring on this host (pid ")
    assert f"pid {process.pid}" in line and "/srv/other-sweep" in line
    assert not out.exists()  # refused before anything was written


def test_the_default_lock_is_host_wide_and_per_slurm_node(monkeypatch, tmp_path):
    monkeypatch.delenv("GREENRT_LOCK_DIR", raising=False)
    monkeypatch.delenv("SLURMD_NODENAME", raising=False)
    assert hostlock.lock_path().name == "greenrt-sweep.lock"
    assert hostlock.lock_path().parent in (hostlock.Path("/run/lock"), hostlock.Path("/tmp"))
    monkeypatch.setenv("SLURMD_NODENAME", "node 1/../x")
    assert hostlock.lock_path().name == "greenrt-sweep-node_1_.._x.lock"  # sanitised: no folder in a node name
    monkeypatch.setenv("GREENRT_LOCK_DIR", str(tmp_path))
    assert hostlock.lock_path().parent == tmp_path
