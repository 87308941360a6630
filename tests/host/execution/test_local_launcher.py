"""The local launcher with real processes: exit codes, time limits and process groups, interpreter overrides."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from orchestrator import paths
from orchestrator.provisioning.environments import EnvironmentManager
from orchestrator.errors import UserError
from orchestrator.execution.run import classify_outcome
from testkit.launching import launch


def test_exit_code_log_and_environment_reach_the_outcome(tmp_path):
    outcome = launch(tmp_path, 'echo "args: $@ var: $GREENRT_TEST_VAR"; echo boom >&2; exit 3')
    assert outcome.exit_code == 3 and not outcome.timed_out
    assert "args: -m runners run --request x.json var: set" in outcome.log_tail
    assert "boom" in outcome.log_tail
    failure = classify_outcome(outcome, None, "no readable result")
    assert failure.kind == "crash" and "exited with code 3" in failure.message


@pytest.mark.slow  # waits out a real time limit
def test_time_limit_kills_the_runner_and_its_children(tmp_path):
    pid_file = tmp_path / "child.pid"
    started = time.monotonic()
    outcome = launch(tmp_path, f"sleep 60 & echo $! > {pid_file}; wait", timeout_s=1)
    assert outcome.timed_out and outcome.exit_code is None
    assert time.monotonic() - started < 10
    child = int(pid_file.read_text())
    time.sleep(0.2)
    assert not process_alive(child)  # the whole process group went, not only the direct child
    assert classify_outcome(outcome, None, None).kind == "timeout"


def process_alive(pid: int) -> bool:
    """Running or sleeping; a killed process that nobody has reaped yet (a zombie) counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_a_missing_interpreter_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="interpreter '/no/such/python' not found"):
        EnvironmentManager(default_interpreter="/no/such/python").python_for("torch")


def test_unknown_environment_names_the_valid_ones():
    valid = ", ".join(paths.environment_names())  # every images/<env>/ folder, sorted
    assert {"torch", "tensorflow", "mxnet", "onnxruntime", "openvino", "litert"} <= set(paths.environment_names())
    with pytest.raises(UserError, match=f"unknown environment 'tensorflw'.*; valid: {valid}$"):
        EnvironmentManager().state("tensorflw")


def test_venv_is_stale_when_its_requirements_change(tmp_path, monkeypatch):
    from orchestrator import paths

    project = tmp_path / "project"
    (project / "images/demo").mkdir(parents=True)
    requirements = project / "images/demo/requirements.txt"
    requirements.write_text("numpy==2.4.6\n")
    monkeypatch.setattr(paths, "PROJECT_ROOT", project)
    envs = EnvironmentManager(root=tmp_path / "envs")
    assert envs.state("demo").state == "absent"
    # A venv as the builder leaves it: an interpreter and the stamp of the requirements it was built from.
    venv = tmp_path / "envs/demo"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin/python").symlink_to(sys.executable)
    from orchestrator.provisioning.environments import requirements_digest

    (venv / "greenrt-requirements.sha256").write_text(requirements_digest(requirements))
    assert envs.state("demo").state == "ready"
    requirements.write_text("numpy==2.4.5\n")
    assert envs.state("demo").state == "stale"
