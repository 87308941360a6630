"""int8 through a real sweep: the fp32 ONNX export of MobileNetV2 quantized (static QDQ) in the onnxruntime
environment, measured beside fp32 by real ONNX Runtime runners, and judged by the quantized criterion against
torch's native run.  The environments are built by `make test` (`greenrt env build torch onnxruntime`)."""
from __future__ import annotations

import json

import polars as pl
import pytest

from models.fidelity_criteria import QUANT_MIN_COSINE
from runners.hostinfo import cpu_flags
from testkit.sweep_helpers import greenrt

pytestmark = pytest.mark.process

RUNTIME = "onnxruntime/onnx-from-torch/cpu"
CONFIG = f"""name = "int8"
models = ["mobilenet_v2"]
batch_sizes = [1]
runtimes = ["{RUNTIME}"]
precisions = ["fp32", "int8"]
repetitions = 1
[warmup]
iterations = 2
[measure]
min_iterations = 10
min_seconds = 0.2
[baseline]
seconds = 0.2
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("int8")
    (tmp / "int8.toml").write_text(CONFIG)
    done = greenrt("sweep", "--config", str(tmp / "int8.toml"), "--out", str(tmp / "out"))
    assert done.returncode == 0, done.stdout + done.stderr
    records = {r["precision"]: r for r in map(json.loads, (tmp / "out/runs.jsonl").read_text().splitlines())}
    rows = {r["precision"]: r for r in pl.read_parquet(tmp / "out/tables/runs.parquet").iter_rows(named=True)}
    return tmp / "out", records, rows


def test_int8_is_measured_on_the_quantized_model_with_its_calibration_recorded(sweep):
    _, records, rows = sweep
    assert rows["int8"]["status"] == rows["fp32"]["status"] == "ok"
    assert rows["int8"]["latency_p50_ms"] > 0 and rows["int8"]["iterations"] >= 10
    fp32, int8 = records["fp32"]["artifact"], records["int8"]["artifact"]
    assert int8["path"] != fp32["path"] and "/quantized/" in int8["path"]
    assert int8["source_path"] == fp32["path"] and int8["source_key"] == fp32["key"]
    quantization = int8["quantization"]
    assert quantization["method"] == "static-qdq" and quantization["per_channel"] is True
    assert quantization["calibration"]["size"] == quantization["calibration"]["batches_seen"] > 0
    assert isinstance(quantization["calibration"]["seed"], int)
    assert {"Conv", "Gemm"} <= set(quantization["quantized_op_types"])
    assert quantization["bytes"] < quantization["source_bytes"] / 2  # int8 weights: a quarter, plus scales
    # int8 runs with or without VNNI; the record says which this CPU has.
    assert int8["host_cpu"]["vnni"] == bool({"avx512_vnni", "avx_vnni", "amx_int8"} & set(cpu_flags() or ()))
    assert "quantization" not in fp32


def test_int8_gets_the_quantized_verdict_never_the_fp32_faithful(sweep):
    _, records, rows = sweep
    int8, fp32 = rows["int8"], rows["fp32"]
    assert int8["fidelity_criterion"] == "quantized" and int8["fidelity_faithful"] is None
    assert int8["fidelity_top1_agreement"] in (0.0, 1.0)  # batch 1: the one row agrees or not
    assert int8["fidelity_verdict"].startswith(f"quantized: top-1 agreement {int8['fidelity_top1_agreement']:.0%}"
                                               .replace("%", " %"))
    assert "int8 thresholds" in int8["fidelity_verdict"]
    # Quantized, so not the fp32 model's outputs: above the fp32 tolerance, yet close.
    assert int8["fidelity_max_abs_error"] > 1e-3 and int8["fidelity_min_cosine"] > QUANT_MIN_COSINE
    assert records["int8"]["fidelity"]["acceptable"] is True
    assert fp32["fidelity_criterion"] == "fp32" and fp32["fidelity_faithful"] is True
    assert fp32["fidelity_verdict"].startswith("faithful")


def test_the_report_shows_the_quantized_verdict(sweep):
    out, _, rows = sweep
    report = (out / "report/report.md").read_text()
    assert rows["int8"]["fidelity_verdict"] in report
    assert "An int8 (quantized) run is never called faithful" in report


def test_int8_on_a_provider_without_it_is_refused_in_one_line_before_anything_is_written(tmp_path):
    done = greenrt("run", "--runtime", "onnxruntime/onnx-from-torch/cuda", "--model", "mobilenet_v2",
                   "--precision", "int8", "--out", str(tmp_path / "out"))
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "int8 is measured on cpu and openvino only" in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_openvino_measures_the_same_quantized_model_under_the_quantized_verdict(tmp_path):
    (tmp_path / "ov.toml").write_text(CONFIG.replace(RUNTIME, "openvino/onnx-from-torch/cpu")
                                      .replace('["fp32", "int8"]', '["int8"]').replace('"int8"\n', '"int8-ov"\n', 1))
    done = greenrt("sweep", "--config", str(tmp_path / "ov.toml"), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stdout + done.stderr
    [record] = map(json.loads, (tmp_path / "out/runs.jsonl").read_text().splitlines())
    assert record["status"] == "ok", record["failure"]
    assert record["artifact"]["quantization"]["method"] == "static-qdq"
    assert record["fidelity"]["criterion"] == "quantized" and record["fidelity"]["faithful"] is None
    assert record["fidelity"]["acceptable"] is True, record["fidelity"]
    facts = record["result"]["runtime_facts"]
    assert facts, "OpenVINO reports the settings it compiled the quantized model with"
