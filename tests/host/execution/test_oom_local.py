"""A runner the kernel's OOM killer ends is recorded as `oom` by the local launcher, from the kernel's own evidence
(its log naming the runner's pid, or the memory cgroup's oom_kill counter), and a plain SIGKILL is not."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from orchestrator.execution.launchers.local import oom_kill_counters, oom_kill_verdict
from orchestrator.execution.run import classify_outcome
from testkit.launching import launch

ALLOCATE = ('exec python3 -c "import sys; print(\'allocating until killed\', flush=True); h = []\n'
            'while True: h.append(bytearray(16 << 20))"')


def _memory_cgroup(limit: int) -> Path:
    """A fresh memory cgroup limited to `limit` bytes, without swap (v1 or v2, whichever this host mounts)."""
    v2, v1 = Path("/sys/fs/cgroup/cgroup.controllers"), Path("/sys/fs/cgroup/memory")
    name = f"greenrt-oom-test-{uuid.uuid4().hex[:8]}"
    if v2.is_file():
        group = Path("/sys/fs/cgroup") / name
        group.mkdir()
        (group / "memory.max").write_text(str(limit))
        (group / "memory.swap.max").write_text("0")
    else:
        group = v1 / name
        group.mkdir()
        (group / "memory.limit_in_bytes").write_text(str(limit))
        swap = group / "memory.memsw.limit_in_bytes"
        if swap.exists():
            swap.write_text(str(limit))
    return group


@pytest.mark.root
def test_a_runner_killed_by_the_oom_killer_is_an_oom_failure(tmp_path):
    assert os.geteuid() == 0, "needs root to make a memory cgroup"
    group = _memory_cgroup(128 << 20)
    try:
        outcome = launch(tmp_path, f"echo $$ > {group}/cgroup.procs\n{ALLOCATE}", timeout_s=60)
    finally:
        group.rmdir()
    assert outcome.exit_code == -9 and outcome.oom_killed, (outcome.exit_code, outcome.details, outcome.log_tail)
    assert "Killed process" in outcome.details["oom_evidence"] or "oom_kill counter" in outcome.details["oom_evidence"]
    failure = classify_outcome(outcome, None, "no readable result")
    assert failure.kind == "oom" and "allocating until killed" in failure.log_tail


def test_a_plain_sigkill_is_not_taken_for_the_oom_killer(tmp_path):
    outcome = launch(tmp_path, "echo about to be killed; kill -9 $$")
    assert outcome.exit_code == -9 and not outcome.oom_killed
    failure = classify_outcome(outcome, None, "no readable result")
    assert failure.kind == "killed" and "SIGKILL" in failure.message
    assert outcome.details["oom_evidence"] in failure.message


def test_the_verdict_says_when_it_cannot_tell():
    ends = oom_kill_verdict(2**22 + 1, {}, {})
    assert ends == (False, "cannot tell: no OOM-kill counter is readable here (no memory cgroup file, no /proc/vmstat)")
    assert oom_kill_verdict(2**22 + 1, {"cgroup": 1}, {"cgroup": 2})[0]
    assert not oom_kill_verdict(2**22 + 1, {"system": 1}, {"system": 2})[0]
    assert "system" in oom_kill_counters()  # /proc/vmstat: Linux 4.13 and newer
