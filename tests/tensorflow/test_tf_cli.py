"""The runner entrypoint in a fresh process: `python -m runners run --request FILE` for tensorflow/native/cpu."""
from __future__ import annotations

import tf_helpers  # noqa: F401  (sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads)
from runners.protocol import RunResult, read_json
from tf_helpers import TF_CPU, run_cli


def test_run_request_round_trip_in_a_subprocess(tmp_path):
    request = {"run_id": "cli", "runtime": TF_CPU, "model": "mobilenet_v2", "batch_size": 2,
               "result_path": str(tmp_path / "result.json"), "threads": 1, "input_seed": 3,
               "budget": {"warmup_iterations": 1, "min_iterations": 3}}
    proc = run_cli("run", request, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cli: ok, 3 iterations" in proc.stderr and "threads 1" in proc.stderr
    result = read_json(RunResult, request["result_path"])
    assert result.status == "ok" and result.error is None
    assert result.runtime == TF_CPU and result.batch_size == 2 and result.iterations == 3
    assert result.threads == 1 and result.provider_used == "cpu"  # the intra-op pool the request asked for
    assert 0 < result.window_start_ns < result.window_end_ns and len(result.latencies_ns) == 3
    assert result.output_digest["outputs"]["logits"]["shape"] == [2, 1000]
    assert result.versions["tensorflow"] == "2.21.0"


def test_cuda_request_in_a_subprocess_exits_1_with_an_unsupported_result(tmp_path):
    request = {"run_id": "gpu", "runtime": "tensorflow/native/cuda", "model": "mobilenet_v2", "batch_size": 1,
               "result_path": str(tmp_path / "result.json")}
    proc = run_cli("run", request, tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    result = read_json(RunResult, request["result_path"])
    assert result.status == "error" and result.error.kind == "unsupported" and result.latencies_ns == []
