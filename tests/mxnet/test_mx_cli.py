"""`python -m runners ...` as a real subprocess in the mxnet environment, the way the orchestrator launches it."""
from __future__ import annotations

import json
import subprocess
import sys

from mx_helpers import ROOT
from runners.protocol import ExportResult, RunResult, read_json


def runners(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "runners", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_run_round_trip_writes_a_valid_result(tmp_path):
    result_path = tmp_path / "out" / "result.json"
    request = {"run_id": "mx-cli", "runtime": "mxnet/native/cpu", "model": "mobilenet_v2", "batch_size": 1,
               "result_path": str(result_path), "threads": 1,
               "budget": {"warmup_iterations": 1, "min_iterations": 3, "min_seconds": 0.0}}
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    proc = runners("run", "--request", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "mx-cli: ok" in proc.stderr
    result = read_json(RunResult, result_path)
    assert result.status == "ok" and result.run_id == "mx-cli" and result.error is None
    assert result.iterations == len(result.latencies_ns) >= 3
    assert result.window_start_ns < result.window_end_ns
    # a fresh process: the thread count is applied before MXNet loads, and recorded
    assert result.threads == 1 and result.versions["env.OMP_NUM_THREADS"] == "1"
    assert result.output_digest["outputs"]["logits"]["shape"] == [1, 1000]
    assert result.load_seconds > 0 and result.engine_build_seconds > 0 and result.peak_host_rss_bytes > 0
    assert not list(result_path.parent.glob(".*.tmp"))


def test_cuda_request_exits_1_with_an_unsupported_result(tmp_path):
    result_path = tmp_path / "result.json"
    path = tmp_path / "request.json"
    path.write_text(json.dumps({"run_id": "cuda", "runtime": "mxnet/native/cuda", "model": "mobilenet_v2",
                                "batch_size": 1, "result_path": str(result_path)}))
    proc = runners("run", "--request", str(path))
    assert proc.returncode == 1
    result = read_json(RunResult, result_path)
    assert result.error.kind == "unsupported" and result.latencies_ns == []


def test_export_cli_reaches_the_mxnet_exporter(tmp_path):
    """An opset mx2onnx cannot write: refused by models.mxnet_export itself, through the CLI, without a file."""
    request = {"framework": "mxnet", "model": "mobilenet_v2", "output_path": str(tmp_path / "m.onnx"),
               "result_path": str(tmp_path / "export.json"), "opset": 17}
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    proc = runners("export", "--request", str(path))
    assert proc.returncode == 1
    result = read_json(ExportResult, request["result_path"])
    assert result.status == "error" and result.error.kind == "bad-request" and "12, 13" in result.error.message
    assert not (tmp_path / "m.onnx").exists()
