"""A real sweep through the local launcher with LiteRT (a model converted in the tensorflow environment) and XLA
(TensorFlow compiling its own model): both compared with TensorFlow's native CPU run, compilation outside the window.

Needs the tensorflow and litert environments (TEST_ENVS, built by `make test` before pytest starts).
"""
from __future__ import annotations

import json

import polars as pl
import pytest

from testkit.sweep_helpers import greenrt, write_config

pytestmark = pytest.mark.process

LITERT, XLA = "litert/tflite-from-tensorflow/cpu", "tensorflow/xla/cpu"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("litert-xla")
    config = write_config(tmp / "c.toml", runtimes=f'["{LITERT}", "{XLA}"]', batch_sizes="[1]")
    out = tmp / "results"
    done = greenrt("sweep", "--config", str(config), "--out", str(out), "--powercap-root", str(tmp / "none"))
    assert done.returncode == 0, done.stdout + done.stderr
    records = {r["runtime"]: r for r in map(json.loads, (out / "runs.jsonl").read_text().splitlines())}
    return out, records, done.stdout


def test_both_runtimes_are_measured_and_faithful_to_tensorflow(sweep):
    out, _, _ = sweep
    runs = {r["runtime"]: r for r in pl.read_parquet(out / "tables/runs.parquet").iter_rows(named=True)}
    assert sorted(runs) == [LITERT, XLA]
    for row in runs.values():
        assert row["status"] == "ok" and row["model"] == "mobilenet_v2" and row["batch_size"] == 1
        assert row["latency_p50_ms"] > 0 and row["iterations"] >= 3
        assert row["fidelity_faithful"] is True and row["fidelity_max_abs_error"] < 1e-3
        assert row["fidelity_min_cosine"] > 0.9999 and row["fidelity_top1_agreement"] == 1.0
    assert not list((out / "runs").glob("*/outputs.npz"))  # compared, then dropped


def test_both_are_compared_with_one_tensorflow_native_reference(sweep):
    _, records, stdout = sweep
    references = {records[r]["reference_outputs"] for r in (LITERT, XLA)}
    assert len(references) == 1 and "/references/tensorflow-mobilenet_v2-" in references.pop()
    assert records[LITERT]["fidelity"]["status"] == records[XLA]["fidelity"]["status"] == "ok"
    assert "tflite artifact: mobilenet_v2 from tensorflow" in stdout


def test_litert_ran_the_verified_tflite_file_with_xnnpack(sweep):
    _, records, _ = sweep
    record = records[LITERT]
    assert record["environment"] == "litert" and record["artifact"]["path"].endswith("/model.tflite")
    assert record["artifact"]["opset"] is None and "TFLiteConverter" in record["artifact"]["exporter"]
    facts = record["result"]["runtime_facts"]
    assert facts["delegate"].startswith("XNNPACK") and facts["delegate_partitions"] >= 1
    assert record["result"]["versions"]["ai-edge-litert"] == "2.3.0"


def test_xla_compiled_in_warm_up_outside_the_window(sweep):
    _, records, _ = sweep
    record = records[XLA]
    result = record["result"]
    assert record["environment"] == "tensorflow" and record["artifact"] is None
    facts = result["runtime_facts"]
    assert facts["jit_compile"] is True and facts["xla"]["must_compile"] is True and facts["traces_in_window"] == 0
    assert result["warmup_iterations"] >= 1 and result["first_inference_ns"] < result["window_start_ns"]
    # the compilation is the first warm-up iteration, longer than any measured iteration
    assert result["engine_build_seconds"] > max(result["latencies_ns"]) / 1e9
