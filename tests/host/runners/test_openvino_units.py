"""OpenVINO's runtimes in the table and the pure parts of their adapters: provider chain, placement, options."""
from __future__ import annotations

import re

import pytest

from orchestrator.planning.runtimes import parse_runtime
from runners.adapters import adapter_class
from runners.adapters.onnxruntime_session import placement_summary, provider_chain
from runners.adapters.openvino_runtime import OpenVinoAdapter, compile_config, provider_option_refusal
from runners.failures import BadRequestError
from runners.protocol import RunRequest

# The "Node placements" section of onnxruntime-openvino 1.24.1's VERBOSE log for MobileNetV2 (captured as is).
OVEP_LOG = """\
2026-12-01 09:07:37.795147127 [V:onnxruntime:, session_state.cc:1307 VerifyEachNodeIsAssignedToAnEp] Node placements
2026-12-01 09:07:37.795150623 [V:onnxruntime:, session_state.cc:1310 VerifyEachNodeIsAssignedToAnEp]  All nodes placed on [OpenVINOExecutionProvider]. Number of nodes: 1
2026-12-01 09:07:37.795160147 [V:onnxruntime:, session_state.cc:175 CreateGraphInfo] SaveMLValueNameIndexMapping
"""


def _request(runtime: str, **kwargs) -> RunRequest:
    return RunRequest(run_id="r", runtime=runtime, model="mobilenet_v2", batch_size=1, result_path="/nonexistent/r.json",
                      **kwargs)


@pytest.mark.parametrize("name, environment", [
    ("openvino/onnx-from-torch/cpu", "openvino"), ("openvino/onnx-from-mxnet/cpu", "openvino"),
    ("onnxruntime/onnx-from-tensorflow/openvino", "onnxruntime-openvino"),
])
def test_both_openvino_runtimes_are_cpu_runtimes_compared_with_their_source(name, environment):
    runtime = parse_runtime(name)
    assert runtime.environment == environment and not runtime.needs_gpu
    assert runtime.reference_framework == runtime.source_framework and runtime.not_implemented_reason() is None
    assert adapter_class(name).__name__ in ("OpenVinoAdapter", "OnnxRuntimeAdapter")


def test_ort_openvino_ep_is_asked_for_the_cpu_with_the_requests_threads():
    chain = provider_chain("openvino", _request("onnxruntime/onnx-from-torch/openvino", threads=2,
                                                provider_options={"precision": "ACCURACY"}))
    assert chain == [("OpenVINOExecutionProvider", {"device_type": "CPU", "num_of_threads": "2", "precision": "ACCURACY"}),
                     ("CPUExecutionProvider", {})]
    assert provider_chain("openvino", _request("onnxruntime/onnx-from-torch/openvino"))[0][1] == {"device_type": "CPU"}


def test_ort_openvino_placement_counts_fused_subgraphs_and_says_so():
    summary = placement_summary(OVEP_LOG, "OpenVINOExecutionProvider")
    assert summary["status"] == "ok" and summary["by_provider"] == {"OpenVINOExecutionProvider": 1}
    assert summary["cpu_fallback_nodes"] == 0 and "one fused node" in summary["note"]
    assert "note" not in placement_summary(OVEP_LOG.replace("OpenVINO", "CUDA"), "CUDAExecutionProvider")


def test_openvino_compile_config_is_threads_precision_and_the_options_by_property_name():
    request = _request("openvino/onnx-from-torch/cpu", threads=2, provider_options={"performance_hint": "THROUGHPUT"})
    assert compile_config(request) == {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_NUM_THREADS": 2,
                                       "INFERENCE_PRECISION_HINT": "f32"}
    explicit = _request("openvino/onnx-from-torch/cpu", provider_options={"inference_precision_hint": "bf16"})
    assert compile_config(explicit) == {"INFERENCE_PRECISION_HINT": "bf16"}


@pytest.mark.parametrize("options, says", [
    ({"performance_hint": "latency"}, "is not one of LATENCY | THROUGHPUT | CUMULATIVE_THROUGHPUT"),
    ({"num_streams": True}, "num_streams = True is not one of AUTO | NUMA | a positive integer"),
    ({"inference_num_threads": "2"}, "inference_num_threads = '2' is not one of a positive integer"),
    ({"device": "GPU"}, "unknown provider option(s) device; valid: performance_hint"),
])
def test_bad_openvino_options_are_one_line_naming_the_valid_choices(options, says):
    reason = provider_option_refusal(options)
    assert says in reason and "\n" not in reason
    # The adapter refuses them as a bad request before anything is imported or loaded (no openvino on the host).
    with pytest.raises(BadRequestError, match=re.escape(says)):
        OpenVinoAdapter().check_request(_request("openvino/onnx-from-torch/cpu", provider_options=options))


def test_good_openvino_options_pass():
    assert provider_option_refusal({"performance_hint": "CUMULATIVE_THROUGHPUT", "num_streams": "AUTO",
                                    "inference_num_threads": 2, "inference_precision_hint": "f16"}, 2) is None


def test_the_adapter_reads_the_options_the_runtimes_table_declares():
    from runners.adapters.openvino_runtime import PROVIDER_OPTIONS
    from runners.runtimes_table import OPENVINO_OPTIONS, option_refusal

    assert set(PROVIDER_OPTIONS) == {option.key for option in OPENVINO_OPTIONS}
    # What a sweep's config is refused for (before anything runs), the adapter refuses too, and the other way round.
    assert "valid: LATENCY, THROUGHPUT" in option_refusal("openvino", "onnx-from-torch", "cpu", "performance_hint", "x")
    assert "valid: FP32, ACCURACY" in option_refusal("onnxruntime", "onnx-from-torch", "openvino", "precision", "FP16")
    assert option_refusal("onnxruntime", "onnx-from-torch", "openvino", "num_of_threads", "2") is None
