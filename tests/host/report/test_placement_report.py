"""ORT placement verdicts in tables/runs and the report: a tensorrt run whose nodes went to the CUDA EP is flagged
once, naming its cells, as CPU fallback already is (issue 20, point 8 carried into the results)."""

import pytest

from orchestrator.report.findings import cpu_fallback_findings, cuda_fallback_findings
from orchestrator.results.tables import run_row, runs_table
from testkit.records import make_record
from runners.adapters.ort_placement import placement_summary
from testkit.paths import ORT_LOGS

LOGS = ORT_LOGS
CUDA, TRT = "CUDAExecutionProvider", "TensorrtExecutionProvider"
ORT_TRT, ORT_CUDA = "onnxruntime/onnx-from-torch/tensorrt", "onnxruntime/onnx-from-torch/cuda"
TRT_OPS = "Gather:3, Add:2, LayerNormalization:1, Shape:1, Slice:1"


def _summary(log: str, ep: str) -> dict:
    return placement_summary((LOGS / log).read_text().splitlines(), ep)


TRT_BERT = _summary("ort-1.32.0-tensorrt-bert-torch-composed.txt", TRT)  # 8 nodes TensorRT left to the CUDA EP
CUDA_BERT = _summary("ort-1.32.0-cuda-bert-torch-composed.txt", CUDA)  # shape nodes on the CPU by design: placed
LINE = "t [V:onnxruntime:, session_state.cc:0 VerifyEachNodeIsAssignedToAnEp] {}"
TRT_ONLY = placement_summary([LINE.format("Node placements"),
                              LINE.format(" All nodes placed on [TensorrtExecutionProvider]. Number of nodes: 1")], TRT)


def _record(run_id: str, placement: dict | None, runtime: str = ORT_TRT, index: int = 0,
            model: str = "bert-base-uncased", **kwargs) -> dict:
    record = make_record(run_id, runtime=runtime, model=model, index=index, **kwargs)
    if record["result"] is not None:
        record["result"]["node_placement"] = placement
    return record


def test_the_runs_table_carries_the_verdict_and_the_cuda_fallback_of_a_tensorrt_run():
    row = run_row(_record("a", TRT_BERT))
    assert row["placement_verdict"] == "cuda-fallback"
    assert (row["cuda_fallback_nodes"], row["cuda_fallback_ops"]) == (8, TRT_OPS)
    assert (row["cpu_fallback_nodes"], row["cpu_shape_nodes"]) == (0, 2)
    engines_only = run_row(_record("b", TRT_ONLY))
    assert engines_only["placement_verdict"] == "placed" and engines_only["cuda_fallback_nodes"] == 0


def test_a_cuda_run_has_a_verdict_but_no_cuda_fallback_and_other_runtimes_have_neither():
    cuda = run_row(_record("a", CUDA_BERT, runtime=ORT_CUDA))
    assert cuda["placement_verdict"] == "placed" and cuda["cpu_shape_nodes"] == 178
    assert cuda["cuda_fallback_nodes"] is None and cuda["cuda_fallback_ops"] is None  # the CUDA EP is the request
    unknown = run_row(_record("b", {"status": "unknown", "requested": TRT, "reason": "a minimal build"}))
    assert unknown["placement_verdict"] == "unknown" and unknown["cuda_fallback_nodes"] is None
    for row in (run_row(make_record("c", runtime="torch/native/cuda")), run_row(_record("d", None))):
        assert all(row[c] is None for c in ("placement_verdict", "cuda_fallback_nodes", "cuda_fallback_ops",
                                            "cpu_shape_nodes")), row


def test_the_report_warns_once_naming_the_tensorrt_cells_partly_measured_on_the_cuda_ep():
    records = [_record("a", TRT_BERT, index=0), _record("b", {**TRT_BERT}, index=1),
               _record("c", TRT_BERT, index=2, batch_size=8),
               _record("d", TRT_ONLY, index=3, model="resnet50"),  # wholly in engines: not named
               _record("e", CUDA_BERT, runtime=ORT_CUDA, index=4),  # a cuda run: no CUDA fallback to speak of
               _record("f", TRT_BERT, index=5, status="failed")]  # no measurement to qualify
    (line,) = cuda_fallback_findings(runs_table(records))
    assert line.startswith("warning: 3 ONNX Runtime TensorRT run(s) had graph nodes that TensorRT did not take")
    assert "partly a CUDA-EP measurement" in line and "cuda_fallback_nodes" in line
    assert (f"{ORT_TRT} bert-base-uncased bs2 fp32: 8 node(s) ({TRT_OPS}); "
            f"{ORT_TRT} bert-base-uncased bs8 fp32: 8 node(s)") in line
    assert "resnet50" not in line and ORT_CUDA not in line
    # The CPU-fallback warning stays silent: these runs' CPU nodes are ORT's shape placement.
    assert cpu_fallback_findings(runs_table(records)) == []


def test_no_cuda_fallback_warning_without_such_runs_or_columns():
    assert cuda_fallback_findings(runs_table([_record("a", TRT_ONLY)])) == []
    assert cuda_fallback_findings(runs_table([make_record("b", runtime="torch/native/cuda")])) == []
    assert cuda_fallback_findings(runs_table([])) == []


@pytest.mark.slow  # a full report with its figures
def test_the_report_heads_its_findings_with_the_cuda_ep_warning(tmp_path):
    from orchestrator.report.build import build_report
    from testkit.synthetic_sweep import journal, write_sweep

    records = journal()
    for i in range(2):
        records.append(_record(f"r{i:03d}-bert-ort-trt", TRT_BERT, index=len(records)))
        records[-1].update(repetition=i, samples_path=None, environment="onnxruntime-tensorrt", env_vars={})
    report = build_report(write_sweep(tmp_path / "sweep", records))
    (warning,) = [f for f in report.findings if "CUDA-EP" in f]
    assert report.findings.index(warning) == 0, report.findings
    text = report.markdown.read_text()
    assert "partly a CUDA-EP measurement" in text and TRT_OPS in text
