"""End to end through the local launcher: real runner processes in the torch and onnxruntime environments.

The environments are built by `make test` before pytest starts (`greenrt env build torch onnxruntime`); the ONNX
export of MobileNetV2 runs for real in the torch environment and is cached under .cache/artifacts.
"""
from __future__ import annotations

import json

import polars as pl
import pytest

from testkit.powercap import make_powercap_tree
from testkit.sweep_helpers import DRAM_W, PACKAGE_W, greenrt, steady_draw, write_config

pytestmark = pytest.mark.process

@pytest.fixture(scope="module")
def measured_sweep(tmp_path_factory):
    """One real sweep with a RAPL tree drawing known power, and its resumption."""
    tmp = tmp_path_factory.mktemp("sweep")
    tree = make_powercap_tree(tmp / "powercap", packages=1, dram=True)
    config = write_config(tmp / "e2e.toml")
    out = tmp / "results"
    with steady_draw(tree):
        first = greenrt("sweep", "--config", str(config), "--out", str(out), "--powercap-root", str(tree.root))
        second = greenrt("sweep", "--config", str(config), "--out", str(out), "--powercap-root", str(tree.root))
    return first, second, out


def test_sweep_measures_every_cell_with_real_runners(measured_sweep):
    first, _, out = measured_sweep
    assert first.returncode == 0, first.stdout + first.stderr
    runs = pl.read_parquet(out / "tables/runs.parquet")
    assert sorted(zip(runs["runtime"], runs["batch_size"])) == [
        ("onnxruntime/onnx-from-torch/cpu", 1), ("onnxruntime/onnx-from-torch/cpu", 2),
        ("torch/native/cpu", 1), ("torch/native/cpu", 2)]
    assert runs["status"].to_list() == ["ok"] * 4
    assert (runs["iterations"] >= 3).all() and (runs["window_s"] >= 1.0).all()
    assert (runs["latency_p50_ms"] > 0).all() and (runs["throughput_per_s"] > 0).all()
    assert set(runs["provider_used"]) == {"CPUExecutionProvider", None} or "CPUExecutionProvider" in set(runs["provider_used"])
    for name in ("plan.json", "host.json", "baseline.json", "runs.jsonl", "tables/runs.csv", "tables/skipped.csv"):
        assert (out / name).exists(), name


def test_each_run_is_a_line_with_the_eta_and_the_report_says_where_the_time_went(measured_sweep):
    first, _, out = measured_sweep
    lines = [line for line in first.stdout.splitlines() if line.startswith("run ")]
    assert [line.split(":")[0].split()[1] for line in lines] == ["1/4", "2/4", "3/4", "4/4"]
    assert all(": ok, " in line and "; eta " in line for line in lines) and lines[-1].endswith("eta 0 s")
    records = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert "prepared" in records[0] and not any("prepared" in r for r in records[1:])
    spent = pl.read_csv(out / "report" / "tables" / "time_spent.csv")
    seconds = dict(zip(spent["part"], spent["seconds"]))
    assert seconds["preparation"] == pytest.approx(records[0]["prepared"]["seconds"])
    assert 0 < seconds["window"] < seconds["wall time"]
    assert sum(v for k, v in seconds.items() if k != "wall time") == pytest.approx(seconds["wall time"])


def test_energy_is_the_counter_difference_over_the_window(measured_sweep):
    _, _, out = measured_sweep
    runs = pl.read_parquet(out / "tables/runs.parquet")
    for row in runs.iter_rows(named=True):
        # A constant draw P over the window gives P * window; counters step every 5 ms, sampled every 50 ms.
        assert row["cpu_energy_j"] == pytest.approx(PACKAGE_W * row["window_s"], rel=0.1)
        assert row["dram_energy_j"] == pytest.approx(DRAM_W * row["window_s"], rel=0.1)
        assert row["total_energy_j"] == pytest.approx(row["cpu_energy_j"] + row["dram_energy_j"])
        # The idle baseline drew the same power, so what the run added is close to nothing.
        assert abs(row["total_dynamic_j"]) < 0.1 * row["total_energy_j"]
        assert row["energy_status"] == "ok"
    baseline = json.loads((out / "baseline.json").read_text())["latest"]
    assert baseline["idle_w"]["package-0"] == pytest.approx(PACKAGE_W, rel=0.1)
    samples = pl.read_parquet(next((out / "samples").glob("*.parquet")))
    assert {"package-0", "dram-0"} <= set(samples["channel"])


def test_every_onnx_runtime_row_has_fidelity_against_its_source(measured_sweep):
    _, _, out = measured_sweep
    runs = pl.read_parquet(out / "tables/runs.parquet")
    ort = runs.filter(pl.col("framework") == "onnxruntime")
    assert ort.height == 2
    assert ort["fidelity_faithful"].to_list() == [True, True]
    assert (ort["fidelity_max_abs_error"] < 1e-3).all() and (ort["fidelity_min_cosine"] > 0.9999).all()
    assert ort["fidelity_top1_agreement"].to_list() == [1.0, 1.0]
    native = runs.filter(pl.col("framework") == "torch")
    assert native["fidelity_faithful"].is_null().all() and set(native["fidelity_note"]) == {"not a converted model"}
    assert not list((out / "runs").glob("*/outputs.npz"))  # compared, then dropped


def test_runners_agree_on_outputs_across_repeated_sweeps(measured_sweep):
    _, _, out = measured_sweep
    records = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    torch_bs1 = next(r for r in records if r["runtime"] == "torch/native/cpu" and r["batch_size"] == 1)
    ort_bs1 = next(r for r in records if r["runtime"].startswith("onnxruntime") and r["batch_size"] == 1)
    assert ort_bs1["artifact"]["opset"] >= 13
    # Same seeded weights and inputs: the converted model reproduces its source's output statistics.
    torch_mean = torch_bs1["result"]["output_digest"]["outputs"]["logits"]["mean"]
    ort_mean = ort_bs1["result"]["output_digest"]["outputs"]["logits"]["mean"]
    assert ort_mean == pytest.approx(torch_mean, abs=1e-4)


def test_rerun_resumes_without_duplicating_runs(measured_sweep):
    _, second, out = measured_sweep
    assert second.returncode == 0, second.stdout + second.stderr
    assert "4 already recorded" in second.stdout
    lines = (out / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 4 and len({json.loads(line)["run_id"] for line in lines}) == 4


def test_without_sensors_energy_is_unavailable_with_the_reason(tmp_path):
    config = write_config(tmp_path / "c.toml", runtimes='["onnxruntime/onnx-from-torch/cpu"]', batch_sizes="[1]")
    out = tmp_path / "out"
    done = greenrt("sweep", "--config", str(config), "--out", str(out), "--powercap-root", str(tmp_path / "none"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "energy: unavailable on this host" in done.stdout
    row = pl.read_parquet(out / "tables/runs.parquet").row(0, named=True)
    assert row["status"] == "ok" and row["latency_p50_ms"] > 0
    assert row["total_energy_j"] is None and row["j_per_inference"] is None
    assert row["energy_status"] == "unavailable"
    assert f"no powercap tree at {tmp_path / 'none'}" in row["energy_note"]


def test_bad_config_exits_non_zero_and_writes_nothing(tmp_path):
    config = write_config(tmp_path / "bad.toml", models='["resnet"]')
    out = tmp_path / "out"
    done = greenrt("sweep", "--config", str(config), "--out", str(out))
    assert done.returncode == 2
    assert "models: unknown model 'resnet'; valid: resnet50, mobilenet_v2, bert-base-uncased" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_bad_cli_value_names_the_valid_choices(tmp_path):
    done = greenrt("run", "--runtime", "torch/native/tpu", "--model", "resnet50", "--out", str(tmp_path / "o"))
    assert done.returncode == 2
    assert "unknown runtime 'torch/native/tpu'; valid: torch/native/cpu" in done.stderr
    assert not (tmp_path / "o").exists()


def test_a_failed_export_fails_its_runs_with_the_converters_message_and_the_sweep_goes_on(tmp_path):
    # The TorchScript exporter cannot express BERT's slicing at opset 9: a real converter failure, like the study's
    # BERT exports that ONNX Runtime refused. The native run of the same sweep is still measured.
    config = write_config(tmp_path / "c.toml", models='["bert-base-uncased"]', batch_sizes="[1]", opset=9)
    config.write_text(config.read_text() + "[model_options.bert-base-uncased]\nseq_len = 16\n")
    out = tmp_path / "out"
    done = greenrt("sweep", "--config", str(config), "--out", str(out), "--powercap-root", str(tmp_path / "none"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 runs ok, 1 failed" in done.stdout
    runs = {r["runtime"]: r for r in pl.read_parquet(out / "tables/runs.parquet").iter_rows(named=True)}
    ort = runs["onnxruntime/onnx-from-torch/cpu"]
    assert ort["status"] == "failed" and ort["failure_kind"] == "export"
    assert "ONNX export of bert-base-uncased from torch failed" in ort["failure_message"]
    assert "Slice" in ort["failure_message"]  # the converter's own words
    assert runs["torch/native/cpu"]["status"] == "ok"


def test_every_source_framework_runs_natively_and_converts_faithfully(tmp_path):
    runtimes = '["tensorflow/native/cpu", "mxnet/native/cpu", "onnxruntime/onnx-from-tensorflow/cpu", ' \
               '"onnxruntime/onnx-from-mxnet/cpu"]'
    config = write_config(tmp_path / "c.toml", runtimes=runtimes, batch_sizes="[1]")
    out = tmp_path / "out"
    done = greenrt("sweep", "--config", str(config), "--out", str(out), "--powercap-root", str(tmp_path / "none"))
    assert done.returncode == 0, done.stdout + done.stderr
    runs = pl.read_parquet(out / "tables/runs.parquet")
    assert runs["status"].to_list() == ["ok"] * 4, runs.select("runtime", "failure_message").rows()
    assert set(runs["framework_version"].drop_nulls()) and (runs["latency_p50_ms"] > 0).all()
    ort = runs.filter(pl.col("framework") == "onnxruntime").sort("runtime")
    assert ort["runtime"].to_list() == ["onnxruntime/onnx-from-mxnet/cpu", "onnxruntime/onnx-from-tensorflow/cpu"]
    assert ort["fidelity_faithful"].to_list() == [True, True]
    assert ort["fidelity_top1_agreement"].to_list() == [1.0, 1.0]
