"""Stopping a sweep: SIGTERM and SIGINT clean up the run in flight and record it as interrupted; SIGKILL between
runs and during a run leaves a directory that resumes, the orphaned runner (process or container) is ended by the
next sweep, and in the end every planned run is in the journal exactly once. Real runners, real launchers."""
from __future__ import annotations

import signal

import pytest

from testkit.docker_helpers import assert_no_leftovers, engine_with_cpu_images
from testkit.faults_helpers import (ORT, assert_every_run_once, fault_config, journal, output_of, run_sweep,
                            runner_processes, start_sweep, wait_for)
from orchestrator.execution import hostlock
from orchestrator.provisioning.images import LABEL_PREFIX
from orchestrator.execution.launchers.docker import greenrt_containers

pytestmark = [pytest.mark.process, pytest.mark.docker]


def measuring(sweep, out):
    """A run of this sweep is in flight: a runner working on a request under out/runs/ (not an export)."""
    return runner_processes(sweep.pid, under=out / "runs")


def test_sigterm_mid_run_kills_the_runner_records_the_run_as_interrupted_and_resume_measures_it(tmp_path):
    config = fault_config(tmp_path / "c.toml", runtimes=[ORT], batch_sizes="[1, 2]", min_seconds=4)
    out, lock = tmp_path / "out", tmp_path / "lock"
    sweep = start_sweep(config, out, lock)
    wait_for(lambda: measuring(sweep, out), what="the first run's runner")
    sweep.send_signal(signal.SIGTERM)
    assert sweep.wait(timeout=60) == 128 + signal.SIGTERM, output_of(sweep)
    text = output_of(sweep)
    assert "error: interrupted by SIGTERM during r000-" in text and "rerun the same command to resume" in text
    assert not runner_processes(sweep.pid)  # its process group was killed before greenrt exited
    [record] = journal(out)
    assert record["status"] == "interrupted" and record["failure"]["kind"] == "interrupted"
    # The lock went with the sweep: another can take it at once.
    hostlock.acquire(out, lock / "greenrt-sweep.lock").release()

    resumed = run_sweep(config, out, lock)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "0 already recorded" in resumed.stdout  # the interrupted run is measured again
    assert_every_run_once(out)
    assert [r["status"] for r in journal(out)].count("interrupted") == 1


def test_sigkill_between_runs_and_during_a_run_loses_nothing_and_the_orphan_runner_is_ended(tmp_path):
    # Three runs with a 3 s cooldown between them: a window to kill the sweep with no run in flight.
    config = fault_config(tmp_path / "c.toml", runtimes=[ORT], batch_sizes="[1, 2, 4]", min_seconds=3,
                          cooldown_s=3)
    out, lock = tmp_path / "out", tmp_path / "lock"

    first = start_sweep(config, out, lock)
    wait_for(lambda: len(journal(out)) == 1, what="the first record")
    assert not runner_processes(first.pid)  # in the cooldown: between runs
    first.kill()
    first.wait(timeout=30)

    second = start_sweep(config, out, lock)
    wait_for(lambda: measuring(second, out), what="a runner of the resumed sweep")
    second.kill()  # during a run: its runner lives on, an orphan
    second.wait(timeout=30)
    orphans = runner_processes(second.pid)
    assert orphans, "the runner should outlive a greenrt killed with SIGKILL"
    assert len(journal(out)) == 1

    third = run_sweep(config, out, lock)
    assert third.returncode == 0, third.stdout + third.stderr
    assert f"taken over from a sweep that is no longer running (pid {second.pid}" in third.stdout
    assert f"left by greenrt {second.pid}, which is no longer running" in third.stdout
    assert "1 already recorded" in third.stdout
    assert not runner_processes(second.pid)
    assert_every_run_once(out)
    assert len(journal(out)) == 3  # a SIGKILL records nothing: no partial or duplicate line


@pytest.fixture(scope="module")
def engine():
    client, images = engine_with_cpu_images()
    yield client, images
    assert_no_leftovers(client)


def _containers(client, *sweeps):
    """Containers started by these sweeps (by their owner-pid label): another sweep's on this engine are not ours."""
    owners = {str(sweep.pid) for sweep in sweeps}
    return [c for c in greenrt_containers(client)
            if c.labels.get(LABEL_PREFIX + "owner-pid") in owners]


def _measuring(client, sweep):
    """A run's container (named after its run folder, r000-...), not a version query or an export, is running."""
    return [c for c in _containers(client, sweep) if c.status == "running" and c.name.startswith("greenrt-r0")]


def test_docker_sigint_removes_the_container_and_sigkill_leaves_one_that_the_next_sweep_removes(engine, tmp_path):
    client, _ = engine
    config = fault_config(tmp_path / "c.toml", runtimes=[ORT], batch_sizes="[1, 2]", min_seconds=3)
    out, lock = tmp_path / "out", tmp_path / "lock"

    first = start_sweep(config, out, lock, launcher="docker")
    wait_for(lambda: _measuring(client, first), what="the first run's container")
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=90) == 128 + signal.SIGINT, output_of(first)
    assert "error: interrupted by SIGINT during r000-" in output_of(first)
    assert _containers(client, first) == []  # removed on the way out
    assert [r["status"] for r in journal(out)] == ["interrupted"]

    second = start_sweep(config, out, lock, launcher="docker")
    wait_for(lambda: _measuring(client, second), what="a container of the resumed sweep")
    second.kill()
    second.wait(timeout=30)
    [orphan] = _containers(client, second)

    third = run_sweep(config, out, lock, "docker")
    assert third.returncode == 0, third.stdout + third.stderr
    assert f"removed container {orphan.name} left by greenrt {second.pid}" in third.stdout
    assert _containers(client, first, second) == []
    assert_every_run_once(out)
    assert [r["launcher"] for r in journal(out)] == ["docker"] * 3


def test_a_local_sweep_after_a_killed_docker_sweep_removes_the_orphaned_container_before_measuring(engine, tmp_path):
    """The guard asks every launcher for its leftovers, not only the one this sweep uses."""
    client, _ = engine
    config = fault_config(tmp_path / "c.toml", runtimes=[ORT], batch_sizes="[1, 2]", min_seconds=3)
    out, lock = tmp_path / "out", tmp_path / "lock"
    killed = start_sweep(config, out, lock, launcher="docker")
    wait_for(lambda: _measuring(client, killed), what="the Docker sweep's container")
    killed.kill()
    killed.wait(timeout=30)
    [orphan] = _containers(client, killed)

    local = run_sweep(config, out, lock, "local")
    assert local.returncode == 0, local.stdout + local.stderr
    removed = f"removed container {orphan.name} left by greenrt {killed.pid}"
    assert removed in local.stdout
    # Removed before the first run of this sweep was measured, not after.
    assert local.stdout.index(removed) < local.stdout.index("runs planned")
    assert _containers(client, killed) == []
    assert_every_run_once(out)
    assert [r["launcher"] for r in journal(out)][-2:] == ["local", "local"]
