"""Tables: one row per run with latency statistics, throughput and energy that is never silently zero."""
import polars as pl
import pytest

from orchestrator.results.tables import cell_summary, run_row, runs_table, write_tables
from testkit.records import channel, make_record


def test_latency_statistics_and_throughput():
    row = run_row(make_record(latencies_ms=(10.0, 20.0, 30.0, 40.0), batch_size=2, window_s=0.1))
    assert row["latency_mean_ms"] == pytest.approx(25.0)
    assert row["latency_p50_ms"] == pytest.approx(25.0)
    assert row["latency_p90_ms"] == pytest.approx(37.0)  # numpy's linear rule: 30 + 0.7 * (40 - 30)
    assert row["latency_p99_ms"] == pytest.approx(39.7)
    assert row["throughput_per_s"] == pytest.approx(4 * 2 / 0.1)
    assert row["window_s"] == pytest.approx(0.1)


def test_energy_by_domain_per_inference_and_power():
    channels = {"package-0": channel("cpu", 3.0, 1.0), "package-1": channel("cpu", 2.0, 0.5),
                "dram-0": channel("dram", 1.0, 0.25), "gpu-0": channel("gpu", 14.0, 8.0)}
    row = run_row(make_record(channels=channels, batch_size=2, window_s=0.5))
    assert row["cpu_energy_j"] == pytest.approx(5.0)
    assert row["dram_energy_j"] == pytest.approx(1.0)
    assert row["gpu_energy_j"] == pytest.approx(14.0)
    assert row["total_energy_j"] == pytest.approx(20.0)
    assert row["total_dynamic_j"] == pytest.approx(9.75)
    assert row["j_per_inference"] == pytest.approx(20.0 / (4 * 2))  # 4 iterations of batch 2
    assert row["mean_power_w"] == pytest.approx(40.0)
    assert row["energy_domains"] == "cpu+dram+gpu"
    assert row["energy_package-0_j"] == pytest.approx(3.0)


def test_unavailable_energy_is_null_never_zero():
    row = run_row(make_record())
    for column in ("cpu_energy_j", "gpu_energy_j", "total_energy_j", "j_per_inference", "mean_power_w"):
        assert row[column] is None
    assert row["energy_status"] == "unavailable"
    assert "no readable energy sensor" in row["energy_note"]


def test_an_invalid_channel_voids_its_domain_and_the_total():
    channels = {"package-0": channel("cpu", 3.0), "package-1": channel("cpu", None, status="invalid"),
                "gpu-0": channel("gpu", 14.0)}
    row = run_row(make_record(channels=channels))
    assert row["cpu_energy_j"] is None and row["total_energy_j"] is None
    assert row["gpu_energy_j"] == pytest.approx(14.0)


def test_failed_runs_keep_their_reason_and_have_no_figures():
    failure = {"kind": "timeout", "message": "runner killed after the 900 s time limit", "log_tail": ""}
    row = run_row(make_record(status="failed", failure=failure))
    assert row["failure_kind"] == "timeout" and row["latency_p50_ms"] is None and row["iterations"] is None


def test_merged_table_keeps_the_latest_record_of_a_run_and_plan_order(tmp_path):
    records = [make_record("r000-b", index=1), make_record("r000-a", index=0, status="failed",
                                                           failure={"kind": "crash", "message": "x"}),
               make_record("r000-a", index=0)]
    table = runs_table(records)
    assert table["run_id"].to_list() == ["r000-a", "r000-b"]
    assert table["status"].to_list() == ["ok", "ok"]
    written = write_tables(tmp_path, records, {"skipped": [{"cell": {"model": "resnet50", "batch_size": 1,
                                                                    "runtime": "torch/native/cuda",
                                                                    "precision": "fp32"}, "reason": "no GPU"}]})
    assert pl.read_parquet(written["runs.parquet"]).shape[0] == 2
    assert pl.read_csv(written["skipped.csv"])["reason"].to_list() == ["no GPU"]
    summary = cell_summary(table)
    assert summary.shape[0] == 1 and summary["runs"].to_list() == [2] and summary["ok"].to_list() == [2]
