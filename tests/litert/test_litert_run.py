"""litert/tflite-from-tensorflow/cpu: real runs of a MobileNetV2 converted by the tensorflow environment."""
from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pytest

from litert_helpers import LITERT_CPU, runner, tensorflow_python
from models.fidelity import compare_outputs
from runners.loop import execute
from runners.protocol import Budget, ExportResult, RunRequest, RunResult, read_json


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """(model.tflite, TensorFlow's native outputs at batch 2, seed 3): both from the tensorflow environment."""
    tf_python = tensorflow_python()
    assert tf_python.exists(), f"no tensorflow environment at {tf_python}: `greenrt env build tensorflow` first"
    tmp = tmp_path_factory.mktemp("litert")
    export = {"framework": "tensorflow", "model": "mobilenet_v2", "target": "tflite",
              "output_path": str(tmp / "model.tflite"), "result_path": str(tmp / "export.json")}
    proc = runner(tf_python, "export", export, tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_json(ExportResult, tmp / "export.json").status == "ok"
    reference = {"run_id": "reference", "runtime": "tensorflow/native/cpu", "model": "mobilenet_v2", "batch_size": 2,
                 "input_seed": 3, "budget": {"warmup_iterations": 0, "min_iterations": 1},
                 "result_path": str(tmp / "reference.json"), "outputs_path": str(tmp / "reference.npz")}
    proc = runner(tf_python, "run", reference, tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(tmp / "reference.npz") as saved:
        return tmp / "model.tflite", dict(saved)


def _request(tmp_path, artifact, **kwargs) -> RunRequest:
    kwargs.setdefault("budget", Budget(warmup_iterations=2, min_iterations=5))
    return RunRequest(run_id="litert", runtime=LITERT_CPU, model="mobilenet_v2", result_path=str(tmp_path / "r.json"),
                      artifact_path=str(artifact), **{"batch_size": 2, **kwargs})


def test_a_run_through_the_runner_cli_is_measured_and_faithful_to_tensorflow(converted, tmp_path):
    artifact, reference = converted
    request = {"run_id": "litert", "runtime": LITERT_CPU, "model": "mobilenet_v2", "batch_size": 2, "input_seed": 3,
               "threads": 2, "artifact_path": str(artifact), "budget": {"warmup_iterations": 2, "min_iterations": 5},
               "result_path": str(tmp_path / "result.json"), "outputs_path": str(tmp_path / "outputs.npz")}
    proc = runner(sys.executable, "run", request, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = read_json(RunResult, tmp_path / "result.json")
    assert result.status == "ok" and result.iterations == 5 == len(result.latencies_ns)
    assert all(t > 0 for t in result.latencies_ns) and result.window_start_ns < result.window_end_ns
    assert result.provider_used == "cpu" and result.threads == 2 and result.devices[0].startswith("cpu")
    assert result.versions["ai-edge-litert"] == "2.3.0"
    facts = result.runtime_facts
    assert facts["num_threads"] == 2 and facts["interpreter"].startswith("ai-edge-litert")
    assert facts["delegate"].startswith("XNNPACK") and facts["delegate_partitions"] >= 1
    assert facts["model_ops"]["CONV_2D"] > 10 and facts["model_ops"]["DEPTHWISE_CONV_2D"] > 10
    with np.load(tmp_path / "outputs.npz") as saved:
        report = compare_outputs(reference, dict(saved))
    assert report["faithful"], report


def test_threads_unset_keep_litert_s_default_and_are_said_so(converted, tmp_path):
    artifact, _ = converted
    result = execute(_request(tmp_path, artifact, batch_size=1))
    assert result.status == "ok", result.error
    assert result.threads is None and result.runtime_facts["num_threads"] == "LiteRT's default (num_threads -1)"


def test_the_inputs_are_transposed_to_the_model_s_nhwc(converted, tmp_path):
    """A wrong transpose (H and W swapped) gives other logits: the check of the layout is sensitive."""
    artifact, reference = converted
    out = tmp_path / "o.npz"
    assert execute(_request(tmp_path, artifact, input_seed=3, outputs_path=str(out))).status == "ok"
    with np.load(out) as saved:
        np.testing.assert_allclose(saved["logits"], reference["logits"], atol=1e-4, rtol=0)
    assert execute(_request(tmp_path, artifact, input_seed=4, outputs_path=str(out))).status == "ok"
    with np.load(out) as saved:
        assert np.abs(saved["logits"] - reference["logits"]).max() > 1e-3  # other inputs, other outputs


def test_a_missing_model_file_is_a_bad_request_before_anything_loads(tmp_path):
    result = execute(_request(tmp_path, tmp_path / "absent.tflite"))
    assert result.status == "error" and result.error.kind == "bad-request"
    assert "no .tflite file at" in result.error.message and result.load_seconds is None


def test_there_is_no_cuda_litert_and_no_fp16(converted, tmp_path):
    artifact, _ = converted
    cuda = execute(replace(_request(tmp_path, artifact), runtime="litert/tflite-from-tensorflow/cuda"))
    assert cuda.status == "error" and cuda.error.kind == "unsupported"
    assert "litert has no provider 'cuda'; valid: cpu" in cuda.error.message
    fp16 = execute(_request(tmp_path, artifact, precision="fp16"))
    assert fp16.status == "error" and fp16.error.kind == "unsupported" and "fp32" in fp16.error.message
