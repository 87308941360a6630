"""A full disk under a real sweep (a small tmpfs holds the results): the sweep stops with one line, the journal is
intact, and once there is room again the same command resumes with every run present exactly once."""
from __future__ import annotations

import subprocess

import pytest

from testkit.faults_helpers import ORT, assert_every_run_once, fault_config, journal, output_of, run_sweep, start_sweep, wait_for

pytestmark = [pytest.mark.process, pytest.mark.root]


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def fill(folder) -> None:
    with open(folder / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass


def test_a_full_disk_stops_the_sweep_cleanly_and_the_journal_stays_whole(tmp_path, small_disk):
    config = fault_config(tmp_path / "c.toml", runtimes=[ORT], batch_sizes="[1, 2]", min_seconds=0.5, cooldown_s=3)
    out, lock = small_disk / "out", tmp_path / "lock"
    sweep = start_sweep(config, out, lock)
    wait_for(lambda: len(journal(out)) == 1, what="the first record")
    fill(small_disk)  # in the cooldown: the next run has no room for its request, result or record
    assert sweep.wait(timeout=120) == 1, output_of(sweep)
    errors = [line for line in output_of(sweep).splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: disk full (No space left on device"), errors
    assert "free space and rerun the same command to resume" in errors[0]
    [record] = journal(out)  # readable, whole, and only the finished run
    assert record["status"] == "ok"

    (small_disk / "filler").unlink()
    resumed = run_sweep(config, out, lock)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "1 already recorded" in resumed.stdout
    assert_every_run_once(out)
