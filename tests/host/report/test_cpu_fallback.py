"""No silent CPU fallback in a GPU cell: ORT's node placements parsed, recorded, tabled, reported, and refusable."""

import polars as pl
import pytest

from orchestrator.planning.config import parse_config
from orchestrator.errors import UserError
from orchestrator.report.findings import cpu_fallback_findings
from orchestrator.results.tables import run_row, runs_table
from testkit.records import make_record
from runners.adapters.onnxruntime_session import (PlacementParseError, log_passthrough, missing_kernel_ops,
                                                  parse_node_placements, placement_line, placement_summary,
                                                  provider_chain, session_config_entries)
from runners.protocol import RunRequest, RunResult, from_dict, to_dict
from testkit.paths import ORT_LOGS

# Captured from onnxruntime 1.32.0 (CPU build) on this project's host: InferenceSession(logreg_iris.onnx,
# log_severity_level=0, providers=[CPUExecutionProvider]), everything written to fd 2 during construction.
REAL_CPU_LOG = ORT_LOGS / "ort-1.32.0-cpu-logreg_iris-verbose.txt"  # a captured ORT log, kept as text

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
TRT = "TensorrtExecutionProvider"


def _v(line_no: int, message: str, function: str = "VerifyEachNodeIsAssignedToAnEp", severity: str = "V",
       source: str = "session_state.cc") -> str:
    """One line as ORT's default sink writes it: "<time> [<S>:onnxruntime:<logid>, <file>:<line> <function>] <msg>"."""
    return f"2026-12-01 06:37:06.550008163 [{severity}:onnxruntime:, {source}:{line_no} {function}] {message}"


def _multi_provider_log() -> list[str]:
    """A CUDA session with shape ops and an unsupported op on the CPU, in the format of session_state.cc's
    VerifyEachNodeIsAssignedToAnEp (header, per provider " Node(s) placed on [EP]. Number of nodes: N", and per node
    "  OpType (name)"), interleaved with other records as a real log has them; providers in unordered_map order."""
    return [
        _v(1139, "CUDA kernel not found in registries for Op type: NonMaxSuppression node name: /nms/NMS",
           "GetCapability", "I", "cuda_execution_provider.cc"),
        _v(393, "Add MemcpyToHost before /nms/NMS for CUDAExecutionProvider", "AddCopyNode", "I",
           "transformer_memcpy.cc"),
        _v(1598, "Node placements"),
        _v(1604, " Node(s) placed on [CPUExecutionProvider]. Number of nodes: 6"),
        _v(1606, "  Shape (/embeddings/Shape)"),
        _v(1606, "  Gather (/embeddings/Gather)"),
        _v(1606, "  Shape (/encoder/Shape_1)"),
        _v(1606, "  Unsqueeze (/encoder/Unsqueeze)"),
        _v(1606, "  Shape (/pooler/Shape)"),
        _v(1606, "  NonMaxSuppression (/nms/NMS)"),
        _v(1604, " Node(s) placed on [CUDAExecutionProvider]. Number of nodes: 5"),
        _v(1606, "  MemcpyToHost (Memcpy)"),
        _v(1606, "  MatMul (/encoder/layer.0/MatMul)"),
        _v(1606, "  Add (/encoder/layer.0/Add)"),
        _v(1606, "  Softmax (/encoder/layer.0/Softmax (with a parenthesis) in its name)"),
        _v(1606, "  MemcpyFromHost (Memcpy_token_2)"),
        "\x1b[0;93m" + _v(1616, "Some nodes were not assigned to the preferred execution providers which may or may "
                                "not have an negative impact on performance. e.g. ORT explicitly assigns shape related "
                                "ops to CPU to improve perf.", severity="W") + "\x1b[m",
        _v(196, "SaveMLValueNameIndexMapping", "CreateGraphInfo"),
    ]


def test_real_ort_1_32_cpu_log_all_nodes_on_one_provider():
    text = REAL_CPU_LOG.read_text()
    assert "All nodes placed on [CPUExecutionProvider]. Number of nodes: 3" in text  # what ORT 1.32 really printed
    parsed = parse_node_placements(text)
    assert parsed["by_provider"] == {CPU: 3} and parsed["listed"] is False
    assert placement_summary(text, CPU) == {"status": "ok", "requested": CPU, "by_provider": {CPU: 3},
                                            "cpu_fallback_nodes": 0, "cpu_op_types": {}, "cpu_shape_nodes": 0,
                                            "cpu_shape_op_types": {}, "memcpy_nodes": 0, "verdict": "placed"}
    # The same log under a cuda request (CUDA registered, but it took nothing): every node is a CPU fallback.
    summary = placement_summary(text.splitlines(), CUDA)
    assert summary["cpu_fallback_nodes"] == 3 and summary["cpu_op_types"] == {}
    assert summary["verdict"] == "cpu-fallback" and summary["cpu_shape_nodes"] == 0
    assert "lists no op types" in summary["note"]


def test_multi_provider_log_counts_nodes_per_provider_and_cpu_op_types():
    """The NMS node ORT found no CUDA kernel for is a fallback; the shape nodes, for which this log names no reason,
    are told apart by their op type (and the summary says so)."""
    summary = placement_summary(_multi_provider_log(), CUDA)
    assert summary["status"] == "ok"
    assert summary["by_provider"] == {CPU: 6, CUDA: 5}
    assert list(summary["by_provider"]) == [CPU, CUDA]  # most nodes first
    assert summary["cpu_fallback_nodes"] == 1 and summary["cpu_op_types"] == {"NonMaxSuppression": 1}
    assert summary["cpu_shape_nodes"] == 5 and summary["cpu_shape_op_types"] == {"Shape": 3, "Gather": 1,
                                                                                 "Unsqueeze": 1}
    assert summary["cpu_reasons"] == {"shape-by-op-type": 5, "no-kernel": 1}
    assert summary["memcpy_nodes"] == 2 and summary["verdict"] == "cpu-fallback"
    assert summary["note"] == ("5 CPU node(s) counted as shape computations by op type: ORT's log names no reason "
                               "for them")
    line = placement_line(summary)
    assert line == ("onnxruntime: node placement: CPUExecutionProvider 6, CUDAExecutionProvider 5; shape computations "
                    "on the CPU by ORT's design: 5 node(s) (Shape:3, Gather:1, Unsqueeze:1); CPU fallback: 1 node(s) "
                    "(NonMaxSuppression:1)")


def test_tensorrt_engines_count_as_one_fused_node_each():
    lines = [_v(1598, "Node placements"),
             _v(1604, " Node(s) placed on [TensorrtExecutionProvider]. Number of nodes: 2"),
             _v(1606, "  TRTKernel_graph_main_graph_1539334652_0 (TensorrtExecutionProvider_TRTKernel_graph_main_graph"
                      "_1539334652_0_0)"),
             _v(1606, "  TRTKernel_graph_main_graph_1539334652_1 (TensorrtExecutionProvider_TRTKernel_graph_main_graph"
                      "_1539334652_1_1)"),
             _v(1604, " Node(s) placed on [CUDAExecutionProvider]. Number of nodes: 1"),
             _v(1606, "  ScatterND (/ScatterND)")]
    summary = placement_summary(lines, TRT)
    assert summary["by_provider"] == {TRT: 2, CUDA: 1} and summary["cpu_fallback_nodes"] == 0
    assert summary["cpu_op_types"] == {}
    # The ScatterND TensorRT did not take ran on the CUDA EP: not a TensorRT measurement, and said so.
    assert summary["cuda_fallback_nodes"] == 1 and summary["cuda_op_types"] == {"ScatterND": 1}
    assert summary["verdict"] == "cuda-fallback"


def test_the_last_section_wins_and_a_logid_or_qualified_function_name_is_accepted():
    first = [_v(1598, "Node placements"), _v(1601, " All nodes placed on [CPUExecutionProvider]. Number of nodes: 9")]
    second = [line.replace("[V:onnxruntime:,", "[V:onnxruntime:run-7,")
              .replace(" VerifyEachNodeIsAssignedToAnEp]", " onnxruntime::VerifyEachNodeIsAssignedToAnEp]")
              for line in [_v(1598, "Node placements"),
                           _v(1601, " All nodes placed on [CUDAExecutionProvider]. Number of nodes: 40")]]
    assert parse_node_placements(first + second)["by_provider"] == {CUDA: 40}
    assert placement_summary(first + second, CUDA)["cpu_fallback_nodes"] == 0


@pytest.mark.parametrize("lines, reason", [
    ([], "no 'Node placements' section"),
    ([_v(1598, "Node placements")], "names no provider"),
    ([_v(1598, "Node placements"), _v(1601, " All nodes are on [CPUExecutionProvider]: 3")], "names no provider"),
])
def test_unreadable_placement_is_unknown_with_the_reason_never_an_error(lines, reason):
    with pytest.raises(PlacementParseError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_node_placements(lines)
    summary = placement_summary(lines, CUDA)
    assert summary["status"] == "unknown" and reason in summary["reason"] and summary["requested"] == CUDA
    assert placement_line(summary).startswith("onnxruntime: node placement unknown: ")


def test_a_listing_that_does_not_add_up_keeps_ort_counts_and_says_so():
    lines = [_v(1598, "Node placements"),
             _v(1604, " Node(s) placed on [CPUExecutionProvider]. Number of nodes: 2"), _v(1606, "  Shape (s)"),
             _v(1604, " Node(s) placed on [CUDAExecutionProvider]. Number of nodes: 1"), _v(1606, "  Conv (c)")]
    summary = placement_summary(lines, CUDA)
    # The unlisted node is counted as a fallback: nothing says it is a shape computation.
    assert summary["status"] == "ok" and summary["cpu_fallback_nodes"] == 1 and summary["cpu_shape_nodes"] == 1
    assert summary["note"].startswith("ORT lists 1 of the 2 node(s) on CPUExecutionProvider")


def test_placement_summary_survives_a_parser_bug(monkeypatch):
    import runners.adapters.ort_placement as placement

    def broken(lines):
        raise IndexError("boom")

    monkeypatch.setattr(placement, "parse_node_placements", broken)
    summary = placement.placement_summary(_multi_provider_log(), CUDA)
    assert summary["status"] == "unknown" and "IndexError: boom" in summary["reason"]


def test_only_warnings_errors_and_foreign_lines_of_the_construction_log_reach_runner_log():
    warning = ("/venv/onnxruntime_inference_collection.py:197: UserWarning: Specified provider 'CUDAExecutionProvider' "
               "is not in available provider names.")
    lines = [warning, "  warnings.warn(", *REAL_CPU_LOG.read_text().splitlines(), *_multi_provider_log(),
             _v(3309, "This session contains graph nodes that are assigned to the default CPU EP, but fallback to CPU "
                      "EP has been explicitly disabled by the user.", "operator()", "E", "inference_session.cc"),
             "  a continuation line of the error", _v(12, "verbose again"), "  its continuation"]
    kept = log_passthrough(lines)
    assert kept[:2] == [warning, "  warnings.warn("]
    assert len(kept) == 5 and "Some nodes were not assigned" in kept[2] and "[E:onnxruntime" in kept[3]
    assert kept[4] == "  a continuation line of the error"
    assert not any("[V:onnxruntime" in line or "[I:onnxruntime" in line for line in kept)


def test_missing_kernel_ops_are_named_for_a_refusal():
    assert missing_kernel_ops(_multi_provider_log()) == ["NonMaxSuppression"]


def test_session_keys_become_config_entries_and_never_provider_options(tmp_path):
    options = {"session.disable_cpu_ep_fallback": True, "session.intra_op.allow_spinning": 0, "device_id": 0,
               "CUDAExecutionProvider": {"arena_extend_strategy": "kSameAsRequested"}}
    assert session_config_entries(options) == {"session.disable_cpu_ep_fallback": "1",
                                               "session.intra_op.allow_spinning": "0"}
    request = RunRequest(run_id="r", runtime="onnxruntime/onnx-from-torch/tensorrt", model="resnet50", batch_size=1,
                         result_path=str(tmp_path / "result.json"), provider_options=options)
    chain = provider_chain("tensorrt", request)
    assert [name for name, _ in chain] == [TRT, CUDA, CPU]
    for _, opts in chain:
        assert not any(key.startswith("session.") for key in opts)
    assert chain[1][1]["arena_extend_strategy"] == "kSameAsRequested"


# ---------------------------------------------------------------------------------------------------------------
# The protocol, the tables and the report.

PLACEMENT = {"status": "ok", "requested": CUDA, "by_provider": {CUDA: 120, CPU: 5}, "cpu_fallback_nodes": 5,
             "cpu_op_types": {"Shape": 3, "Gather": 2}, "memcpy_nodes": 2}


def test_result_with_a_placement_round_trips_and_older_results_still_load():
    result = RunResult(run_id="r", runtime="onnxruntime/onnx-from-torch/cuda", model="bert-base-uncased",
                       batch_size=1, status="ok", node_placement=PLACEMENT)
    assert from_dict(RunResult, to_dict(result)) == result
    older = to_dict(result)
    del older["node_placement"]  # a result written before the field existed
    assert from_dict(RunResult, older).node_placement is None


def _ort_record(run_id, placement, runtime="onnxruntime/onnx-from-torch/cuda", index=0, **kwargs):
    record = make_record(run_id, runtime=runtime, index=index, **kwargs)
    if record["result"] is not None:
        record["result"]["node_placement"] = placement
    return record


def test_run_row_has_cpu_fallback_columns():
    row = run_row(_ort_record("a", PLACEMENT))
    assert row["cpu_fallback_nodes"] == 5 and row["cpu_fallback_ops"] == "Shape:3, Gather:2"
    clean = {**PLACEMENT, "by_provider": {CUDA: 125}, "cpu_fallback_nodes": 0, "cpu_op_types": {}}
    row = run_row(_ort_record("b", clean))
    assert (row["cpu_fallback_nodes"], row["cpu_fallback_ops"]) == (0, "")
    unknown = {"status": "unknown", "requested": CUDA, "reason": "no 'Node placements' section"}
    row = run_row(_ort_record("c", unknown))
    assert row["cpu_fallback_nodes"] is None and row["cpu_fallback_ops"] == "unknown: no 'Node placements' section"
    native = run_row(make_record("d", runtime="torch/native/cuda"))  # not ONNX Runtime: nothing to say
    assert native["cpu_fallback_nodes"] is None and native["cpu_fallback_ops"] is None
    old = run_row(_ort_record("e", None))  # an ORT result written before node_placement existed
    assert old["cpu_fallback_nodes"] is None and old["cpu_fallback_ops"] is None


def test_report_warns_about_gpu_cells_with_cpu_fallback_only():
    records = [_ort_record("a", PLACEMENT, index=0), _ort_record("b", PLACEMENT, index=1),
               _ort_record("c", {**PLACEMENT, "cpu_fallback_nodes": 0, "cpu_op_types": {}}, model="mobilenet_v2",
                           index=2),
               _ort_record("d", {"status": "ok", "requested": CPU, "by_provider": {CPU: 50}, "cpu_fallback_nodes": 0,
                                 "cpu_op_types": {}, "memcpy_nodes": 0}, runtime="onnxruntime/onnx-from-torch/cpu",
                           index=3),
               _ort_record("e", {"status": "unknown", "requested": TRT, "reason": "a minimal build"},
                           runtime="onnxruntime/onnx-from-torch/tensorrt", index=4),
               make_record("f", runtime="torch/native/cuda", index=5)]
    lines = cpu_fallback_findings(runs_table(records))
    assert len(lines) == 2
    assert lines[0].startswith("warning: 2 ONNX Runtime GPU run(s) had graph nodes on the CPU provider")
    assert "onnxruntime/onnx-from-torch/cuda resnet50 bs2: 5 node(s) (Shape:3, Gather:2)" in lines[0]
    assert "mobilenet_v2" not in lines[0] and "session.disable_cpu_ep_fallback" in lines[0]
    assert lines[1] == "note: node placement unknown for 1 ONNX Runtime GPU run(s) (unknown: a minimal build)"


def test_no_finding_without_fallback_or_without_the_columns():
    clean = [_ort_record("a", {**PLACEMENT, "cpu_fallback_nodes": 0, "cpu_op_types": {}})]
    assert cpu_fallback_findings(runs_table(clean)) == []
    assert cpu_fallback_findings(runs_table([make_record("b", runtime="torch/native/cuda")])) == []
    assert cpu_fallback_findings(pl.DataFrame()) == []


# ---------------------------------------------------------------------------------------------------------------
# The config: session.* keys for ONNX Runtime only.

RUNTIMES = ["torch/native/cuda", "onnxruntime/onnx-from-torch/cpu", "onnxruntime/onnx-from-torch/cuda"]
BASE = {"name": "t", "models": ["resnet50"], "batch_sizes": [1], "runtimes": RUNTIMES}


def test_refusal_option_is_accepted_for_an_onnxruntime_gpu_runtime():
    options = {"onnxruntime/onnx-from-torch/cuda": {"session.disable_cpu_ep_fallback": "1", "device_id": 0}}
    config = parse_config({**BASE, "provider_options": options})
    assert config.provider_options["onnxruntime/onnx-from-torch/cuda"]["session.disable_cpu_ep_fallback"] == "1"


@pytest.mark.parametrize("runtime, key, value, expected", [
    ("torch/native/cuda", "session.disable_cpu_ep_fallback", "1",
     "provider_options.torch/native/cuda.session.disable_cpu_ep_fallback: session.* keys are ONNX Runtime session "
     "config entries; valid only for onnxruntime runtimes (onnxruntime/onnx-from-torch/cpu, "
     "onnxruntime/onnx-from-torch/cuda)"),
    ("onnxruntime/onnx-from-torch/cpu", "session.disable_cpu_ep_fallback", "1",
     "refuses nodes on the CPU provider, which is all a cpu runtime runs on; valid for cuda/tensorrt runtimes "
     "(onnxruntime/onnx-from-torch/cuda)"),
    ("onnxruntime/onnx-from-torch/cuda", "session.disable_cpu_ep_fallback", "yes",
     "'yes' is not one of \"1\" (refuse CPU fallback), \"0\""),
])
def test_misplaced_session_keys_are_refused_in_one_line(runtime, key, value, expected):
    with pytest.raises(UserError) as error:
        parse_config({**BASE, "provider_options": {runtime: {key: value}}}, source="x.toml")
    assert expected in str(error.value) and str(error.value).startswith("x.toml: ") and "\n" not in str(error.value)


def test_refusal_key_in_a_toml_config(tmp_path):
    from orchestrator.planning.config import load_config

    path = tmp_path / "c.toml"
    path.write_text('name = "t"\nmodels = ["resnet50"]\nbatch_sizes = [1]\n'
                    'runtimes = ["onnxruntime/onnx-from-torch/cuda"]\n'
                    '[provider_options."onnxruntime/onnx-from-torch/cuda"]\n"session.disable_cpu_ep_fallback" = "1"\n')
    config = load_config(path)
    assert config.provider_options == {"onnxruntime/onnx-from-torch/cuda": {"session.disable_cpu_ep_fallback": "1"}}


@pytest.mark.slow  # a full report with its figures
def test_the_report_heads_its_findings_with_the_cpu_fallback_warning(tmp_path):
    from orchestrator.report.build import build_report
    from testkit.synthetic_sweep import journal, write_sweep

    records = journal()
    for i in range(2):
        records.append(_ort_record(f"r{i:03d}-resnet50-ort-cuda", PLACEMENT, index=len(records)))
        records[-1].update(repetition=i, samples_path=None, environment="onnxruntime-cuda", env_vars={})
    report = build_report(write_sweep(tmp_path / "sweep", records))
    assert report.findings[0].startswith("warning: 2 ONNX Runtime GPU run(s) had graph nodes on the CPU provider")
    assert "(Shape:3, Gather:2)" in report.markdown.read_text()


def test_gpu_sessions_preload_the_cuda_wheels_libraries_and_say_how_it_went():
    from runners.adapters.onnxruntime_session import _preload_cuda_libraries

    calls = []

    class Ort:
        @staticmethod
        def preload_dlls(**kwargs):
            calls.append(kwargs)

    assert _preload_cuda_libraries(Ort) == "ok"
    assert calls == [{"cuda": True, "cudnn": True, "msvc": False}]

    class Broken:
        @staticmethod
        def preload_dlls(**kwargs):
            raise OSError("libcudnn.so.9: cannot open shared object file")

    assert _preload_cuda_libraries(Broken) == "failed: OSError: libcudnn.so.9: cannot open shared object file"
    assert _preload_cuda_libraries(object()) == "not available in this ONNX Runtime"
