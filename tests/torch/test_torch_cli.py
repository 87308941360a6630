"""`python -m runners ...` as a real subprocess, the way the orchestrator launches it."""
from __future__ import annotations

import json
import subprocess
import sys

from torch_helpers import ROOT
from runners.protocol import ExportResult, RunResult, read_json


def runners(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "runners", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_run_round_trip_writes_a_valid_result(tmp_path):
    result_path = tmp_path / "out" / "result.json"
    request = {"run_id": "cli-1", "runtime": "torch/native/cpu", "model": "mobilenet_v2", "batch_size": 1,
               "result_path": str(result_path), "threads": 1,
               "budget": {"warmup_iterations": 1, "min_iterations": 3, "min_seconds": 0.0}}
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    proc = runners("run", "--request", str(path))
    assert proc.returncode == 0, proc.stderr
    result = read_json(RunResult, result_path)
    assert result.status == "ok" and result.run_id == "cli-1" and result.error is None
    assert result.iterations == len(result.latencies_ns) >= 3
    assert result.window_start_ns < result.window_end_ns and result.threads == 1
    assert result.output_digest["outputs"]["logits"]["shape"] == [1, 1000]
    assert result.load_seconds > 0 and result.engine_build_seconds > 0 and result.peak_host_rss_bytes > 0
    assert not list(result_path.parent.glob(".*.tmp"))  # written atomically, nothing left behind


def test_bad_request_file_exits_2_with_one_line_and_still_writes_an_error_result(tmp_path):
    result_path = tmp_path / "result.json"
    path = tmp_path / "request.json"
    path.write_text(json.dumps({"run_id": "bad", "runtime": "torch/native/cpu", "model": "mobilenet_v2",
                                "batch_size": 1, "result_path": str(result_path), "warmup": 3}))
    proc = runners("run", "--request", str(path))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "warmup" in proc.stderr
    result = read_json(RunResult, result_path)
    assert result.status == "error" and result.error.kind == "bad-request" and result.run_id == "bad"

    proc = runners("run", "--request", str(tmp_path / "missing.json"))
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_error_result_exits_1(tmp_path):
    result_path = tmp_path / "result.json"
    path = tmp_path / "request.json"
    path.write_text(json.dumps({"run_id": "cuda", "runtime": "torch/native/cuda", "model": "mobilenet_v2",
                                "batch_size": 1, "result_path": str(result_path)}))
    proc = runners("run", "--request", str(path))
    assert proc.returncode == 1
    assert read_json(RunResult, result_path).error.kind == "unsupported"


def test_export_of_a_framework_without_exporter_is_unsupported(tmp_path):
    result_path = tmp_path / "export.json"
    path = tmp_path / "request.json"
    path.write_text(json.dumps({"framework": "caffe", "model": "resnet50", "output_path": str(tmp_path / "m.onnx"),
                                "result_path": str(result_path)}))
    proc = runners("export", "--request", str(path))
    assert proc.returncode == 1
    result = read_json(ExportResult, result_path)
    assert result.status == "error" and result.error.kind == "unsupported" and "torch" in result.error.message


def test_versions_lists_the_installed_frameworks():
    proc = runners("versions")
    assert proc.returncode == 0
    versions = json.loads(proc.stdout)
    import torch

    assert versions["torch"] == torch.__version__.split("+")[0] or versions["torch"] == torch.__version__
    assert "onnxruntime" in versions and "python" in versions
