"""The C++ runner honours the runner protocol of `python -m runners run` (runners/cli.py, runners/loop.py)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import fields
from pathlib import Path

import pytest
import torch

from cpp_client_helpers import ROOT, command, make_request, run_client, write_request
from runners.protocol import Budget, RunResult, from_dict, to_dict


def test_versions_name_the_torch_it_was_built_against(runner):
    done = subprocess.run([str(runner), "versions"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    versions = json.loads(done.stdout)
    assert versions["client"] == "cpp"
    assert versions["torch"] == torch.__version__.split("+")[0]


@pytest.mark.parametrize("fmt", ["torchscript", "aoti"])
def test_a_run_is_bracketed_by_the_hosts_monotonic_clock(runner, artifacts, inputs_index, tmp_path, fmt):
    before = time.monotonic_ns()
    answer = run_client(tmp_path, "cpp", make_request(tmp_path, fmt, "cpp", artifacts, inputs_index,
                                                      budget=Budget(warmup_iterations=2, min_iterations=4,
                                                                    min_seconds=0.2)))
    after = time.monotonic_ns()
    assert answer.returncode == 0, answer.stderr
    r = answer.result
    assert set(r) == {f.name for f in fields(RunResult)}  # every field of the Python runner's result, no other
    result = from_dict(RunResult, r)
    assert result.status == "ok" and result.error is None
    assert before <= result.process_start_ns <= result.first_inference_ns <= result.window_start_ns
    assert result.window_start_ns < result.window_end_ns <= after
    assert result.window_end_ns - result.window_start_ns >= 0.2e9
    assert result.iterations == len(result.latencies_ns) >= 4
    assert sum(result.latencies_ns) <= result.window_end_ns - result.window_start_ns
    assert result.warmup_iterations == 2 and result.warmup_seconds >= result.engine_build_seconds > 0
    assert result.load_seconds > 0 and result.peak_host_rss_bytes > 50e6
    assert result.provider_used == "cpu" and result.devices[0].startswith("cpu: ")


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_are_honoured(runner, artifacts, inputs_index, tmp_path, threads):
    answer = run_client(tmp_path, "cpp", make_request(tmp_path, "torchscript", "cpp", artifacts, inputs_index,
                                                      threads=threads))
    assert answer.returncode == 0, answer.stderr
    assert answer.result["threads"] == threads


def _refused(answer, kind: str, returncode: int, *words: str) -> None:
    assert answer.returncode == returncode, answer.stderr
    assert answer.result["status"] == "error" and answer.result["error"]["kind"] == kind, answer.result["error"]
    assert "Traceback" not in answer.stderr and len(answer.stderr.strip().splitlines()) <= 3
    for word in words:
        assert word in answer.result["error"]["message"]


def test_a_request_that_is_not_one_is_refused_with_a_result_and_status_2(runner, artifacts, inputs_index, tmp_path):
    data = to_dict(make_request(tmp_path, "torchscript", "cpp", artifacts, inputs_index))
    answer = run_client(tmp_path, "cpp", {**data, "bogus": 1})
    _refused(answer, "bad-request", 2, "unknown field(s) bogus", "valid:")
    assert answer.result["run_id"] == data["run_id"] and answer.result["iterations"] == 0


def test_unreadable_request_file_is_status_2_without_a_result(runner, tmp_path):
    path = tmp_path / "request.json"
    path.write_text("{not json")
    done = subprocess.run(command("cpp", path), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "not valid JSON" in done.stderr


@pytest.mark.parametrize("change, words", [
    ({"batch_size": 0}, ["batch size"]),
    ({"threads": 0}, ["threads"]),
    ({"inputs_path": None}, ["inputs_path"]),
    ({"artifact_path": None}, ["artifact_path"]),
    ({"model": "resnet50"}, ["holds model 'mobilenet_v2'"]),
    ({"batch_size": 2}, ["batch size 2"]),
])
def test_bad_requests_are_kind_bad_request(runner, artifacts, inputs_index, tmp_path, change, words):
    data = {**to_dict(make_request(tmp_path, "torchscript", "cpp", artifacts, inputs_index)), **change}
    _refused(run_client(tmp_path, "cpp", data), "bad-request", 1, *words)


def test_a_runtime_it_does_not_run_is_unsupported(runner, artifacts, inputs_index, tmp_path):
    data = {**to_dict(make_request(tmp_path, "torchscript", "cpp", artifacts, inputs_index)),
            "runtime": "torch/native/cpu@cpp"}
    _refused(run_client(tmp_path, "cpp", data), "unsupported", 1, "torch/torchscript/cpu@cpp")


@pytest.mark.parametrize("fmt", ["torchscript", "aoti"])
def test_a_missing_artifact_is_kind_load(runner, artifacts, inputs_index, tmp_path, fmt):
    request = make_request(tmp_path, fmt, "cpp", artifacts, inputs_index, artifact_path=str(tmp_path / "gone.pt"))
    _refused(run_client(tmp_path, "cpp", request), "load", 1, "gone.pt")


def test_an_inputs_file_that_does_not_match_its_index_is_a_bad_request(runner, artifacts, inputs_index, tmp_path):
    folder = tmp_path / "inputs"
    folder.mkdir()
    index = json.loads(inputs_index.read_text())
    for entry in index["inputs"]:
        (folder / entry["file"]).write_bytes((inputs_index.parent / entry["file"]).read_bytes()[:-4])
    (folder / "inputs.json").write_text(json.dumps(index))
    request = make_request(tmp_path, "torchscript", "cpp", artifacts, inputs_index,
                           inputs_path=str(folder / "inputs.json"))
    _refused(run_client(tmp_path, "cpp", request), "bad-request", 1, "does not hold exactly")


def _cpu_seconds(pid: int) -> float:
    fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@pytest.mark.parametrize("client", ["cpp", "python"])
def test_sigterm_mid_window_ends_the_run_without_a_result(runner, artifacts, inputs_index, tmp_path, client):
    """As the Python runner: SIGTERM's default action ends the process (the orchestrator records "killed"), no
    result and no half-written file is left."""
    request = make_request(tmp_path, "torchscript", client, artifacts, inputs_index,
                           budget=Budget(warmup_iterations=1, min_iterations=1, min_seconds=300))
    path = write_request(tmp_path, request)
    process = subprocess.Popen(command(client, path), stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    # Load and warm-up take a few CPU-seconds (Python's import of torch the most): past 12, it is in the window.
    deadline = time.monotonic() + 240
    while _cpu_seconds(process.pid) < 12 and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.5)
    assert process.poll() is None
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == -signal.SIGTERM
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
