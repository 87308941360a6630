"""tensorflow/xla: the native adapter's model in tf.function(jit_compile=True), through the shared measured loop."""
from __future__ import annotations

import numpy as np
import pytest

import tf_helpers  # noqa: F401  (sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads)
from models.fidelity import compare_outputs
from runners.adapters import create_adapter
from runners.adapters.tensorflow_native import TensorflowNativeAdapter
from runners.adapters.tensorflow_xla import TensorflowXlaAdapter
from runners.loop import execute
from runners.protocol import Budget
from tf_helpers import TF_CPU, make_request

XLA_CPU = "tensorflow/xla/cpu"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """mobilenet_v2 batch 2 through tensorflow/native/cpu and tensorflow/xla/cpu, same seed, outputs kept."""
    tmp = tmp_path_factory.mktemp("xla")
    out = {}
    for runtime in (TF_CPU, XLA_CPU):
        name = runtime.split("/")[1]
        request = make_request(tmp, runtime=runtime, batch_size=2, run_id=name, outputs_path=str(tmp / f"{name}.npz"),
                               budget=Budget(warmup_iterations=1, min_iterations=3))
        adapter = create_adapter(request)
        result = execute(request, adapter)
        assert result.status == "ok", result.error
        with np.load(tmp / f"{name}.npz") as saved:
            out[name] = (adapter, result, dict(saved))
    return out


def test_the_xla_runtime_is_the_native_adapter_with_jit_compile(runs):
    adapter, result, _ = runs["xla"]
    assert isinstance(adapter, TensorflowXlaAdapter) and isinstance(adapter, TensorflowNativeAdapter)
    assert adapter.jit_compile and not runs["native"][0].jit_compile
    assert result.provider_used == "cpu" and result.versions["tensorflow"] == "2.21.0"


def test_xla_compiled_the_function_in_warm_up_and_never_in_the_window(runs):
    _, result, _ = runs["xla"]
    facts = result.runtime_facts
    assert facts["jit_compile"] is True and facts["xla"]["must_compile"] is True
    assert facts["xla"]["hlo"]["instructions"] > 100  # a whole MobileNetV2 handed to XLA, not a stub
    assert facts["traces_before_window"] == 1 and facts["traces_in_window"] == 0
    # the compilation is the first warm-up iteration: longer than any measured one, and before the window
    assert result.engine_build_seconds > max(result.latencies_ns) / 1e9
    assert result.first_inference_ns < result.window_start_ns


def test_the_native_runtime_reports_its_function_uncompiled(runs):
    facts = dict(runs["native"][1].runtime_facts)
    assert facts.pop("math")["policy"] == "fp32-strict/autotune-on"  # the math policy (tests/tensorflow/test_tf_math.py)
    assert facts == {"jit_compile": False, "traces": 1, "traces_before_window": 1, "traces_in_window": 0}


def test_xla_outputs_are_faithful_to_the_native_run(runs):
    report = compare_outputs(runs["native"][2], runs["xla"][2])
    assert report["faithful"], report
    assert report["max_abs_error"] > 0 or np.array_equal(runs["native"][2]["logits"], runs["xla"][2]["logits"])


@pytest.mark.parametrize("budget", [Budget(warmup_iterations=0, min_iterations=2),
                                    Budget(warmup_iterations=0, warmup_seconds=0.0, min_iterations=1)])
def test_a_budget_without_warm_up_is_refused_before_loading(tmp_path, budget):
    result = execute(make_request(tmp_path, runtime=XLA_CPU, budget=budget))
    assert result.status == "error" and result.error.kind == "bad-request"
    assert "compilation would fall inside the window" in result.error.message
    assert result.load_seconds is None and result.iterations == 0


def test_a_warm_up_in_seconds_alone_is_enough(tmp_path):
    adapter = TensorflowXlaAdapter()
    adapter.check_request(make_request(tmp_path, runtime=XLA_CPU,
                                       budget=Budget(warmup_iterations=0, warmup_seconds=0.5, min_iterations=1)))
