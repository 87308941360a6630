"""Placement verdicts on ONNX Runtime's verbose log: ORT's deliberate CPU placement of shape computations is not a
fallback, compute nodes on the CPU are, and CUDA-EP nodes inside a tensorrt run are flagged (issue 20, point 8).

The CUDA and TensorRT logs are composed from onnxruntime 1.32.0's format strings (their headers say how), with the
node names and op types of the BERT graph greenrt's torch exporter writes; the CPU log is a captured one."""
from pathlib import Path

from orchestrator.report.findings import cpu_fallback_findings
from orchestrator.results.tables import run_row, runs_table
from testkit.records import make_record
from runners.adapters.onnxruntime_session import _refusal_message
from runners.adapters.ort_placement import cpu_reasons, placement_line, placement_summary
from testkit.paths import ORT_LOGS

LOGS = ORT_LOGS
CUDA_LOG = LOGS / "ort-1.32.0-cuda-bert-torch-composed.txt"
TRT_LOG = LOGS / "ort-1.32.0-tensorrt-bert-torch-composed.txt"
CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
BERT_SHAPE_OPS = {"Gather": 75, "Unsqueeze": 62, "Concat": 38, "Equal": 1, "Reshape": 1, "Where": 1}


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _record(placement: dict, runtime: str = "onnxruntime/onnx-from-torch/cuda"):
    record = make_record("r", runtime=runtime, model="bert-base-uncased")
    record["result"]["node_placement"] = placement
    return record


def test_bert_on_cuda_keeps_its_shape_nodes_on_the_cpu_by_design_and_is_not_a_fallback():
    summary = placement_summary(_lines(CUDA_LOG), CUDA)
    assert summary["by_provider"] == {CUDA: 494, CPU: 178}
    assert summary["verdict"] == "placed"
    assert summary["cpu_fallback_nodes"] == 0 and summary["cpu_op_types"] == {}
    assert summary["cpu_shape_nodes"] == 178 and summary["cpu_shape_op_types"] == BERT_SHAPE_OPS
    assert summary["memcpy_nodes"] == 1
    assert "note" not in summary and "cpu_reasons" not in summary  # every CPU node has ORT's own reason
    assert placement_line(summary) == (
        "onnxruntime: node placement: CUDAExecutionProvider 494, CPUExecutionProvider 178; shape computations on the "
        "CPU by ORT's design: 178 node(s) (Gather:75, Unsqueeze:62, Concat:38, Equal:1, Reshape:1, Where:1)")


def test_the_report_no_longer_calls_bert_on_cuda_partly_a_cpu_measurement():
    summary = placement_summary(_lines(CUDA_LOG), CUDA)
    row = run_row(_record(summary))
    assert row["cpu_fallback_nodes"] == 0
    assert cpu_fallback_findings(runs_table([_record(summary)])) == []


def test_without_orts_reasons_the_op_type_decides_and_the_summary_says_so():
    """A log without ORT's INFO records (GetCpuPreferredNodes' lines): the shape op types still tell them apart."""
    verbose_only = [line for line in _lines(CUDA_LOG) if "[I:onnxruntime" not in line]
    summary = placement_summary(verbose_only, CUDA)
    assert summary["verdict"] == "placed" and summary["cpu_shape_nodes"] == 178
    assert summary["cpu_reasons"] == {"shape-by-op-type": 178}
    assert "178 CPU node(s) counted as shape computations by op type" in summary["note"]


def _with_compute_node_on_the_cpu(reason_line: str) -> list[str]:
    """The CUDA log with BERT's word-embedding Gather moved from the CUDA listing to the CPU's, and ORT's line
    saying why (a variant for the test: the real CUDA EP has a Gather kernel)."""
    name = "/net/embeddings/word_embeddings/Gather"
    out = []
    for line in _lines(CUDA_LOG):
        if line.endswith(f"  Gather ({name})"):
            continue
        line = line.replace("Node(s) placed on [CUDAExecutionProvider]. Number of nodes: 494",
                            "Node(s) placed on [CUDAExecutionProvider]. Number of nodes: 493")
        line = line.replace("Node(s) placed on [CPUExecutionProvider]. Number of nodes: 178",
                            "Node(s) placed on [CPUExecutionProvider]. Number of nodes: 179")
        out.append(line)
        if line.endswith("Node(s) placed on [CPUExecutionProvider]. Number of nodes: 179"):
            out.append(line.split("]  Node(s)")[0] + f"]   Gather ({name})")
        if line.endswith("Initializing session."):
            out.append(line.split("[I:")[0] + reason_line)
    return out


def test_a_compute_node_orts_log_names_as_without_a_cuda_kernel_is_a_fallback_whatever_its_op_type():
    reason = ("[I:onnxruntime:, cuda_execution_provider.cc:0 GetCapability] CUDA kernel not found in registries for "
              "Op type: Gather node name: /net/embeddings/word_embeddings/Gather")
    summary = placement_summary(_with_compute_node_on_the_cpu(reason), CUDA)
    assert summary["verdict"] == "cpu-fallback"
    assert summary["cpu_fallback_nodes"] == 1 and summary["cpu_op_types"] == {"Gather": 1}
    assert summary["cpu_shape_nodes"] == 178 and summary["cpu_reasons"] == {"no-kernel": 1}
    assert placement_line(summary).endswith("; CPU fallback: 1 node(s) (Gather:1)")
    findings = cpu_fallback_findings(runs_table([_record(summary)]))
    assert len(findings) == 1 and "1 node(s) (Gather:1)" in findings[0]


def test_a_node_the_cuda_ep_rejects_is_a_fallback():
    reason = ("[W:onnxruntime:, cuda_execution_provider.cc:0 GetCapability] CUDA kernel not supported. Fallback to "
              "CPU execution provider for Op type: Gather node name: /net/embeddings/word_embeddings/Gather")
    summary = placement_summary(_with_compute_node_on_the_cpu(reason), CUDA)
    assert summary["verdict"] == "cpu-fallback" and summary["cpu_reasons"] == {"not-supported": 1}


def test_a_fallback_reason_wins_over_the_shape_reason_for_the_same_node():
    lines = ["[I:onnxruntime:, fallback_cpu_capability.cc:0 GetCpuPreferredNodes] ORT optimization- Force fallback "
             "to CPU execution for node: /x/Gather because the CPU execution path is deemed faster than overhead "
             "involved with execution on other EPs capable of executing this node",
             "[I:onnxruntime:, cuda_execution_provider.cc:0 GetCapability] CUDA kernel not found in registries for "
             "Op type: Gather node name: /x/Gather",
             "[W:onnxruntime:, cuda_execution_provider.cc:0 GetCapability] Dropping the ConvTranspose node: /up/Conv"
             "Transpose to CPU because it requires asymmetric padding which the CUDA EP currently does not support"]
    assert cpu_reasons(lines) == {"/x/Gather": "no-kernel", "/up/ConvTranspose": "not-supported"}
    assert cpu_reasons(reversed(lines)) == {"/x/Gather": "no-kernel", "/up/ConvTranspose": "not-supported"}


def test_a_compute_node_without_a_reason_is_a_fallback():
    lines = [line.replace("  Where (/net/Where)", "  MatMul (/net/Where)") for line in _lines(CUDA_LOG)
             if "GetCpuPreferredNodes" not in line or "/net/Where " not in line]
    summary = placement_summary(lines, CUDA)
    assert summary["cpu_fallback_nodes"] == 1 and summary["cpu_op_types"] == {"MatMul": 1}
    assert summary["cpu_reasons"] == {"unattributed": 1} and summary["verdict"] == "cpu-fallback"


def test_cuda_nodes_inside_a_tensorrt_run_are_flagged_and_its_shape_nodes_are_not():
    summary = placement_summary(_lines(TRT_LOG), TRT)
    assert summary["by_provider"] == {CUDA: 8, CPU: 2, TRT: 1}
    assert summary["verdict"] == "cuda-fallback"
    assert summary["cuda_fallback_nodes"] == 8
    assert summary["cuda_op_types"] == {"Gather": 3, "Add": 2, "LayerNormalization": 1, "Shape": 1, "Slice": 1}
    assert summary["cpu_fallback_nodes"] == 0 and summary["cpu_shape_op_types"] == {"Gather": 1, "Unsqueeze": 1}
    assert placement_line(summary).endswith(
        "; CUDA fallback inside the TensorRT run: 8 node(s) (Gather:3, Add:2, LayerNormalization:1, Shape:1, Slice:1)")


def test_a_tensorrt_run_wholly_in_engines_is_placed():
    line = ("2026-12-06 22:40:00.1 [V:onnxruntime:, session_state.cc:{} VerifyEachNodeIsAssignedToAnEp] {}")
    lines = [line.format(1598, "Node placements"),
             line.format(1601, " All nodes placed on [TensorrtExecutionProvider]. Number of nodes: 1")]
    summary = placement_summary(lines, TRT)
    assert summary["verdict"] == "placed" and summary["cuda_fallback_nodes"] == 0


def test_memcpy_nodes_on_the_cuda_ep_of_a_tensorrt_run_are_transfers_not_fallback():
    line = "t [V:onnxruntime:, session_state.cc:0 VerifyEachNodeIsAssignedToAnEp] {}"
    lines = [line.format("Node placements"),
             line.format(" Node(s) placed on [TensorrtExecutionProvider]. Number of nodes: 1"),
             line.format("  TRTKernel_graph_main_graph_1_0 "
                         "(TensorrtExecutionProvider_TRTKernel_graph_main_graph_1_0_0)"),
             line.format(" Node(s) placed on [CUDAExecutionProvider]. Number of nodes: 2"),
             line.format("  MemcpyFromHost (Memcpy)"), line.format("  MemcpyToHost (Memcpy_token_1)")]
    summary = placement_summary(lines, TRT)
    assert summary["verdict"] == "placed" and summary["cuda_fallback_nodes"] == 0 and summary["memcpy_nodes"] == 2


def test_a_cuda_run_records_no_tensorrt_fields():
    assert "cuda_fallback_nodes" not in placement_summary(_lines(CUDA_LOG), CUDA)


def test_disable_cpu_ep_fallback_refusing_only_orts_shape_placement_says_so():
    error = RuntimeError("This session contains graph nodes that are assigned to the default CPU EP, but fallback to "
                         "CPU EP has been explicitly disabled by the user.")
    message = _refusal_message(error, [CUDA], _lines(CUDA_LOG))
    assert message.startswith("refused: session.disable_cpu_ep_fallback = 1 and ONNX Runtime put 178 "
                              "shape-computation node(s) on CPUExecutionProvider on purpose")
    assert "leave it unset to measure this model" in message
    reason = ("[I:onnxruntime:, cuda_execution_provider.cc:0 GetCapability] CUDA kernel not found in registries for "
              "Op type: Gather node name: /net/embeddings/word_embeddings/Gather")
    message = _refusal_message(error, [CUDA], _with_compute_node_on_the_cpu(reason))
    assert "that CUDAExecutionProvider cannot take" in message and "without a kernel there: Gather" in message


def test_only_a_cuda_or_tensorrt_session_reads_shape_op_types_as_deliberate():
    """The OpenVINO EP does not move shape computations to the CPU: its CPU nodes are a fallback, op type or not."""
    line = "t [V:onnxruntime:, session_state.cc:0 VerifyEachNodeIsAssignedToAnEp] {}"
    lines = [line.format("Node placements"),
             line.format(" Node(s) placed on [OpenVINOExecutionProvider]. Number of nodes: 1"),
             line.format("  OpenVINO-EP-subgraph_1 (OpenVINOExecutionProvider_OpenVINO-EP-subgraph_1_0)"),
             line.format(" Node(s) placed on [CPUExecutionProvider]. Number of nodes: 1"),
             line.format("  Gather (/embeddings/Gather)")]
    summary = placement_summary(lines, "OpenVINOExecutionProvider")
    assert summary["cpu_fallback_nodes"] == 1 and summary["cpu_op_types"] == {"Gather": 1}
    assert summary["cpu_reasons"] == {"unattributed": 1} and summary["verdict"] == "cpu-fallback"
    cuda = placement_summary([part.replace("OpenVINO", "CUDA") for part in lines], CUDA)
    assert cuda["cpu_fallback_nodes"] == 0 and cuda["cpu_shape_nodes"] == 1
