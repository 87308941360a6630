"""tensorflow/native through the shared measured loop (runners.loop.execute)."""
from __future__ import annotations

import numpy as np

import tf_helpers  # noqa: F401  (sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads)
from models.inputs import make_inputs
from models.registry import get_model
from models.tensorflow_models import build_tensorflow_model
from runners.adapters import create_adapter
from runners.adapters.tensorflow_native import TensorflowNativeAdapter
from runners.loop import execute
from runners.protocol import Budget
from tf_helpers import make_request


def test_cpu_run_of_mobilenet_gives_an_ok_result_with_the_registry_outputs(tmp_path):
    out = tmp_path / "out.npz"
    request = make_request(tmp_path, budget=Budget(warmup_iterations=2, min_iterations=3), outputs_path=str(out))
    adapter = create_adapter(request)
    assert isinstance(adapter, TensorflowNativeAdapter)
    result = execute(request, adapter)
    assert result.status == "ok", result.error
    assert result.iterations == 3 == len(result.latencies_ns) and result.warmup_iterations == 2
    assert all(t > 0 for t in result.latencies_ns)
    assert result.window_start_ns < result.window_end_ns
    assert sum(result.latencies_ns) <= result.window_end_ns - result.window_start_ns
    assert result.provider_used == "cpu" and result.devices and result.devices[0].startswith("cpu")
    assert result.versions["tensorflow"] == "2.21.0" and "keras" in result.versions
    assert result.peak_device_bytes is None and result.peak_host_rss_bytes > 0
    assert result.engine_build_seconds and result.load_seconds
    digest = result.output_digest["outputs"]
    assert list(digest) == list(get_model("mobilenet_v2").outputs) == ["logits"]
    assert digest["logits"]["shape"] == [1, 1000] and digest["logits"]["dtype"] == "float32"
    with np.load(out) as saved:
        assert saved["logits"].shape == (1, 1000) and np.isfinite(saved["logits"]).all()
    # one tf.function, traced once (in warm-up), never retraced in the window
    assert adapter.tracing_count() == 1


def test_nchw_inputs_are_transposed_to_nhwc_before_the_model(tmp_path):
    """The adapter's output on NCHW inputs is the Keras model's on x.transpose(0, 2, 3, 1), and the check is
    sensitive: swapping H and W (a plausible wrong transpose) gives other logits."""
    out = tmp_path / "out.npz"
    result = execute(make_request(tmp_path, batch_size=2, input_seed=5, outputs_path=str(out)))
    assert result.status == "ok", result.error
    spec = get_model("mobilenet_v2")
    nchw = make_inputs(spec, 2, 5)["pixel_values"]
    model = build_tensorflow_model("mobilenet_v2")
    right = model(np.transpose(nchw, (0, 2, 3, 1)), training=False).numpy()
    wrong = model(np.transpose(nchw, (0, 3, 2, 1)), training=False).numpy()
    with np.load(out) as saved:
        np.testing.assert_allclose(saved["logits"], right, atol=1e-4, rtol=0)
        assert np.abs(saved["logits"] - wrong).max() > 1e-2


def test_bert_inputs_and_outputs_are_mapped_by_name(tmp_path):
    """input_ids -> token_ids, attention_mask -> padding_mask, token_type_ids -> segment_ids; outputs renamed."""
    out = tmp_path / "bert.npz"
    result = execute(make_request(tmp_path, model="bert-base-uncased", batch_size=2, model_options={"seq_len": 16},
                                  budget=Budget(warmup_iterations=1, min_iterations=1), outputs_path=str(out)))
    assert result.status == "ok", result.error
    shapes = {name: o["shape"] for name, o in result.output_digest["outputs"].items()}
    assert shapes == {"last_hidden_state": [2, 16, 768], "pooler_output": [2, 768]}
    spec = get_model("bert-base-uncased")
    inputs = make_inputs(spec, 2, 0, {"seq_len": 16})
    model = build_tensorflow_model("bert-base-uncased", {"seq_len": 16})
    direct = model({"token_ids": inputs["input_ids"].astype("int32"),
                    "padding_mask": inputs["attention_mask"].astype("int32"),
                    "segment_ids": inputs["token_type_ids"].astype("int32")}, training=False)
    with np.load(out) as saved:
        np.testing.assert_allclose(saved["last_hidden_state"], direct["sequence_output"].numpy(), atol=1e-4)
        np.testing.assert_allclose(saved["pooler_output"], direct["pooled_output"].numpy(), atol=1e-4)


def test_cuda_on_a_cpu_host_is_unsupported_not_a_cpu_measurement(tmp_path):
    result = execute(make_request(tmp_path, runtime="tensorflow/native/cuda"))
    assert result.status == "error" and result.error.kind == "unsupported"
    assert "GPU" in result.error.message and "CPU" in result.error.message
    assert result.iterations == 0 and result.latencies_ns == [] and result.window_start_ns is None
    assert result.provider_used is None


def test_fp16_is_cuda_only_and_unknown_precisions_are_refused(tmp_path):
    for precision, words in (("fp16", "cuda only"), ("int8", "int8")):
        result = execute(make_request(tmp_path, precision=precision, run_id=precision))
        assert result.status == "error" and result.error.kind == "unsupported" and words in result.error.message
        assert result.latencies_ns == []
