"""mxnet/native through the shared loop (runners.loop.execute), in this process."""
from __future__ import annotations

import os

import mxnet as mx
import numpy as np
import pytest

from mx_helpers import make_request
from models.inputs import make_inputs
from models.mxnet_models import build_mxnet_model
from models.registry import get_model
from runners.loop import execute
from runners.protocol import Budget


def test_cpu_run_gives_an_ok_result_with_registry_outputs(tmp_path):
    outputs_path = tmp_path / "out.npz"
    result = execute(make_request(tmp_path, outputs_path=str(outputs_path),
                                  budget=Budget(warmup_iterations=2, min_iterations=3)))
    assert result.status == "ok", result.error
    assert result.iterations == len(result.latencies_ns) == 3 and result.warmup_iterations == 2
    assert result.window_start_ns < result.window_end_ns
    assert sum(result.latencies_ns) <= result.window_end_ns - result.window_start_ns
    assert result.provider_used == "cpu" and result.devices and result.devices[0].startswith("cpu")
    assert result.versions["mxnet"] == mx.__version__ and "MKLDNN" in result.versions["mxnet_features"]
    assert result.threads == int(os.environ.get("OMP_NUM_THREADS") or len(os.sched_getaffinity(0)))
    assert result.load_seconds > 0 and result.engine_build_seconds > 0
    assert list(result.output_digest["outputs"]) == ["logits"]
    assert result.output_digest["outputs"]["logits"]["shape"] == [1, 1000]
    # what the runner measured is the registry's model on the registry's inputs
    spec = get_model("mobilenet_v2")
    inputs = make_inputs(spec, 1, 0)
    expected = build_mxnet_model("mobilenet_v2")(mx.nd.array(inputs["pixel_values"]))[0].asnumpy()
    with np.load(outputs_path) as saved:
        assert list(saved) == ["logits"]
        np.testing.assert_allclose(saved["logits"], expected, rtol=1e-5, atol=1e-5)


def test_bert_run_names_both_outputs(tmp_path):
    result = execute(make_request(tmp_path, model="bert-base-uncased", batch_size=2, model_options={"seq_len": 8},
                                  budget=Budget(warmup_iterations=1, min_iterations=1)))
    assert result.status == "ok", result.error
    shapes = {k: v["shape"] for k, v in result.output_digest["outputs"].items()}
    assert shapes == {"last_hidden_state": [2, 8, 768], "pooler_output": [2, 768]}


def test_cuda_on_this_cpu_host_is_unsupported_not_a_cpu_run(tmp_path):
    result = execute(make_request(tmp_path, runtime="mxnet/native/cuda"))
    assert result.status == "error" and result.error.kind == "unsupported"
    assert "CUDA" in result.error.message
    assert result.iterations == 0 and result.latencies_ns == [] and result.provider_used is None


@pytest.mark.parametrize("runtime, precision, words", [
    ("mxnet/native/cpu", "fp16", "cuda only"),
    ("mxnet/native/cpu", "int8", "precision"),
    ("mxnet/native/tensorrt", "fp32", "provider"),
])
def test_unsupported_precision_or_provider(tmp_path, runtime, precision, words):
    result = execute(make_request(tmp_path, runtime=runtime, precision=precision))
    assert result.status == "error" and result.error.kind == "unsupported" and words in result.error.message


def test_threads_that_cannot_take_effect_are_refused(tmp_path, monkeypatch):
    """MXNet is imported in this process already: OMP_NUM_THREADS can no longer change its thread pools."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    result = execute(make_request(tmp_path, threads=1))
    assert result.status == "error" and result.error.kind == "unsupported"
    assert "fresh process" in result.error.message and result.latencies_ns == []


def test_mkldnn_graph_backend_is_opt_in_recorded_and_computes_the_same(tmp_path):
    from models.fidelity import compare_outputs

    plain_out, fused_out = tmp_path / "plain.npz", tmp_path / "fused.npz"
    plain = execute(make_request(tmp_path, run_id="plain", batch_size=2, outputs_path=str(plain_out)))
    fused = execute(make_request(tmp_path, run_id="fused", batch_size=2, outputs_path=str(fused_out),
                                 provider_options={"backend": "MKLDNN"}))
    assert plain.status == fused.status == "ok", (plain.error, fused.error)
    assert plain.versions["mxnet_backend"].startswith("none") and fused.versions["mxnet_backend"] == "MKLDNN"
    with np.load(plain_out) as a, np.load(fused_out) as b:
        assert compare_outputs({"logits": a["logits"]}, {"logits": b["logits"]})["faithful"]


@pytest.mark.parametrize("options, kind", [({"backend": "TensorRT"}, "unsupported"), ({"graph": "x"}, "bad-request")])
def test_unknown_backend_or_provider_option_is_refused(tmp_path, options, kind):
    result = execute(make_request(tmp_path, provider_options=options))
    assert result.status == "error" and result.error.kind == kind and result.latencies_ns == []
