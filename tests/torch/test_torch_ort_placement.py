"""The ONNX Runtime adapter records where ORT placed the nodes, keeps its VERBOSE log out of runner.log and the
window, applies session.* config entries, and refuses a CPU fallback when asked to (real onnxruntime, CPU build)."""
from __future__ import annotations

import re

import onnx
import pytest

from torch_helpers import make_request
from runners.adapters.onnxruntime_session import OnnxRuntimeAdapter
from runners.loop import execute
from runners.protocol import RunResult, from_dict, to_dict

ORT_CPU = "onnxruntime/onnx-from-torch/cpu"
ORT_CUDA = "onnxruntime/onnx-from-torch/cuda"
VERBOSE_OR_INFO = re.compile(r"\[[VI]:onnxruntime:")


def _optimized_node_count(path, tmp_path) -> int:
    """Nodes of the graph ORT runs, from ORT itself: the optimized model it saves at the adapter's level."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    so.log_severity_level = 3
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return len(onnx.load(so.optimized_model_filepath).graph.node)


def test_cpu_run_records_its_placement_and_no_verbose_log_escapes(tmp_path, mobilenet_onnx, capfd):
    path, _ = mobilenet_onnx
    result = execute(make_request(tmp_path, runtime=ORT_CPU, artifact_path=str(path), threads=1))
    out, err = capfd.readouterr()
    assert result.status == "ok", result.error
    placement = result.node_placement
    assert placement["status"] == "ok" and placement["requested"] == "CPUExecutionProvider"
    assert placement["by_provider"] == {"CPUExecutionProvider": _optimized_node_count(path, tmp_path)}
    assert placement["cpu_fallback_nodes"] == 0 and placement["cpu_op_types"] == {}
    assert placement["verdict"] == "placed" and placement["cpu_shape_nodes"] == 0
    # runner.log gets one placement line, not ORT's VERBOSE construction log, nor anything from the runs.
    assert not VERBOSE_OR_INFO.search(out + err)
    assert err.count("onnxruntime: node placement: CPUExecutionProvider ") == 1
    assert from_dict(RunResult, to_dict(result)).node_placement == placement


def test_runs_after_a_verbose_construction_log_nothing(tmp_path, mobilenet_onnx, capfd):
    """A run's logger inherits the session's VERBOSE severity unless RunOptions sets one (InferenceSession::
    CreateLoggerForRun): the adapter sets errors only.  The CPU provider logs nothing per run either way, so here
    this guards the setting; a CUDA/TensorRT session is where it matters."""
    path, _ = mobilenet_onnx
    adapter = OnnxRuntimeAdapter()
    adapter.load(make_request(tmp_path, runtime=ORT_CPU, artifact_path=str(path)))
    assert adapter.run_options.log_severity_level == 3
    capfd.readouterr()
    import numpy as np

    prepared = adapter.prepare({"pixel_values": np.zeros((1, 3, 224, 224), dtype=np.float32)})
    for _ in range(3):
        adapter.run(prepared)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_a_cuda_request_that_ort_puts_on_the_cpu_records_every_node_as_fallback(tmp_path, mobilenet_onnx,
                                                                                 monkeypatch):
    """A build that lists CUDA but cannot enable it: refused as before, and the placement says why."""
    import onnxruntime

    path, _ = mobilenet_onnx
    available = onnxruntime.get_available_providers()
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", *available])
    result = execute(make_request(tmp_path, runtime=ORT_CUDA, artifact_path=str(path)))
    assert result.status == "error" and result.error.kind == "unsupported" and "fallback" in result.error.message
    placement = result.node_placement
    assert placement["requested"] == "CUDAExecutionProvider"
    assert placement["cpu_fallback_nodes"] == placement["by_provider"]["CPUExecutionProvider"] > 0
    assert placement["verdict"] == "cpu-fallback" and placement["cpu_shape_nodes"] == 0


def test_disable_cpu_ep_fallback_refuses_a_session_with_cpu_nodes(tmp_path, mobilenet_onnx, monkeypatch, capfd):
    """session.disable_cpu_ep_fallback = 1 reaches ORT: it refuses the session, and the failure says why."""
    import onnxruntime

    path, _ = mobilenet_onnx
    available = onnxruntime.get_available_providers()
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", *available])
    result = execute(make_request(tmp_path, runtime=ORT_CUDA, artifact_path=str(path),
                                  provider_options={"session.disable_cpu_ep_fallback": "1"}))
    assert result.status == "error" and result.error.kind == "unsupported"
    message = result.error.message
    assert message.startswith("refused: session.disable_cpu_ep_fallback = 1 and ONNX Runtime would run graph node(s) "
                              "on CPUExecutionProvider that CUDAExecutionProvider cannot take")
    assert "fallback to CPU EP has been explicitly disabled" in message  # ORT's own words, kept
    assert result.latencies_ns == [] and result.iterations == 0
    _, err = capfd.readouterr()
    assert "[E:onnxruntime" in err and not VERBOSE_OR_INFO.search(err)  # ORT's error line still reaches runner.log


def test_disable_cpu_ep_fallback_on_the_cpu_provider_is_a_bad_request(tmp_path, mobilenet_onnx):
    path, _ = mobilenet_onnx
    result = execute(make_request(tmp_path, runtime=ORT_CPU, artifact_path=str(path),
                                  provider_options={"session.disable_cpu_ep_fallback": True}))
    assert result.status == "error" and result.error.kind == "bad-request"
    assert "session.disable_cpu_ep_fallback = 1 refuses every node on the CPU provider" in result.error.message


def test_session_config_entries_are_applied_and_off_means_off(tmp_path, mobilenet_onnx):
    path, _ = mobilenet_onnx
    adapter = OnnxRuntimeAdapter()
    adapter.load(make_request(tmp_path, runtime=ORT_CPU, artifact_path=str(path),
                              provider_options={"session.intra_op.allow_spinning": "0",
                                                "session.disable_cpu_ep_fallback": False}))
    options = adapter.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.disable_cpu_ep_fallback") == "0"
    assert adapter.provider_options == [("CPUExecutionProvider", {})]  # no session key became a provider option


def test_an_unreadable_log_is_recorded_as_unknown_and_the_run_still_measures(tmp_path, mobilenet_onnx,
                                                                              monkeypatch):
    import runners.adapters.ort_placement as placement

    def no_section(lines):
        raise placement.PlacementParseError("ONNX Runtime's VERBOSE session log has no 'Node placements' section")

    monkeypatch.setattr(placement, "parse_node_placements", no_section)
    path, _ = mobilenet_onnx
    result = execute(make_request(tmp_path, runtime=ORT_CPU, artifact_path=str(path)))
    assert result.status == "ok", result.error
    assert result.node_placement["status"] == "unknown" and "no 'Node placements'" in result.node_placement["reason"]


def test_native_runtimes_record_no_placement(tmp_path):
    result = execute(make_request(tmp_path))
    assert result.status == "ok" and result.node_placement is None


@pytest.fixture(autouse=True)
def _ort_available():
    pytest.importorskip("onnxruntime")
