"""OpenVINO's own runtime on a small ONNX model, through the runner's CLI and the shared loop (real openvino)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from models.fidelity import compare_outputs
from models.inputs import make_inputs
from models.registry import get_model
from ov_helpers import ROOT, build_tiny_classifier, make_request
from runners.adapters.openvino_runtime import OpenVinoAdapter, provider_option_refusal
from runners.loop import execute
from runners.protocol import RunResult, read_json, to_dict, write_json_atomic


def runners(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "runners", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _cli_run(tmp_path, request) -> tuple[subprocess.CompletedProcess, RunResult]:
    path = tmp_path / f"{request.run_id}.request.json"
    write_json_atomic(path, to_dict(request))
    proc = runners("run", "--request", str(path))
    return proc, read_json(RunResult, request.result_path)


def test_cli_run_records_what_openvino_chose_and_matches_numpy(tmp_path, tiny_onnx):
    request = make_request(tmp_path, tiny_onnx.path, batch_size=2, threads=1, outputs_path=str(tmp_path / "out.npz"))
    proc, result = _cli_run(tmp_path, request)
    assert proc.returncode == 0, proc.stderr
    assert result.status == "ok" and result.provider_used == "cpu" and result.threads == 1
    assert result.iterations == len(result.latencies_ns) >= 5
    assert result.versions["openvino"].startswith("2026.4.1") and result.versions["openvino_package"] == "2026.4.1"
    facts = result.runtime_facts
    # What greenrt asked for: the request's threads, and f32 for an fp32 run (the CPU plugin's default may be bf16).
    assert facts["requested"] == {"INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": "f32"}
    compiled = facts["compiled"]
    assert compiled["inference_num_threads"] == 1 and compiled["inference_precision_hint"] == "f32"
    assert compiled["performance_hint"] == "LATENCY"  # OpenVINO's shipped default: not set by greenrt
    assert compiled["num_streams"] >= 1 and compiled["execution_devices"] == ["CPU"]
    assert {"performance_hint", "num_streams", "inference_num_threads", "inference_precision_hint"} <= set(
        facts["device_defaults"])
    assert facts["model_inputs"] == {"pixel_values": "[?,3,224,224]"}
    # Compiled for the run's own shape, not the file's dynamic batch (the plugin would plan for any batch per call).
    assert facts["compiled_inputs"] == {"pixel_values": "[2,3,224,224]"}
    assert facts["static_shapes"] == {"applied": True, "shapes": {"pixel_values": [2, 3, 224, 224]}}
    # The same seeded inputs through an independent numpy implementation of the graph.
    spec = get_model("mobilenet_v2")
    inputs = make_inputs(spec, 2, request.input_seed, spec.resolve_options({}))
    with np.load(request.outputs_path) as saved:
        report = compare_outputs({"logits": tiny_onnx.reference(inputs["pixel_values"])}, dict(saved))
    assert report["faithful"], report
    assert result.output_digest["outputs"]["logits"]["shape"] == [2, 1000]


def test_conversion_and_compilation_happen_in_load_outside_the_window(tmp_path, tiny_onnx):
    result = execute(make_request(tmp_path, tiny_onnx.path))
    assert result.status == "ok", result.error
    facts = result.runtime_facts
    assert 0 < facts["read_model_seconds"] and 0 < facts["compile_model_seconds"]
    assert facts["read_model_seconds"] + facts["compile_model_seconds"] <= result.load_seconds
    # Compiled (on the window's clock) before the first inference, and that before the measured window.
    assert facts["compile_model_end_ns"] < result.first_inference_ns <= result.window_start_ns < result.window_end_ns
    assert result.engine_build_seconds is not None and result.warmup_iterations == 2


def test_provider_options_are_applied_and_read_back(tmp_path, tiny_onnx):
    options = {"performance_hint": "THROUGHPUT", "num_streams": 2, "inference_num_threads": 2}
    result = execute(make_request(tmp_path, tiny_onnx.path, provider_options=options))
    assert result.status == "ok", result.error
    compiled = result.runtime_facts["compiled"]
    assert compiled["performance_hint"] == "THROUGHPUT" and compiled["num_streams"] == 2
    assert compiled["inference_num_threads"] == 2 and result.threads == 2
    assert result.runtime_facts["requested"]["PERFORMANCE_HINT"] == "THROUGHPUT"


def test_an_explicit_precision_hint_replaces_f32_and_is_recorded(tmp_path, tiny_onnx):
    adapter = OpenVinoAdapter()
    adapter.load(make_request(tmp_path, tiny_onnx.path, provider_options={"inference_precision_hint": "bf16"}))
    facts = adapter.runtime_facts()
    assert facts["requested"]["INFERENCE_PRECISION_HINT"] == "bf16"
    # bf16 where the CPU has it; the plugin says what it really uses either way (f32 on CPUs without bf16).
    assert facts["compiled"]["inference_precision_hint"] in ("bf16", "f32")


@pytest.mark.parametrize("options, threads, says", [
    ({"performance_hint": "FASTEST"}, None,
     "provider option performance_hint = 'FASTEST' is not one of LATENCY | THROUGHPUT | CUMULATIVE_THROUGHPUT"),
    ({"num_streams": 0}, None, "provider option num_streams = 0 is not one of AUTO | NUMA | a positive integer"),
    ({"inference_precision_hint": "int8"}, None, "is not one of f32 | bf16 | f16"),
    ({"streams": 2}, None, "unknown provider option(s) streams; valid: performance_hint (LATENCY | THROUGHPUT"),
    ({"inference_num_threads": 3}, 1, "inference_num_threads = 3 contradicts threads = 1"),
])
def test_bad_provider_options_are_refused_in_one_line_before_loading(tmp_path, tiny_onnx, options, threads, says):
    assert says in provider_option_refusal(options, threads)
    request = make_request(tmp_path, tiny_onnx.path, provider_options=options, threads=threads)
    proc, result = _cli_run(tmp_path, request)
    assert proc.returncode == 1
    assert result.status == "error" and result.error.kind == "bad-request" and says in result.error.message
    assert len(result.error.message.splitlines()) == 1
    assert result.load_seconds is None and result.runtime_facts is None  # refused before anything was loaded


def test_fp16_and_a_missing_artifact_are_refused_with_the_reason(tmp_path, tiny_onnx):
    fp16 = execute(make_request(tmp_path, tiny_onnx.path, precision="fp16"))
    assert fp16.error.kind == "unsupported" and "precision 'fp16' is not one of fp32" in fp16.error.message
    missing = execute(make_request(tmp_path, tmp_path / "absent.onnx"))
    assert missing.error.kind == "load" and "absent.onnx does not exist" in missing.error.message
    assert provider_option_refusal({}, None) is None


def test_the_result_file_keeps_the_facts(tmp_path, tiny_onnx):
    request = make_request(tmp_path, tiny_onnx.path)
    proc, result = _cli_run(tmp_path, request)
    assert proc.returncode == 0, proc.stderr
    raw = json.loads((tmp_path / f"{request.run_id}.result.json").read_text())
    assert raw["runtime_facts"]["compiled"] == result.runtime_facts["compiled"]
    assert f"{request.run_id}: ok, {result.iterations} iterations" in proc.stderr


def test_a_model_that_refuses_the_run_shape_is_compiled_as_declared_and_says_why(tmp_path):
    # An Add of a constant [3, ...] tensor ties the graph to batch 3 (or 1): reshaping its input to batch 2 fails.
    path = build_tiny_classifier(tmp_path / "batch3.onnx", fixed_batch=3).path
    adapter = OpenVinoAdapter()
    adapter.load(make_request(tmp_path, path, batch_size=2))
    facts = adapter.runtime_facts()
    assert facts["static_shapes"]["applied"] is False and facts["static_shapes"]["reason"]
    assert facts["compiled_inputs"] == {"pixel_values": "[?,3,224,224]"}  # the file's own shape, compiled anyway
