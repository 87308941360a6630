"""Launching a runtime's runner by its client (issue 25): the one command function, the local launcher starting a
program other than `python -m runners` in a venv's layout (its arguments, NODE_PATH, a missing program, SIGTERM),
the C++ runner built where it is missing, and the inputs file a non-Python runner reads (process tier: real child
processes, standing in for the runners)."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from models.inputs import make_inputs
from models.registry import get_model
from orchestrator import paths
from orchestrator.execution.inputs_cache import InputsCache, InputsUnavailable
from orchestrator.execution.launchers.commands import NODE_RUNNER, RunnerPlace, runner_command
from orchestrator.execution.launchers.docker import IMAGE_PLACE
from orchestrator.execution.launchers.local import LocalLauncher
from orchestrator.execution.run import classify_outcome
from orchestrator.provisioning.environments import EnvironmentBuildError, EnvironmentManager
from runners.inputs_file import read_inputs

pytestmark = pytest.mark.process


def test_one_function_names_every_clients_command():
    place = RunnerPlace("/venv/bin/python", Path("/checkout"), Path("/venv/bin"), Path("/venv/node_modules"))
    assert runner_command(None, place) == (["/venv/bin/python", "-m", "runners"], {})
    assert runner_command("python", place) == (["/venv/bin/python", "-m", "runners"], {})
    assert runner_command("node", place) == (["node", "/checkout/runners/node/runner.js"],
                                             {"NODE_PATH": "/venv/node_modules"})
    assert runner_command("cpp", place) == (["/venv/bin/greenrt-torch-runner"], {})
    # In an image: the venv's python and the C++ runner on PATH, the checkout under /opt/greenrt/src, NODE_PATH set.
    assert runner_command("node", IMAGE_PLACE) == (["node", "/opt/greenrt/src/runners/node/runner.js"], {})
    assert runner_command("cpp", IMAGE_PLACE) == (["greenrt-torch-runner"], {})
    assert runner_command(None, IMAGE_PLACE)[0] == ["python", "-m", "runners"]
    with pytest.raises(ValueError, match="valid: node, python, cpp"):
        runner_command("rust", place)
    assert (paths.PROJECT_ROOT / NODE_RUNNER).is_file()


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _venv(tmp_path: Path, runner_body: str | None) -> LocalLauncher:
    """A venv's layout: bin/python, bin/greenrt-torch-runner (when a body is given), node_modules/ beside bin/."""
    python = _script(tmp_path / "venv" / "bin" / "python", 'echo "python $@"')
    if runner_body is not None:
        _script(tmp_path / "venv" / "bin" / "greenrt-torch-runner", runner_body)
    (tmp_path / "venv" / "node_modules").mkdir()
    return LocalLauncher(EnvironmentManager(default_interpreter=str(python)))


def _launch(launcher: LocalLauncher, tmp_path: Path, client: str | None, timeout_s: float = 30):
    return launcher.launch("torch", ["run", "--request", "r.json"], workdir=tmp_path, timeout_s=timeout_s,
                           env_vars={"GREENRT_TEST_VAR": "set"}, log_path=tmp_path / f"{client}.log", client=client)


def test_the_cpp_client_starts_the_environments_program_with_the_same_arguments(tmp_path):
    launcher = _venv(tmp_path, 'echo "cpp $@ $GREENRT_TEST_VAR"; exit 1')
    outcome = _launch(launcher, tmp_path, "cpp")
    assert outcome.exit_code == 1 and "cpp run --request r.json set" in outcome.log_tail
    assert outcome.details["command"] == str(tmp_path / "venv" / "bin" / "greenrt-torch-runner")
    assert "python -m runners run --request r.json" in _launch(launcher, tmp_path, None).log_tail


def test_the_node_client_runs_the_checkouts_runner_with_the_environments_packages(tmp_path):
    launcher = _venv(tmp_path, None)
    request = tmp_path / "missing.json"
    outcome = launcher.launch("onnxruntime-node", ["run", "--request", str(request)], workdir=tmp_path,
                              timeout_s=60, env_vars={}, log_path=tmp_path / "node.log", client="node")
    # The real runner.js under Node.js: a request it cannot read is exit 2 (docs/clients.md), and it said so.
    assert outcome.exit_code == 2 and outcome.start_error is None, outcome.log_tail
    assert outcome.details["command"] == "node" and str(request) in outcome.log_tail
    probe = subprocess.run(["node", "-e", "console.log(process.env.NODE_PATH)"], capture_output=True, text=True,
                           env={**os.environ, **runner_command("node", RunnerPlace(
                               "p", paths.PROJECT_ROOT, None, tmp_path / "venv" / "node_modules"))[1]})
    assert probe.stdout.strip() == str(tmp_path / "venv" / "node_modules")


def test_a_runner_that_is_not_there_is_a_start_failure_not_a_traceback(tmp_path):
    outcome = _launch(_venv(tmp_path, None), tmp_path, "cpp")
    assert outcome.exit_code is None and "cannot start" in outcome.start_error
    assert "greenrt-torch-runner" in outcome.start_error
    assert classify_outcome(outcome, None, None).kind == "start"


def test_a_client_runner_ended_by_sigterm_is_a_killed_run(tmp_path):
    pid_file = tmp_path / "runner.pid"
    launcher = _venv(tmp_path, f'echo $$ > {pid_file}; exec sleep 30')

    def terminate() -> None:
        for _ in range(200):
            if pid_file.exists() and pid_file.read_text().strip():
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
                return
            time.sleep(0.05)

    threading.Thread(target=terminate).start()
    outcome = _launch(launcher, tmp_path, "cpp")
    assert outcome.exit_code == -signal.SIGTERM and not outcome.timed_out
    failure = classify_outcome(outcome, None, "no readable result")
    assert failure.kind == "killed" and "SIGTERM" in failure.message


def test_a_client_runner_past_its_time_limit_is_a_timeout(tmp_path):
    outcome = _launch(_venv(tmp_path, "exec sleep 30"), tmp_path, "cpp", timeout_s=1)
    assert outcome.timed_out and classify_outcome(outcome, None, None).kind == "timeout"


def test_the_cpp_runner_is_built_where_it_is_missing_and_used_as_it_is_where_built(tmp_path, monkeypatch):
    monkeypatch.setenv("GREENRT_CACHE", str(tmp_path / "cache"))
    calls = tmp_path / "calls"
    build = _script(tmp_path / "build.sh", f'echo "$1" >> {calls}; bin=$(dirname "$1"); '
                                           f'printf "#!/bin/sh\\necho built\\n" > "$bin/greenrt-torch-runner"; '
                                           f'chmod +x "$bin/greenrt-torch-runner"')
    python = _script(tmp_path / "venv" / "bin" / "python", "true")
    launcher = LocalLauncher(EnvironmentManager(default_interpreter=str(python)), cpp_build_script=build)
    assert launcher.prepare_client("torch", "node") == "nothing to prepare"
    assert launcher.prepare_client("torch", "cpp").endswith("(built now)")
    assert launcher.prepare_client("torch", "cpp").endswith("(built)")
    assert calls.read_text().splitlines() == [str(python)]  # once, with the environment's interpreter
    assert "built" in _launch(launcher, tmp_path, "cpp").log_tail


def test_a_failed_build_says_why_and_where_its_log_is(tmp_path, monkeypatch):
    monkeypatch.setenv("GREENRT_CACHE", str(tmp_path / "cache"))
    build = _script(tmp_path / "build.sh", 'echo "CMake Error: Could not find Torch"; exit 1')
    python = _script(tmp_path / "venv" / "bin" / "python", "true")
    launcher = LocalLauncher(EnvironmentManager(default_interpreter=str(python)), cpp_build_script=build)
    with pytest.raises(EnvironmentBuildError) as caught:
        launcher.prepare_client("torch", "cpp")
    message = str(caught.value)
    assert "building greenrt-torch-runner" in message and "exit 1" in message
    assert "CMake Error: Could not find Torch" in message and "torch.greenrt-torch-runner.build.log" in message


def test_the_inputs_file_is_written_once_with_the_python_runners_arrays(tmp_path):
    cache = InputsCache(tmp_path / "inputs")
    index = cache.ensure("mobilenet_v2", 2, 7, {})
    expected = make_inputs(get_model("mobilenet_v2"), 2, 7)
    got = read_inputs(index)
    assert list(got) == list(expected)
    for name in expected:
        assert got[name].dtype == expected[name].dtype and np.array_equal(got[name], expected[name])
    written = index.stat().st_mtime_ns
    assert cache.ensure("mobilenet_v2", 2, 7, {}) == index and index.stat().st_mtime_ns == written  # cached
    assert cache.ensure("mobilenet_v2", 1, 7, {}) != index and cache.ensure("mobilenet_v2", 2, 8, {}) != index
    assert not list((tmp_path / "inputs").glob("*.partial"))  # published by a rename, nothing half-written


def test_token_inputs_keep_their_options_and_a_bad_option_is_unavailable(tmp_path):
    cache = InputsCache(tmp_path / "inputs")
    arrays = read_inputs(cache.ensure("bert-base-uncased", 1, 0, {"seq_len": 16}))
    assert {a.shape for a in arrays.values()} == {(1, 16)} and {a.dtype.name for a in arrays.values()} == {"int64"}
    with pytest.raises(InputsUnavailable, match="inputs of bert-base-uncased at batch 1"):
        cache.ensure("bert-base-uncased", 1, 0, {"seq_len": "long"})
