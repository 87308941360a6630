"""The Node.js runner honours the runner protocol (runners/protocol.py, runners/loop.py, runners/cli.py)."""
from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
from conftest import node_env, node_request, run_node, runner_command, write_request

from runners.protocol import SCHEMA_VERSION, Budget, RunResult, from_dict

pytestmark = pytest.mark.timeout(300)


def test_a_run_answers_a_result_of_the_protocol_with_its_window_on_the_hosts_clock(tmp_path, conv_onnx):
    request = node_request(tmp_path, conv_onnx, budget=Budget(warmup_iterations=3, warmup_seconds=0.2,
                                                              min_iterations=7, min_seconds=0.3))
    before = time.monotonic_ns()
    answer = run_node(tmp_path, request)
    after = time.monotonic_ns()
    assert answer.returncode == 0, answer.stderr
    result = from_dict(RunResult, answer.result)  # the Python side reads it: same fields, same schema version
    assert result.status == "ok" and result.schema == SCHEMA_VERSION
    assert (result.run_id, result.runtime, result.model, result.batch_size) == (
        "node-test", "onnxruntime/onnx-from-torch/cpu@node", "mobilenet_v2", 2)
    assert before < result.process_start_ns <= result.first_inference_ns < result.window_start_ns
    assert result.window_start_ns < result.window_end_ns < after
    assert result.iterations == len(result.latencies_ns) >= 7
    assert result.window_end_ns - result.window_start_ns >= 0.3e9
    assert sum(result.latencies_ns) <= result.window_end_ns - result.window_start_ns
    assert result.warmup_iterations >= 3 and result.warmup_seconds >= 0.2
    assert 0 < result.engine_build_seconds <= result.warmup_seconds and result.load_seconds > 0
    assert result.provider_used == "CPUExecutionProvider" and result.devices[0].startswith("cpu: ")
    assert result.versions["onnxruntime"] == "1.31.1" and result.versions["onnxruntime-node"] == "1.31.1"
    assert result.peak_host_rss_bytes > 10 * 2**20
    assert result.output_digest["outputs"]["logits"]["shape"] == [2, 10]
    assert "ok, " in answer.stderr


def test_the_window_stops_at_max_seconds(tmp_path, conv_onnx):
    request = node_request(tmp_path, conv_onnx, budget=Budget(warmup_iterations=0, min_iterations=10**9,
                                                              max_seconds=0.5))
    answer = run_node(tmp_path, request)
    assert answer.returncode == 0, answer.stderr
    span = answer.result["window_end_ns"] - answer.result["window_start_ns"]
    assert 0.5e9 <= span < 5e9
    assert answer.result["first_inference_ns"] == answer.result["window_start_ns"]  # no warm-up


@pytest.mark.parametrize("change, message", [
    ({"surprise": 1}, "unknown field(s) surprise"),
    ({"schema": 99}, "schema 99"),
    ({"budget": {"min_iterations": 1, "typo": 2}}, "Budget: unknown field(s) typo"),
])
def test_a_request_off_the_protocol_is_refused_with_a_bad_request_result(tmp_path, conv_onnx, change, message):
    from runners.protocol import to_dict

    data = {**to_dict(node_request(tmp_path, conv_onnx)), **change}
    answer = run_node(tmp_path, data)
    assert answer.returncode == 2
    assert answer.result["status"] == "error" and answer.result["error"]["kind"] == "bad-request"
    assert message in answer.result["error"]["message"] and message in answer.stderr
    assert "Error" not in answer.stderr.split("bad request:")[0]  # one line, no trace


@pytest.mark.parametrize("fields, kind, message", [
    ({"batch_size": 0}, "bad-request", "batch size must be a positive integer"),
    ({"threads": 0}, "bad-request", "threads must be a positive integer"),
    ({"inputs_path": None}, "bad-request", "needs inputs_path"),
    ({"runtime": "onnxruntime/onnx-from-torch/cpu"}, "bad-request", "framework/format/provider@client"),
    ({"runtime": "onnxruntime/onnx-from-torch/cuda@node"}, "unsupported", "valid: cpu"),
    ({"runtime": "torch/native/cpu@node"}, "unsupported", "onnxruntime/onnx-from-*/cpu@node only"),
    ({"provider_options": {"session.disable_cpu_ep_fallback": True}}, "bad-request", "refuses every node"),
    ({"artifact_path": "/nonexistent/model.onnx"}, "load", "does not exist"),
])
def test_a_failure_becomes_a_result_with_its_kind(tmp_path, conv_onnx, fields, kind, message):
    from dataclasses import replace

    request = replace(node_request(tmp_path, conv_onnx), **fields)
    answer = run_node(tmp_path, request)
    assert answer.returncode == 1, answer.stderr
    assert answer.result["status"] == "error"
    assert (answer.result["error"]["kind"], message in answer.result["error"]["message"]) == (kind, True), \
        answer.result["error"]
    assert f"error ({kind})" in answer.stderr


def test_a_file_that_is_no_onnx_model_is_a_load_failure(tmp_path, conv_onnx):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    answer = run_node(tmp_path, node_request(tmp_path, broken))
    assert answer.returncode == 1 and answer.result["error"]["kind"] == "load", answer.result["error"]


def test_bad_command_lines_say_the_usage_and_exit_2(tmp_path):
    from conftest import RUNNER, node_binary

    for argv in ([], ["fly"], ["run"], ["run", "--request"]):
        done = subprocess.run([node_binary(), str(RUNNER), *argv], env=node_env(), capture_output=True, text=True)
        assert done.returncode == 2 and "usage: node runners/node/runner.js run --request FILE | versions" in \
            done.stderr and len(done.stderr.splitlines()) == 1


def test_versions_names_node_and_onnxruntime_node(tmp_path):
    from conftest import RUNNER, node_binary

    done = subprocess.run([node_binary(), str(RUNNER), "versions"], env=node_env(), capture_output=True, text=True)
    assert done.returncode == 0
    assert json.loads(done.stdout)["onnxruntime-node"] == "1.31.1"


def test_sigterm_in_the_window_ends_the_runner_by_the_signal_without_a_result(tmp_path, conv_onnx):
    """As the Python runner (no handler: the process ends by SIGTERM), so the orchestrator records it "killed"."""
    request = node_request(tmp_path, conv_onnx, budget=Budget(warmup_iterations=1, min_iterations=1,
                                                              min_seconds=60))
    proc = subprocess.Popen(runner_command(write_request(tmp_path, request)), env=node_env(),
                            stderr=subprocess.PIPE, text=True)
    assert "loaded " in proc.stderr.readline()  # the session is built: the window follows within a moment
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM
    assert not (tmp_path / "result.json").exists()
    assert not list(tmp_path.glob(".result.json.*"))
