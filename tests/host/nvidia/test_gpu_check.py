"""`make gpu-check` without a GPU: its pure computations, the sweep analysis on a synthetic results directory, the
markdown, the wheelhouse list, and that on a host without CUDA/NVML the script says so in one line and exits 2.

What needs a real GPU (the CUDA load, the bare loop, the CUDA-graph capture, the live sweep) runs only on one
(DESIGN.md's gpu tier, `make gpu-check`): never faked here. Tests that start a Python subprocess are marked
`process`; the rest are the unit tier.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

# bench/ is on the tests' import path (pyproject's pytest `pythonpath`), as it is on the scripts' own.
import gpu_check
import gpu_check_attribution as attribution
import gpu_check_calc as calc
import gpu_check_edges as edges
import gpu_check_tf32
from testkit.paths import BENCH, REPO as ROOT
import gpu_check_unpack  # noqa: E402
import gpu_check_report  # noqa: E402
import gpu_check_sweep  # noqa: E402
import gpu_check_wheels  # noqa: E402
from testkit.fake_nvml import FakeGpu, FakeNvml  # noqa: E402
from orchestrator.measurement.accounting import account_energy  # noqa: E402
from orchestrator.measurement.sensors.base import Reading, SensorStatus  # noqa: E402
from orchestrator.planning.config import load_config  # noqa: E402
from orchestrator.planning.gpus import GpuDescription  # noqa: E402
from orchestrator.measurement.sampler import SampleSeries  # noqa: E402
from testkit.records import make_record  # noqa: E402

MS = 1_000_000
S = 1_000_000_000


# ---------------------------------------------------------------------------------------------------------------
# Update period of a polled counter.


def _polled_counter(period_ms: float, poll_ms: float, seconds: float, watts: float = 100.0, jitter: bool = True):
    """A counter that moves only every period_ms (as NVML's does), read every ~poll_ms."""
    rng = np.random.default_rng(0)
    steps = rng.uniform(0.5, 1.5, int(seconds * 1e3 / poll_ms) + 1) if jitter else np.ones(int(seconds * 1e3 / poll_ms) + 1)
    t_ns = (np.cumsum(steps) * poll_ms * MS).astype(np.int64) + 5 * S
    updated_at_s = np.floor(t_ns / (period_ms * MS)) * period_ms / 1e3
    return t_ns, np.floor(updated_at_s * watts * 1e3)  # mJ, integer like NVML's


def test_update_period_of_a_counter_moving_every_20_ms():
    t_ns, mj = _polled_counter(period_ms=20.0, poll_ms=0.5, seconds=2.0)
    out = calc.counter_update_period(t_ns, mj)
    assert out["polls"] == len(t_ns)
    assert 98 <= out["changes"] <= 101
    assert out["update_period_ms"]["median"] == pytest.approx(20.0, abs=0.75)
    # Each change is seen up to one poll late: the extremes stay within about one poll interval (max 0.75 ms).
    assert 20.0 - 1.6 <= out["update_period_ms"]["min"] <= out["update_period_ms"]["max"] <= 20.0 + 1.6
    assert out["resolution_ms"] == pytest.approx(0.5, rel=0.1)
    assert out["increment_median"] == pytest.approx(2000.0, abs=1.0)  # 100 W x 20 ms = 2 J = 2000 mJ
    assert out["backwards"] == 0
    assert out["seconds"] == pytest.approx(2.0, abs=0.01)


def test_update_period_needs_two_changes_and_counts_backwards_steps():
    flat = calc.counter_update_period([1, 2, 3, 4], [5.0, 5.0, 5.0, 5.0])
    assert flat["changes"] == 0 and flat["update_period_ms"] is None and flat["increment_median"] is None
    one = calc.counter_update_period([0, MS, 2 * MS], [5.0, 6.0, 6.0])
    assert one["changes"] == 1 and one["update_period_ms"] is None
    back = calc.counter_update_period([0, 10 * MS, 20 * MS, 30 * MS], [5.0, 6.0, 4.0, 7.0])
    assert back["backwards"] == 1 and back["changes"] == 3
    assert back["update_period_ms"]["median"] == pytest.approx(10.0)
    empty = calc.counter_update_period([], [])
    assert empty["polls"] == 0 and empty["poll_interval_ms_median"] is None
    with pytest.raises(ValueError):
        calc.counter_update_period([1, 2], [1.0])
    with pytest.raises(ValueError):
        calc.counter_update_period([2, 1], [1.0, 2.0])


# ---------------------------------------------------------------------------------------------------------------
# Coverage of a window by samples.


def test_coverage_of_a_window_sampled_every_50_ms():
    t = np.arange(-100 * MS, 10_100 * MS + 1, 50 * MS)  # -0.1 s .. 10.1 s around a 10 s window
    out = calc.window_coverage(t, 0, 10 * S)
    assert out["samples_in_window"] == 201  # 0, 50 ms, ..., 10 s
    assert out["spanned_fraction"] == pytest.approx(1.0)
    assert out["samples_per_s"] == pytest.approx(20.1)
    assert out["bracketed"] and out["lead_ms"] == 0.0 and out["trail_ms"] == 0.0
    assert out["max_gap_ms"] == pytest.approx(50.0)


def test_coverage_sees_gaps_and_a_window_the_samples_do_not_bracket():
    t = np.concatenate([np.arange(0, 4 * S, 100 * MS), np.arange(6 * S, 10 * S + 1, 100 * MS)]) + 30 * MS
    out = calc.window_coverage(t, 0, 10 * S)
    assert not out["bracketed"]  # the first sample is 30 ms after the start
    assert out["lead_ms"] is None and out["trail_ms"] == pytest.approx(30.0)  # nothing at or before the start
    assert out["max_gap_ms"] == pytest.approx(2100.0)
    assert out["spanned_fraction"] == pytest.approx((9.93 - 0.03) / 10)
    inside_one = calc.window_coverage([-S, S // 2, 2 * S], 0, S)
    assert inside_one["samples_in_window"] == 1 and inside_one["spanned_fraction"] == 0.0 and inside_one["bracketed"]
    assert inside_one["lead_ms"] == 1000.0 and inside_one["trail_ms"] == 1000.0
    with pytest.raises(ValueError):
        calc.window_coverage(t, 5, 5)


# ---------------------------------------------------------------------------------------------------------------
# Counter against the power integral.


def test_counter_and_power_integral_agree_for_a_steady_load():
    t = np.arange(0, 12 * S + 1, 50 * MS)
    power = np.full(t.size, 200.0)
    energy = 1e4 + 200.0 * t / S
    out = calc.counter_vs_power(t, energy, power, S, 11 * S)
    assert out["counter_j"] == pytest.approx(2000.0)
    assert out["power_integral_j"] == pytest.approx(2000.0)
    assert out["ratio"] == pytest.approx(1.0)
    assert out["counter_mean_w"] == pytest.approx(200.0) and out["power_mean_w"] == pytest.approx(200.0)
    assert out["reason"] == ""


def test_a_lagging_power_reading_gives_a_ratio_away_from_one():
    # Load steps from 100 W to 300 W at 5 s; the counter follows at once, the (1 s averaged) reading 1 s later.
    t = np.arange(0, 20 * S + 1, 50 * MS)
    true_w = np.where(t < 5 * S, 100.0, 300.0)
    energy = np.concatenate([[0.0], np.cumsum(true_w[1:] * np.diff(t) / S)])
    lagged = np.where(t < 6 * S, 100.0, 300.0)
    out = calc.counter_vs_power(t, energy, lagged, 2 * S, 8 * S)
    # Each sample's energy step uses the power at its end: the step ending at 5.0 s is already at 300 W.
    assert out["counter_j"] == pytest.approx(2.95 * 100 + 3.05 * 300, rel=1e-6)
    assert out["power_integral_j"] == pytest.approx(4 * 100 + 2 * 300 + (300 - 100) * 0.05 / 2, rel=1e-3)
    assert out["ratio"] == pytest.approx(out["counter_j"] / out["power_integral_j"])
    assert out["ratio"] > 1.1


def test_missing_or_uncovering_signals_give_none_and_say_why():
    t = np.arange(0, 10 * S + 1, 100 * MS)
    nan = np.full(t.size, np.nan)
    no_counter = calc.counter_vs_power(t, nan, np.full(t.size, 50.0), S, 9 * S)
    assert no_counter["counter_j"] is None and no_counter["ratio"] is None
    assert no_counter["power_integral_j"] == pytest.approx(400.0)
    assert "counter: no energy-counter samples" in no_counter["reason"]
    late = calc.counter_vs_power(t, t / S * 50.0, np.full(t.size, 50.0), -S, 9 * S)
    assert late["counter_j"] is None and late["power_integral_j"] is None and late["ratio"] is None
    assert "counter: " in late["reason"] and "power: " in late["reason"]
    partial_power = np.where(t < 5 * S, np.nan, 50.0)  # nan values are dropped, not read as 0
    dropped = calc.counter_vs_power(t, t / S * 50.0, partial_power, 6 * S, 9 * S)
    assert dropped["ratio"] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------------------------
# Energy per inference from a runs-table row, and cells.


def test_energy_per_inference_reads_the_gpu_column_defensively():
    row = {"iterations": 100, "batch_size": 64, "window_s": 10.0, "gpu_energy_j": 3200.0, "total_energy_j": 4000.0,
           "gpu_dynamic_j": 1600.0, "energy_gpu-0_j": 3200.0, "energy_domains": "cpu+gpu",
           "gpu_energy_method": "counter"}
    out = calc.energy_per_inference(row)
    assert out["inferences"] == 6400
    assert out["gpu_j_per_inference"] == pytest.approx(0.5)
    assert out["total_j_per_inference"] == pytest.approx(0.625)
    assert out["gpu_dynamic_j_per_inference"] == pytest.approx(0.25)
    assert out["gpu_j_per_batch"] == pytest.approx(32.0)
    assert out["gpu_mean_power_w"] == pytest.approx(320.0)
    assert out["gpu_energy_method"] == "counter"
    # A table from before `gpu_energy_j`: the per-GPU columns are summed.
    old = {"iterations": 10, "batch_size": 1, "window_s": 1.0, "energy_gpu-0_j": 30.0, "energy_gpu-1_j": 10.0}
    assert calc.energy_per_inference(old)["gpu_j_per_inference"] == pytest.approx(4.0)
    # The column is there but empty (no GPU given to the run): missing, never the sum of other GPUs, never 0.
    cpu_run = {"iterations": 10, "batch_size": 1, "window_s": 1.0, "gpu_energy_j": None, "energy_gpu-0_j": 30.0,
               "other_gpus_energy_j": 30.0, "total_energy_j": float("nan")}
    out = calc.energy_per_inference(cpu_run)
    assert out["gpu_j_per_inference"] is None and out["total_j_per_inference"] is None
    assert out["other_gpus_energy_j"] == 30.0
    assert calc.energy_per_inference({})["gpu_j_per_inference"] is None


def test_cell_summaries_take_medians_over_ok_repetitions_and_overhead_compares_p50s():
    def run(rep, status, p50, jpi, ratio, spanned):
        return {"model": "resnet50", "batch_size": 64, "precision": "fp16", "repetition": rep, "status": status,
                "latency_p50_ms": p50, "energy": {"gpu_j_per_inference": jpi},
                "channels": {"gpu-0": {"coverage": {"samples_per_s": 20.0, "spanned_fraction": spanned},
                                       "counter_vs_power": {"ratio": ratio}}}}

    runs = [run(0, "ok", 10.0, 0.1, 1.0, 0.99), run(1, "ok", 12.0, 0.3, 1.02, 0.98),
            run(2, "failed", 99.0, 9.9, 9.0, 0.0)]
    runs.append({"model": "resnet50", "batch_size": 1, "precision": "fp32", "status": "ok", "latency_p50_ms": 3.0})
    cells = calc.cell_summaries(runs)
    assert [(c["batch_size"], c["precision"]) for c in cells] == [(1, "fp32"), (64, "fp16")]
    big = cells[1]
    assert big["runs"] == 3 and big["ok"] == 2
    assert big["latency_p50_ms"] == pytest.approx(11.0)
    assert big["gpu_j_per_inference"] == pytest.approx(0.2)
    assert big["counter_power_ratio"] == pytest.approx(1.01)
    assert big["spanned_fraction_min"] == pytest.approx(0.98)
    assert cells[0]["gpu_j_per_inference"] is None and cells[0]["spanned_fraction_min"] is None
    assert calc.harness_overhead(10.5, 10.0) == {"ratio": pytest.approx(1.05), "added_ms": pytest.approx(0.5)}
    assert calc.harness_overhead(None, 10.0) == {"ratio": None, "added_ms": None}
    stats = calc.latency_stats([1 * MS, 2 * MS, 3 * MS])
    assert stats["n"] == 3 and stats["p50_ms"] == 2.0 and stats["min_ms"] == 1.0
    assert calc.latency_stats([])["p50_ms"] is None


# ---------------------------------------------------------------------------------------------------------------
# The sweep analysis on a synthetic results directory (what the orchestrator writes).

WINDOW_START = 1_000 * S


GPU0 = GpuDescription(index=0, name="NVIDIA H100", uuid="GPU-0", pci_bus_id=None, energy_counter=True,
                      power_is_1s_average=True)
NVML_OK = [SensorStatus("nvml", True, "1 GPU", channels={"gpu-0": "gpu"}),
           SensorStatus("rapl", True, "1 zone", channels={"package-0": "cpu"})]


def _write_sweep(root: Path, with_table: bool = True) -> None:
    """Two GPU runs: samples every 50 ms at 250 W from 1 s before to 1 s after a 10 s window, of a counter that
    steps every 100 ms (as NVML's does on Hopper); one failed run. Each run's energy record is the product's own
    accounting of its samples (gpu-0 assigned), so it carries the edge figures the sweep would record."""
    root.mkdir(parents=True)
    (root / "samples").mkdir()
    records, rows = [], []
    for rep, batch in enumerate((64, 64)):
        run_id = f"r{rep:03d}-resnet50-bs{batch}-torch_native_cuda-fp16"
        record = make_record(run_id, batch_size=batch, runtime="torch/native/cuda", latencies_ms=(20.0,) * 500,
                             window_s=10.0, index=rep)
        record["precision"] = "fp16"
        record["repetition"] = rep
        record["result"]["window_start_ns"] = WINDOW_START
        record["result"]["window_end_ns"] = WINDOW_START + 10 * S
        series = SampleSeries(channels={"gpu-0": "gpu", "package-0": "cpu"})
        for t in range(WINDOW_START - S, WINDOW_START + 11 * S + 1, 50 * MS):
            steps = (t - WINDOW_START) // (100 * MS)  # the counter holds its last 100 ms update in between
            series.append(t, Reading("gpu-0", 1e5 + 25.0 * steps, power_w=250.0), "gpu")
            series.append(t, Reading("package-0", 50.0 * t / S), "cpu")
        series.write_parquet(root / "samples" / f"{run_id}.parquet")
        record["energy"] = account_energy(series, (WINDOW_START, WINDOW_START + 10 * S),
                                          {"gpu-0": 100.0, "package-0": 10.0}, NVML_OK, (GPU0,)).model_dump(mode="json")
        record["samples_path"] = f"samples/{run_id}.parquet"
        records.append(record)
        rows.append({"run_id": run_id, "model": "resnet50", "batch_size": batch, "precision": "fp16",
                     "repetition": rep, "status": "ok", "iterations": 500, "window_s": 10.0,
                     "latency_p50_ms": 20.0 + rep, "latency_mean_ms": 20.0, "throughput_per_s": 3200.0,
                     "energy_status": "ok", "energy_note": "", "gpu_energy_j": 2500.0, "gpu_dynamic_j": 1500.0,
                     "total_energy_j": 3000.0, "energy_gpu-0_j": 2500.0, "gpu_energy_method": "counter"})
    failed = make_record("r000-resnet50-bs1-torch_native_cuda-fp16", batch_size=1, runtime="torch/native/cuda",
                         status="failed", index=2, failure={"kind": "runtime", "message": "CUDA error: boom"})
    failed["precision"] = "fp16"
    records.append(failed)
    rows.append({"run_id": failed["run_id"], "model": "resnet50", "batch_size": 1, "precision": "fp16",
                 "repetition": 0, "status": "failed", "iterations": None, "window_s": None, "latency_p50_ms": None,
                 "latency_mean_ms": None, "throughput_per_s": None, "energy_status": "unavailable",
                 "energy_note": "the run did not start", "gpu_energy_j": None, "gpu_dynamic_j": None,
                 "total_energy_j": None, "energy_gpu-0_j": None, "gpu_energy_method": None})
    (root / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if with_table:
        (root / "tables").mkdir()
        pl.DataFrame(rows, infer_schema_length=None).write_parquet(root / "tables" / "runs.parquet")


def test_sweep_analysis_computes_energy_coverage_and_ratio_per_run_and_cell(tmp_path):
    _write_sweep(tmp_path / "sweep")
    analysis = gpu_check_sweep.analyse_sweep(tmp_path / "sweep")
    assert analysis["table"].endswith("tables/runs.parquet")
    by_id = {r["run_id"]: r for r in analysis["runs"]}
    ok = by_id["r000-resnet50-bs64-torch_native_cuda-fp16"]
    assert ok["energy"]["gpu_j_per_inference"] == pytest.approx(2500.0 / (500 * 64))
    assert ok["energy"]["total_j_per_inference"] == pytest.approx(3000.0 / (500 * 64))
    assert set(ok["channels"]) == {"gpu-0"}  # CPU channels are not GPU checks
    gpu = ok["channels"]["gpu-0"]
    assert gpu["coverage"]["samples_in_window"] == 201 and gpu["coverage"]["bracketed"]
    assert gpu["coverage"]["spanned_fraction"] == pytest.approx(1.0)
    assert gpu["counter_vs_power"]["counter_j"] == pytest.approx(2500.0)
    assert gpu["counter_vs_power"]["ratio"] == pytest.approx(1.0)
    assert gpu["orchestrator_raw_j"] == pytest.approx(2500.0) and gpu["read_errors"] == 0
    # The accounting's own edge figures travel with the run: a 100 ms period measured from its samples (taken every
    # 50 ms), at 250 W: 25 J at each edge, 50 J of the window's 2500 J.
    assert gpu["orchestrator_assigned"] is True and gpu["sampling_interval_ms"] == pytest.approx(50.0)
    assert gpu["orchestrator_counter_period_s"] == pytest.approx(0.1)
    assert gpu["orchestrator_counter_period_source"] == "measured"
    assert gpu["orchestrator_edge_uncertainty_j"] == pytest.approx(50.0)
    assert ok["edge_uncertainty_j"] == pytest.approx(50.0)
    assert "edge_power" not in gpu  # the check computes no edge figure of its own
    fast = {"nvml_index": 0, "resolution_ms": 0.02, "update_period_ms": {"median": 100.3, "min": 99.0, "max": 101.0}}
    report = edges.edges_report({"energy_counter": fast}, analysis["runs"])
    rows = {r["run_id"]: r for r in report["runs"]}
    assert set(rows) == {r["run_id"] for r in analysis["runs"] if r["status"] == "ok"}
    row = rows["r000-resnet50-bs64-torch_native_cuda-fp16"]
    assert row["channels"] == ["gpu-0"] and row["window_energy_j"] == pytest.approx(2500.0)
    assert row["uncertainty_j"] == pytest.approx(50.0) and row["percent"] == pytest.approx(2.0)
    [period] = row["periods"]
    assert period["period_ms"] == pytest.approx(100.0) and period["source"] == "measured"
    assert period["agrees"] is True and period["difference_ms"] == pytest.approx(0.3)
    assert period["bound_ms"] == pytest.approx(50.02) and row["period_agrees"] is True
    assert edges.edge_findings(report) == ([], [])
    # A counter the fast poll sees stepping every 20 ms: the accounting's 100 ms is not its period.
    fast["update_period_ms"] = {"median": 20.0, "min": 19.5, "max": 20.5}
    problems, _ = edges.edge_findings(edges.edges_report({"energy_counter": fast}, analysis["runs"]))
    assert len(problems) == 2 and "r000-resnet50-bs64-torch_native_cuda-fp16 gpu-0" in problems[0]
    assert "counter period 100.0 ms (measured) against 20.0 ms polled fast on GPU 0" in problems[0]
    assert "80.0 ms apart, more than the poll's resolution + the sampler's interval (50.0 ms)" in problems[0]
    bad = by_id["r000-resnet50-bs1-torch_native_cuda-fp16"]
    assert bad["status"] == "failed" and "CUDA error: boom" in bad["failure"] and bad["channels"] == {}
    cells = {c["batch_size"]: c for c in analysis["cells"]}
    assert cells[64]["ok"] == 2 and cells[64]["latency_p50_ms"] == pytest.approx(20.5)
    assert cells[64]["counter_power_ratio"] == pytest.approx(1.0)
    assert cells[1]["ok"] == 0 and cells[1]["latency_p50_ms"] is None


def test_sweep_analysis_makes_the_table_from_the_journal_when_the_sweep_wrote_none(tmp_path):
    _write_sweep(tmp_path / "sweep", with_table=False)
    analysis = gpu_check_sweep.analyse_sweep(tmp_path / "sweep")
    assert "journal" in analysis["table"]
    assert len(analysis["runs"]) == 3
    ok = [r for r in analysis["runs"] if r["status"] == "ok"]
    assert ok and all(r["latency_p50_ms"] == pytest.approx(20.0) for r in ok)
    assert all(r["channels"]["gpu-0"]["counter_vs_power"]["ratio"] == pytest.approx(1.0) for r in ok)


# ---------------------------------------------------------------------------------------------------------------
# The thin GPU-side pieces that run on fakes: NVML facts, polling, judging, the report files.


def test_nvml_facts_from_a_fake_nvml_and_cuda0_matched_by_uuid():
    nvml = FakeNvml([FakeGpu(), FakeGpu(name="Tesla K80", energy_mj=None)])
    nvml.nvmlDeviceGetUUID = lambda h: f"GPU-0000000{h}-aaaa-bbbb-cccc-dddddddddddd"
    facts = gpu_check.nvml_facts(nvml)
    assert facts["driver"] == "999.01" and facts["nvml_version"] is None and facts["cuda_driver"] is None
    first, second = facts["gpus"]
    assert first["name"] == "NVIDIA H200" and first["energy_counter"] and first["energy_counter_mj"] == 1_000_000
    assert first["power_w_now"] == 150.0
    assert first["power_limit_w"] is None and first["power_limit_reason"] == "not in this nvidia-ml-py"
    assert not second["energy_counter"] and second["energy_counter_reason"] == "NVMLError_NotSupported"

    class Props:
        uuid = "00000001-aaaa-bbbb-cccc-dddddddddddd"

    class Cuda:
        @staticmethod
        def get_device_properties(i):
            return Props()

    class Torch:
        cuda = Cuda()

    assert gpu_check.nvml_index_of_cuda0(Torch(), facts["gpus"]) == (1, "matched by UUID")
    Props.uuid = "not-a-gpu-here"
    assert gpu_check.nvml_index_of_cuda0(Torch(), facts["gpus"])[0] == 0


def test_poll_reads_back_to_back_and_ticks_the_load():
    values = iter(range(10**9))
    ticks = []

    def read():
        value = next(values)
        if value == 3:
            raise RuntimeError("one failed read")
        return value

    t_ns, got, failed = gpu_check.poll(read, 0.05, tick=lambda: ticks.append(1), tick_every_s=0.01)
    assert failed == 1 and len(got) == len(t_ns) > 10
    assert 3 not in got and np.all(np.diff(t_ns) > 0)
    assert 3 <= len(ticks) <= 7


def _report() -> dict:
    return {
        "schema": gpu_check.SCHEMA, "started_at": "2026-12-01T00:00:00+00:00", "wall_s": 312.4, "status": "ok",
        "host": {"hostname": "gpu-box", "cpus": 16, "versions": {"torch": "2.11.0+cu130", "cuda": "13.0"}},
        "nvml": {"driver": "580.159.04", "nvml_version": "13.580", "gpus": [
            {"index": 0, "name": "NVIDIA H200", "uuid": "GPU-1234", "energy_counter": True,
             "power_limit_w": 700.0, "enforced_power_limit_w": 700.0, "memory_total_mib": 143771.0}]},
        "updates": {"energy_counter": {"nvml_index": 0, "polls": 20000, "seconds": 2.0,
                                       "poll_interval_ms_median": 0.1, "changes": 80,
                                       "update_period_ms": {"median": 25.0, "min": 24.1, "max": 26.0},
                                       "load": "matmuls"},
                    "power_reading": {"nvml_index": 0, "polls": 20000, "changes": 0, "update_period_ms": None,
                                      "poll_interval_ms_median": 0.1}},
        "sweep": {"config": "configs/gpu-check.toml", "python": "/usr/bin/python3", "model": "resnet50",
                  "exit_code": 0, "cells": [{"batch_size": 64, "precision": "fp16", "runs": 2, "ok": 2,
                                             "latency_p50_ms": 7.25, "gpu_j_per_inference": 0.0123,
                                             "total_j_per_inference": None, "gpu_mean_power_w": 412.3,
                                             "samples_per_s": 19.9, "spanned_fraction_min": 0.998,
                                             "counter_power_ratio": 1.0123}],
                  "runs": [{"run_id": "r1", "status": "failed", "failure": "runtime: CUDA error"}]},
        "overhead": [{"batch_size": 64, "precision": "fp16", "bare_eager_p50_ms": 7.0, "graph_p50_ms": 6.0,
                      "orchestrator_p50_ms": 7.25, "ratio": 1.0357, "added_ms": 0.25, "graph_speedup": 1.1667},
                     {"batch_size": 1, "precision": "fp32", "graph_error": "RuntimeError: capture failed"}],
        "problems": ["run r1: failed: runtime: CUDA error"], "warnings": ["run r2 gpu-0: counter / power = 1.2"],
    }


def test_markdown_section_shows_every_part_and_survives_an_empty_report():
    text = gpu_check_report.render(_report())
    assert text.startswith("## GPU check (a real NVIDIA host)")
    assert "| 0 | NVIDIA H200 | GPU-1234 | works | 700 (700) | 140.4 |" in text
    assert "| energy_counter | 0 | 20000 | 0.1 | 80 | 25.0 (24.1-26.0) | matmuls |" in text
    assert "| power_reading | 0 | 20000 | 0.1 | 0 | no change seen | - |" in text
    assert "| 64 | fp16 | 2/2 | 7.250 | 0.0123 | - | - | 412.3 | 19.9 | 0.998 | 1.0123 |" in text
    assert "| 64 | fp16 | 7.000 | 6.000 | 7.250 | 1.036 | +0.250 | 1.17 |" in text
    assert "failed: RuntimeError: capture failed" in text
    assert "- run r1 failed: runtime: CUDA error" in text
    assert "Problems (something did not work):" in text and "counter / power = 1.2" in text
    assert "580.159.04" in text and "torch 2.11.0+cu130" in text
    assert gpu_check_report.render({}).startswith("## GPU check")


def test_judge_separates_what_failed_from_figures_out_of_range():
    report = {"problems": ["NVML: boom"], "nvml": {"gpus": [{"index": 0, "name": "X", "energy_counter": False,
                                                             "energy_counter_reason": "NVMLError_NotSupported"}]},
              "sweep": {"exit_code": 1, "log": "l", "runs": [
                  {"run_id": "a", "status": "failed", "failure": "oom"},
                  {"run_id": "b", "status": "ok", "energy": {"gpu_energy_j": None}, "energy_status": "invalid",
                   "energy_note": "why"},
                  {"run_id": "c", "status": "ok", "energy": {"gpu_energy_j": 5.0}, "channels": {"gpu-0": {
                      "coverage": {"bracketed": True, "spanned_fraction": 0.5},
                      "counter_vs_power": {"ratio": 1.3}}}},
                  {"run_id": "d", "status": "ok", "energy": {"gpu_energy_j": 5.0}, "channels": {"gpu-0": {
                      "coverage": {"bracketed": False, "spanned_fraction": 1.0}, "counter_vs_power": {}}}}]}}
    problems, warnings = gpu_check.judge(report)
    assert problems[0] == "NVML: boom"
    assert any("the sweep exited 1" in p for p in problems)
    assert any(p.startswith("run a: failed") for p in problems)
    assert any(p.startswith("run b: no GPU energy (invalid: why)") for p in problems)
    assert any("run d gpu-0: samples do not bracket" in p for p in problems)
    assert any("span only 0.500" in w for w in warnings) and any("= 1.300" in w for w in warnings)
    assert any("no total-energy counter" in w for w in warnings)
    assert gpu_check.judge({"sweep": {"exit_code": 0, "runs": [{"run_id": "e", "status": "ok",
                                                               "energy": {"gpu_energy_j": 1.0}}]}}) == ([], [])


def test_a_results_folder_of_another_config_is_not_analysed(tmp_path):
    config = ROOT / "configs" / "gpu-check.toml"
    assert gpu_check._foreign_sweep(config, tmp_path / "none") is None
    (tmp_path / "plan.json").write_text(json.dumps({"config_digest": load_config(config).digest()}))
    assert gpu_check._foreign_sweep(config, tmp_path) is None
    (tmp_path / "plan.json").write_text(json.dumps({"config_digest": "0123"}))
    assert "holds another config's sweep (digest 0123" in gpu_check._foreign_sweep(config, tmp_path)


def test_overhead_rows_pair_the_bare_loop_with_the_orchestrators_cell():
    cells = [{"model": "resnet50", "batch_size": 1, "precision": "fp32", "latency_p50_ms": 2.2}]
    bare = [{"model": "resnet50", "batch_size": 1, "precision": "fp32", "eager": {"p50_ms": 2.0},
             "graph": {"p50_ms": 1.0}, "graph_error": None},
            {"model": "resnet50", "batch_size": 64, "precision": "fp32", "error": "skipped: the time budget is spent"}]
    first, second = gpu_check.overhead_rows(cells, bare)
    assert first["ratio"] == pytest.approx(1.1) and first["added_ms"] == pytest.approx(0.2)
    assert first["graph_speedup"] == pytest.approx(2.0)
    assert second["graph_error"].startswith("skipped")


@pytest.mark.process  # a Python subprocess
def test_report_files_and_benchmarks_md_include_the_gpu_section(tmp_path):
    report = _report()
    report["sweep"]["cells"][0]["total_j_per_inference"] = float("nan")
    json_path, md_path = gpu_check.write_outputs(report, tmp_path)
    written = json.loads(json_path.read_text())
    assert written["status"] == "ok" and written["sweep"]["cells"][0]["total_j_per_inference"] is None
    assert md_path.read_text().startswith("## GPU check")
    (tmp_path / "sampler.json").write_text(json.dumps({"note": "n", "host": "h", "cpu_count": 2, "python": "3.11",
                                                       "runs": []}))
    target = tmp_path / "BENCHMARKS.md"
    subprocess.run([sys.executable, str(BENCH / "write_report.py"), str(tmp_path), str(target)], check=True,
                   capture_output=True)
    text = target.read_text()
    assert "## Sampler cost" in text and "## GPU check (a real NVIDIA host)" in text
    assert "| 64 | fp16 | 2/2 | 7.250 |" in text


# ---------------------------------------------------------------------------------------------------------------
# On a host without CUDA or NVML: one line, exit 2, no traceback.


def _fake_modules(folder: Path, cuda: bool = False) -> Path:
    """A `torch` without CUDA and a `pynvml` without a driver, first on the path: what a CPU host looks like."""
    (folder / "torch").mkdir(parents=True)
    (folder / "torch" / "__init__.py").write_text(
        "__version__ = '9.9.9+cpu'\n"
        "class version:\n    cuda = None\n"
        "class cuda:\n"
        f"    is_available = staticmethod(lambda: {cuda})\n"
        "    device_count = staticmethod(lambda: 0)\n")
    (folder / "pynvml.py").write_text(
        "class NVMLError(Exception):\n    pass\n"
        "class NVMLError_LibraryNotFound(NVMLError):\n    pass\n"
        "def nvmlInit():\n    raise NVMLError_LibraryNotFound('NVML Shared Library Not Found')\n")
    (folder / "transformers").mkdir()
    (folder / "transformers" / "__init__.py").write_text("")
    return folder


def _run(command: list[str], *extra_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(map(str, extra_path))
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.process  # a Python subprocess
def test_on_a_host_without_cuda_or_nvml_the_script_exits_2_with_one_line(tmp_path):
    done = _run([sys.executable, str(BENCH / "gpu_check.py")], _fake_modules(tmp_path / "fake"))
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("gpu-check: cannot run on this host: no CUDA device for torch 9.9.9+cpu")
    assert "NVML library not found (no NVIDIA driver on this host)" in lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.process  # a Python subprocess
def test_the_real_cpu_host_is_told_what_is_missing_in_one_line():
    # The host venv as it is: no torch there (and no NVIDIA driver on this machine).
    done = _run([sys.executable, str(BENCH / "gpu_check.py")])
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu-check: cannot run on this host: "), done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.process  # a Python subprocess
def test_the_shell_entry_point_stops_at_the_preflight_before_installing_anything(tmp_path):
    site = tmp_path / "site"
    env_path = _fake_modules(tmp_path / "fake")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(env_path), GPU_CHECK_PYTHON=sys.executable, GPU_CHECK_SITE=str(site))
    done = subprocess.run(["sh", str(BENCH / "gpu-check.sh")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "no CUDA device" in done.stderr
    assert not site.exists()
    env["GPU_CHECK_PYTHON"] = str(tmp_path / "no-such-python")
    missing = subprocess.run(["sh", str(BENCH / "gpu-check.sh")], cwd=ROOT, env=env, capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.strip().splitlines() == [
        f"gpu-check: cannot run on this host: no {tmp_path / 'no-such-python'} on PATH (set GPU_CHECK_PYTHON)"]


@pytest.mark.process  # a Python subprocess
def test_preflight_lists_host_side_packages_only_when_asked(tmp_path, monkeypatch):
    fake = _fake_modules(tmp_path / "fake", cuda=True)
    (fake / "pynvml.py").write_text("def nvmlInit():\n    pass\ndef nvmlShutdown():\n    pass\n"
                                    "def nvmlDeviceGetCount():\n    return 1\n")
    code = ("import gpu_check\n"
            "import importlib.util as u; real = u.find_spec\n"
            "u.find_spec = lambda n, *a: None if n == 'polars' else real(n, *a)\n"
            "try:\n    gpu_check.preflight(host_side=True)\nexcept gpu_check.CannotRun as e:\n    print(e)\n"
            "print(gpu_check.preflight(host_side=False)[0].__version__)\n")
    done = _run([sys.executable, "-c", code], fake, BENCH)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.strip().splitlines()
    assert first.startswith("polars not importable: run `sh bench/gpu-check.sh`")
    assert second == "9.9.9+cpu"


# ---------------------------------------------------------------------------------------------------------------
# The wheelhouse and the config.


def test_the_wheelhouse_is_pyprojects_host_side_minus_what_the_gpu_machine_has():
    pins = gpu_check_wheels.wheel_pins()
    declared = gpu_check_wheels.pyproject_pins()
    for name in ("polars", "pydantic", "typer", "rich", "pyrapl"):
        assert pins[name] == declared[name]
    # Their own requirements come along (polars 2.x keeps its engine in a runtime package) ...
    assert {"polars-runtime-32", "pydantic-core", "annotated-types", "typing-inspection",
            "typing-extensions"} <= set(pins)
    # ... but not what the machine has, nor the docker SDK, which `--launcher local` never imports.
    assert not {"numpy", "scipy", "matplotlib", "nvidia-ml-py", "docker", "requests", "urllib3"} & set(pins)
    assert gpu_check_wheels.check_against_pyproject(pins) == []
    makefile = (ROOT / "Makefile").read_text()
    assert "bench/gpu_check_wheels.py" in makefile and "--python-version $(GPU_WHEELS_PYTHON)" in makefile


@pytest.mark.process  # a Python subprocess
def test_the_cli_imports_no_docker_sdk_and_nothing_the_wheelhouse_lacks():
    code = ("import sys, orchestrator.cli\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    done = _run([sys.executable, "-c", code])
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert not {"docker", "requests", "urllib3", "pyRAPL"} & loaded


def test_the_gpu_check_config_is_valid_and_fits_its_budget():
    config = load_config(ROOT / "configs" / "gpu-check.toml")
    assert config.runtimes == ["torch/native/cuda"] and config.models == ["resnet50"]
    assert config.batch_sizes == [1, 64] and config.precisions == ["fp32", "fp16"]
    runs = len(config.batch_sizes) * len(config.precisions) * config.repetitions
    # ~15 s per run to start Python, import torch and transformers, build the model and warm up, then the window.
    per_run = 15 + config.measure.min_seconds + config.cooldown.seconds
    # Native GPU cells are compared with torch's CPU outputs: one reference run per batch size (fp32 and fp16 share
    # it), ~20 s each on that host's CPU (start, import, build, one batch), before the baseline.
    references = len(config.batch_sizes) * 20
    assert config.baseline.seconds + runs * per_run + references < 300
    assert config.cooldown.mode == "fixed" and config.timeout_seconds <= 180


# ---------------------------------------------------------------------------------------------------------------
# TF32 policy effect: the statistics, from synthetic timings and errors.


def test_tf32_errors_are_normwise_against_the_fp64_reference():
    ref = np.linspace(-4.0, 8.0, 1001)
    y = ref.copy()
    y[10] += 2e-3  # one element off by 2e-3, the rest exact
    diff = y - ref
    out = gpu_check_tf32.error_summary(np.abs(diff).max(), np.abs(ref).max(), float(diff @ diff), float(ref @ ref))
    assert out["max_abs_error"] == pytest.approx(2e-3)
    assert out["max_rel_error"] == pytest.approx(2e-3 / 8.0)  # over the largest reference magnitude, not ref[10]
    assert out["rms_rel_error"] == pytest.approx(2e-3 / np.linalg.norm(ref))
    assert gpu_check_tf32.error_summary(0.0, 0.0, 0.0, 0.0)["max_rel_error"] is None


def test_tf32_comparison_says_what_strict_fp32_costs_and_what_tf32_costs_in_accuracy():
    strict = [int(v * MS) for v in (18.0, 18.2, 18.1, 30.0, 18.05)]  # one outlier: the median ignores it
    tf32 = [int(v * MS) for v in (3.6, 3.62, 3.61, 3.6, 3.59)]
    errors = {"fp32": {"max_rel_error": 2e-7}, "tf32": {"max_rel_error": 5e-4}}
    out = gpu_check_tf32.compare_modes("matmul", "8192x8192", 2.0 * 8192 ** 3, {"fp32": strict, "tf32": tf32}, errors)
    assert out["modes"]["fp32"]["median_ms"] == pytest.approx(18.1) and out["modes"]["fp32"]["n"] == 5
    assert out["modes"]["tf32"]["median_ms"] == pytest.approx(3.6)
    assert out["speedup_tf32"] == pytest.approx(18.1 / 3.6)
    assert out["modes"]["fp32"]["tflops"] == pytest.approx(2.0 * 8192 ** 3 / 0.0181 / 1e12)
    assert out["max_rel_error_growth"] == pytest.approx(2500.0)
    assert "1/5.0 of TF32's speed" in out["verdict"]
    close = gpu_check_tf32.compare_modes("conv3x3", "c", 1e9, {"fp32": [MS] * 3, "tf32": [MS] * 3}, errors)
    assert close["speedup_tf32"] == pytest.approx(1.0) and "changes the speed little" in close["verdict"]
    middle = gpu_check_tf32.compare_modes("conv3x3", "c", 1e9, {"fp32": [15 * MS], "tf32": [10 * MS]}, {})
    assert "1.50x faster" in middle["verdict"] and middle["max_rel_error_growth"] is None
    missing = gpu_check_tf32.compare_modes("conv3x3", "c", 1e9, {"fp32": [MS]}, {})
    assert missing["speedup_tf32"] is None and missing["verdict"] == "not timed both ways"
    assert missing["modes"]["tf32"]["median_ms"] is None


@pytest.mark.process  # the torch environment's python in a subprocess
def test_the_tf32_measurement_runs_on_real_torch_and_puts_its_switches_back():
    # On the CPU the TF32 switches change nothing: this checks the code against a real torch, not the GPU's figures.
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli", "env", "python", "torch"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    torch_python = done.stdout.strip().splitlines()[-1]
    code = ("import json, torch, gpu_check_tf32 as t\n"
            "r = t.measure_tf32(torch, 'cpu', matmul_n=96, conv=(2, 8, 6), seconds_per_mode=0.05, rounds=2)\n"
            "print(json.dumps([r, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32]))\n")
    ran = _run([torch_python, "-c", code], BENCH)
    assert ran.returncode == 0, ran.stderr[-2000:]
    report, matmul_flag, cudnn_flag = json.loads(ran.stdout.strip().splitlines()[-1])
    assert report["restored"] and [matmul_flag, cudnn_flag] == [report["torch_defaults"]["matmul_allow_tf32"],
                                                                report["torch_defaults"]["cudnn_allow_tf32"]]
    assert [op["op"] for op in report["ops"]] == ["matmul", "conv3x3"]
    for op in report["ops"]:
        for mode in ("fp32", "tf32"):
            figures = op["modes"][mode]
            assert figures["n"] >= 2 * 5 and figures["median_ms"] > 0
            assert 0 < figures["max_rel_error"] < 1e-5  # fp32 arithmetic against fp64 on the same inputs
        assert op["speedup_tf32"] > 0


# ---------------------------------------------------------------------------------------------------------------
# Window-edge uncertainty: the accounting's figures, and its counter period against the fast-polled one.


def test_periods_agree_within_the_polls_resolution_plus_the_samplers_interval():
    assert edges.period_agreement(100.0, 0.02, 100.0, 50.0)["agrees"] is True
    # The counter moved at every 50 ms sample: the accounting states 50 ms, a bound on the 20 ms period.
    bound = edges.period_agreement(20.0, 0.02, 50.0, 50.0)
    assert bound["agrees"] is True and bound["difference_ms"] == pytest.approx(-30.0)
    edge = edges.period_agreement(150.0, 1.0, 100.0, 49.0)  # 50 ms apart, at the bound: still agrees
    assert edge["agrees"] is True and edge["bound_ms"] == pytest.approx(50.0)
    default = edges.period_agreement(20.0, 0.02, 100.0, 50.0)  # a 100 ms default on a 20 ms counter
    assert default["agrees"] is False and "80.0 ms apart" in default["reason"]
    unknown = edges.period_agreement(None, None, 100.0, 50.0)
    assert unknown["agrees"] is None and unknown["reason"] == "no fast-polled counter period"
    assert "no counter period in the energy record" in edges.period_agreement(100.0, 0.02, None, 50.0)["reason"]


def _gpu_channel(raw_j, uncertainty_j, period_s, source, assigned=True, note="25 J + 25 J"):
    return {"orchestrator_raw_j": raw_j, "orchestrator_assigned": assigned, "sampling_interval_ms": 50.0,
            "orchestrator_edge_uncertainty_j": uncertainty_j, "orchestrator_counter_period_s": period_s,
            "orchestrator_counter_period_source": source, "orchestrator_edge_note": note}


def test_edge_rows_report_the_accountings_figures_for_the_runs_own_gpus():
    fast = {"nvml_index": 0, "resolution_ms": 0.02, "update_period_ms": {"median": 100.0}}
    rows = edges.run_edges([
        {"run_id": "a", "status": "ok", "edge_uncertainty_j": 20.0, "channels": {
            "gpu-0": _gpu_channel(1000.0, 20.0, 0.1, "measured"),
            # Another GPU sampled beside it: not the run's, so neither its energy nor its period count.
            "gpu-1": _gpu_channel(600.0, 12.0, 0.5, "default", assigned=False)}},
        {"run_id": "b", "status": "failed"},
        {"run_id": "c", "status": "ok", "edge_uncertainty_j": None, "channels": {
            "gpu-0": _gpu_channel(1000.0, None, None, None, note="no power known at a window edge")}},
        {"run_id": "d", "status": "ok", "edge_uncertainty_j": None, "channels": {
            "gpu-0": _gpu_channel(1000.0, None, None, None, assigned=False)}}], fast)
    a, c, d = rows
    assert a["channels"] == ["gpu-0"] and a["window_energy_j"] == 1000.0
    assert a["uncertainty_j"] == 20.0 and a["percent"] == pytest.approx(2.0) and a["period_agrees"] is True
    assert c["uncertainty_j"] is None and c["percent"] is None and c["period_agrees"] is None
    assert c["reason"] == "gpu-0: no power known at a window edge"
    assert d["channels"] == [] and d["reason"] == "the energy record assigns the run no GPU channel"
    # Over 5 % of the window's energy: a warning, not a problem.
    big = {"runs": [{**a, "percent": 8.1}]}
    assert edges.edge_findings(big) == ([], ["run a: window-edge uncertainty 8.1% of its energy (over 5%)"])



# The fast poll, as measure_updates runs it, on the simulated NVML (no CUDA load: the simulator's counter steps at
# idle power too).
FAST_POLL = ("import json, pynvml; from gpu_check import poll; "
             "from gpu_check_calc import counter_update_period; pynvml.nvmlInit(); "
             "h = pynvml.nvmlDeviceGetHandleByIndex(0); "
             "t, v, _ = poll(lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(h), 1.5); "
             "print(json.dumps({**counter_update_period(t, v), 'nvml_index': 0}))")


@pytest.mark.process  # the real CLI's sweep and a fast poll, on the simulated NVIDIA host
def test_edges_of_a_real_sweep_on_the_simulated_host_report_the_accounting_and_match_the_fast_poll(tmp_path):
    from testkit.nvidia_host import SimGpu, SimHost
    from testkit.simulated_sweeps import gpu_config, sweep

    host = SimHost([SimGpu("NVIDIA H100 80GB HBM3", idle_w=60, load_w=500, wobble_w=2, counter_period_s=0.1,
                           power_average_s=0.0)], busy_mode="assigned-runner").write(tmp_path / "host")
    done, out = sweep(host, tmp_path, gpu_config(tmp_path / "edges.toml"))
    assert done.returncode == 0, done.output
    polled = subprocess.run([sys.executable, "-c", FAST_POLL], cwd=ROOT, env=host.env(pythonpath=(BENCH,)), capture_output=True,
                            text=True, timeout=60)
    assert polled.returncode == 0, polled.stderr
    fast = json.loads(polled.stdout)
    assert fast["update_period_ms"]["median"] == pytest.approx(100.0, abs=5.0)  # the simulator's 100 ms counter
    runs = gpu_check_sweep.analyse_sweep(out)["runs"]
    (record,) = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    report = edges.edges_report({"energy_counter": fast}, runs)
    (row,) = report["runs"]
    # The figures are the journal's, as the sweep's accounting recorded them: none computed by the check.
    assert row["channels"] == ["gpu-0"] and row["uncertainty_j"] == record["energy"]["edge_uncertainty_j"] > 0
    assert row["window_energy_j"] == record["energy"]["channels"]["gpu-0"]["raw_j"]
    assert row["percent"] == pytest.approx(100.0 * row["uncertainty_j"] / row["window_energy_j"])
    (period,) = row["periods"]
    assert period["source"] == "measured" and period["period_ms"] == pytest.approx(100.0, abs=10.0)
    assert period["sampling_interval_ms"] == pytest.approx(50.0, abs=10.0)  # the config's 50 ms sampler
    assert period["agrees"] is True and row["period_agrees"] is True
    assert edges.edge_findings(report)[0] == []


# ---------------------------------------------------------------------------------------------------------------
# One-GPU attribution: verdicts, and the polling on a fake NVML whose counters follow a load.


def test_counter_mean_power_is_taken_between_changes_not_at_the_windows_ends():
    t_ns, mj = _polled_counter(period_ms=100.0, poll_ms=1.0, seconds=3.0, watts=250.0)
    out = attribution.counter_mean_power(t_ns, mj)
    assert out["mean_w"] == pytest.approx(250.0, rel=0.005) and out["method"].startswith("between the counter's")
    flat = attribution.counter_mean_power([0, S], [5000.0, 5000.0])
    assert flat["mean_w"] == 0.0 and "changed less than twice" in flat["method"]
    assert attribution.counter_mean_power([0], [1.0])["mean_w"] is None
    fallback = attribution.window_mean_power([0, S], [np.nan, np.nan], [70_000.0, 72_000.0])
    assert fallback["mean_w"] == pytest.approx(71.0) and fallback["method"] == "mean of the power readings"


def _gpus(*pairs):
    return [{"index": i, "name": "NVIDIA H100", "idle_w": idle, "load_w": load} for i, (idle, load) in enumerate(pairs)]


def test_attribution_verdicts():
    ok = attribution.attribution_verdict(_gpus((70, 520), (68, 70), (72, 71.5), (69, 73)), 0, "matched by UUID")
    assert ok["checked"] and ok["ok"] and "3 other GPU(s) stayed within max(5 W, 5% of idle)" in ok["verdict"]
    assert [g["stays_idle"] for g in ok["gpus"]] == [None, True, True, True]
    leak = attribution.attribution_verdict(_gpus((70, 520), (68, 300)), 0, "matched by UUID")
    assert leak["checked"] and leak["ok"] is False and "GPU 1 went from 68.0 W idle to 300.0 W" in leak["verdict"]
    wrong = attribution.attribution_verdict(_gpus((70, 75), (68, 520)), 0, "assumed NVML index 0")
    assert wrong["ok"] is False and "GPU 1 rose most (+452.0 W), not GPU 0" in wrong["verdict"]
    one = attribution.attribution_verdict(_gpus((70, 520)), 0, "matched by UUID")
    assert not one["checked"] and one["ok"] is None
    assert one["verdict"].startswith("attribution across GPUs could not be checked: NVML lists one GPU")
    weak = attribution.attribution_verdict(_gpus((70, 80), (68, 68)), 0, "matched by UUID")
    assert not weak["checked"] and "only 10.0 W" in weak["verdict"]
    blind = attribution.attribution_verdict(_gpus((70, 520), (None, None)), 0, "matched by UUID")
    assert not blind["checked"] and "no other GPU could be read" in blind["verdict"]
    # 5% of a 200 W idle is 10 W: an 8 W drift of a big board stays within.
    assert attribution.attribution_verdict(_gpus((70, 520), (200, 208)), 0, "m")["ok"]


class _TimedNvml(FakeNvml):
    """A fake NVML whose counters integrate each GPU's power over real time, stepping every `period_s`."""

    def __init__(self, idle_w, load_w, period_s=0.02):
        super().__init__([FakeGpu() for _ in idle_w])
        self.idle_w, self.load_w, self.period_s = list(idle_w), list(load_w), period_s
        self.t0 = time.monotonic()
        self.segments = [(0.0, False)]  # (seconds since t0, loaded)

    def set_loaded(self, loaded):
        self.segments.append((time.monotonic() - self.t0, loaded))

    def _joules(self, handle, at):
        total = 0.0
        for (start, loaded), (end, _) in zip(self.segments, self.segments[1:] + [(at, None)]):
            lo, hi = min(start, at), min(end, at)
            total += (self.load_w if loaded else self.idle_w)[handle] * max(0.0, hi - lo)
        return total

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        now = time.monotonic() - self.t0
        return int(self._joules(handle, now // self.period_s * self.period_s) * 1e3)

    def nvmlDeviceGetPowerUsage(self, handle):
        return int((self.load_w if self.segments[-1][1] else self.idle_w)[handle] * 1e3)


class _FakeLoad:
    text = "a fake load"

    def __init__(self, nvml):
        self.nvml, self.ticks = nvml, 0

    def start(self):
        self.nvml.set_loaded(True)

    def tick(self):
        self.ticks += 1

    def stop(self):
        self.nvml.set_loaded(False)
        return {"ticks": self.ticks}


@pytest.mark.parametrize("idle, load, ok, checked", [
    ((70.0, 65.0, 72.0), (450.0, 65.0, 72.0), True, True),  # the load shows on GPU 0 alone
    ((70.0, 65.0, 72.0), (450.0, 400.0, 72.0), False, True),  # GPU 1 rises with it: charged wrongly
    ((70.0,), (450.0,), None, False),  # one GPU: nothing to check across GPUs
])
@pytest.mark.slow  # idle and load measured in real time
def test_attribution_measured_on_a_fake_nvml(idle, load, ok, checked):
    nvml = _TimedNvml(idle, load)
    fake_load = _FakeLoad(nvml)
    out = attribution.measure_attribution(nvml, fake_load, 0, "matched by UUID", idle_s=0.5, load_s=0.6,
                                          settle_s=0.05)
    assert out["ok"] is ok and out["checked"] is checked, out["verdict"]
    assert fake_load.ticks > 10 and out["load_stats"] == {"ticks": fake_load.ticks}
    for gpu, i_w, l_w in zip(out["gpus"], idle, load):
        # Within a few %: each counter step is seen up to a poll (about 1 ms, more on a busy host) late.
        assert gpu["idle_w"] == pytest.approx(i_w, rel=0.04) and gpu["load_w"] == pytest.approx(l_w, rel=0.04)
        assert gpu["load_method"].startswith("between the counter's")
    if len(idle) == 1:
        assert "could not be checked: NVML lists one GPU" in out["verdict"]


def test_report_shows_tf32_edges_and_attribution_and_judge_flags_them():
    report = _report()
    matmul = gpu_check_tf32.compare_modes("matmul", "8192x8192 @ 8192x8192", 2.0 * 8192 ** 3,
                                          {"fp32": [18 * MS], "tf32": [4 * MS]},
                                          {"fp32": {"max_abs_error": 1e-3, "max_rel_error": 2e-7, "rms_rel_error": 1e-7},
                                           "tf32": {"max_abs_error": 2.0, "max_rel_error": 5e-4, "rms_rel_error": 3e-4}})
    report["tf32"] = {"rounds": 3, "restored": True, "ops": [matmul], "torch_defaults": {
        "matmul_allow_tf32": False, "cudnn_allow_tf32": True, "cudnn_benchmark": False}}
    period = {"channel": "gpu-0", "period_ms": 100.4, "source": "measured", "sampling_interval_ms": 50.0,
              **edges.period_agreement(100.0, 0.02, 100.4, 50.0)}
    report["edges"] = {"period_ms": 100.0, "period_range_ms": [99.0, 101.0], "resolution_ms": 0.02, "nvml_index": 0,
                       "runs": [{"run_id": "r1", "batch_size": 64, "precision": "fp16", "window_s": 10.0,
                                 "channels": ["gpu-0"], "window_energy_j": 1000.0, "uncertainty_j": 81.0,
                                 "percent": 8.1, "periods": [period], "period_agrees": True, "reason": ""}]}
    report["attribution"] = attribution.attribution_verdict(_gpus((70, 520)), 0, "matched by UUID")
    report["attribution"].update(idle_s=3.0, load_s=5.0, load="matmuls")
    text = gpu_check_report.render(report)
    assert "| matmul | fp32, TF32 off (greenrt) | 18.000 |" in text and "| matmul | TF32 allowed | 4.000 |" in text
    assert "TF32 4.50x the speed of strict fp32" in text and "1/4.5 of TF32's speed" in text
    assert "This torch's defaults: matmul TF32 off, cuDNN TF32 on" in text
    assert "a change every 100.0 ms (median; 99.0-101.0, each within 0.02 ms)" in text
    assert ("| r1 | 64 | fp16 | 10.00 | 1000.0 | 81.00 | 8.10 | gpu-0: 100.4 (measured) | 50.0 "
            "| yes: -0.4 (bound 50.0) |") in text
    assert "One-GPU attribution (not checked)" in text and "could not be checked: NVML lists one GPU" in text
    problems, warnings = gpu_check.judge({**report, "problems": []})
    assert any("window-edge uncertainty 8.1% of its energy (over 5%)" in w for w in warnings)
    assert not any("counter period" in p for p in problems)
    report["edges"]["runs"][0]["percent"] = 2.0  # a 10 s window at a 100 ms period: as expected, no warning
    assert not any("edge" in w for w in gpu_check.judge({**report, "problems": []})[1])
    # The counter polled fast steps every 20 ms: the accounting's period is not the counter's.
    report["edges"]["period_ms"] = 20.0
    period.update(edges.period_agreement(20.0, 0.02, 100.4, 50.0))
    assert "| gpu-0: 100.4 (measured) | 50.0 | NO: -80.4 (bound 50.0) |" in gpu_check_report.render(report)
    assert any(p.startswith("run r1 gpu-0: the energy accounting's counter period 100.4 ms (measured)")
               for p in gpu_check.judge({**report, "problems": []})[0])
    assert not any("attribution" in p for p in problems)
    report["attribution"] = attribution.attribution_verdict(_gpus((70, 520), (68, 300)), 0, "matched by UUID")
    report["tf32"]["restored"] = False
    problems, _ = gpu_check.judge({**report, "problems": []})
    assert any(p.startswith("one-GPU attribution: GPU 1 went from 68.0 W") for p in problems)
    assert any("TF32 switches were not put back" in p for p in problems)
    skipped = gpu_check_report.render({"tf32": {"skipped": "the time budget is spent (30 s needed)"}})
    assert "TF32 policy effect: the time budget is spent (30 s needed)." in skipped


# ---------------------------------------------------------------------------------------------------------------
# The wheelhouse without pip: wheels are zip files.


def _wheel(folder: Path, filename: str, files: dict[str, str]) -> Path:
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / filename, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return folder / filename


def test_wheel_tags_decide_what_this_interpreter_can_use():
    ok = gpu_check_unpack.compatible
    assert ok("rich-15.0.0-py3-none-any.whl", (3, 12), "x86_64") is None
    assert ok("pyRAPL-0.2.3.1-py2.py3-none-any.whl", (3, 12), "x86_64") is None
    runtime = "polars_runtime_32-2.1.0-cp311-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    assert ok(runtime, (3, 12), "x86_64") is None and ok(runtime, (3, 11), "x86_64") is None
    assert "not CPython 3.10" in ok(runtime, (3, 10), "x86_64")  # abi3 from 3.11 on
    core = "pydantic_core-2.50.5-cp312-cp312-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
    assert ok(core, (3, 12), "x86_64") is None
    assert ok(core, (3, 11), "x86_64") == "built for cp312-cp312, not CPython 3.11"
    assert "not Linux aarch64" in ok(core, (3, 12), "aarch64")
    with pytest.raises(gpu_check_unpack.Unusable):
        ok("not-a-wheel.whl")


def test_wheels_unpack_like_pip_target_and_a_foreign_wheelhouse_is_refused(tmp_path):
    wheels = tmp_path / "whl"
    _wheel(wheels, "alpha-1.0-py3-none-any.whl", {"alpha/__init__.py": "VALUE = 41\n",
                                                  "alpha-1.0.dist-info/METADATA": "Name: alpha\nVersion: 1.0\n"})
    _wheel(wheels, "beta-2.0-py3-none-any.whl", {"beta-2.0.data/purelib/beta.py": "from alpha import VALUE\n"
                                                                                   "VALUE = VALUE + 1\n",
                                                 "beta-2.0.data/scripts/beta-cli": "#!/bin/sh\n",
                                                 "beta-2.0.dist-info/METADATA": "Name: beta\nVersion: 2.0\n"})
    site = tmp_path / "site"
    (site / "stale.py").parent.mkdir(parents=True)
    (site / "stale.py").write_text("")
    summary = gpu_check_unpack.unpack_all(wheels, site, [])
    assert "2 wheels, 4 files" in summary
    assert (site / "beta.py").exists() and not (site / "beta-2.0.data").exists() and not (site / "stale.py").exists()
    done = _run([sys.executable, "-c", "import beta; from importlib import metadata; "
                 "print(beta.VALUE, metadata.version('alpha'))"], site)
    assert done.stdout.split() == ["42", "1.0"], done.stderr
    _wheel(wheels, "gamma-1.0-cp27-cp27mu-manylinux1_x86_64.whl", {"gamma.py": ""})
    with pytest.raises(gpu_check_unpack.Unusable, match="gamma-1.0-cp27-cp27mu.*not CPython"):
        gpu_check_unpack.unpack_all(wheels, tmp_path / "site2", [])
    assert not (tmp_path / "site2").exists()
    (wheels / "gamma-1.0-cp27-cp27mu-manylinux1_x86_64.whl").unlink()
    with pytest.raises(gpu_check_unpack.Unusable, match="no_such_module does not import"):
        gpu_check_unpack.unpack_all(wheels, tmp_path / "site3", ["alpha", "no_such_module"])
    _wheel(wheels, "evil-1.0-py3-none-any.whl", {"../escape.py": ""})
    with pytest.raises(gpu_check_unpack.Unusable, match="unsafe path"):
        gpu_check_unpack.unpack_all(wheels, tmp_path / "site4", [])


@pytest.mark.process  # the shell entry point and Python subprocesses
def test_the_shell_entry_point_needs_no_pip(tmp_path):
    # A python3 like the lent machine's: `-m pip` fails, torch sees CUDA, NVML answers. The wheelhouse carries the
    # host-side packages (stand-ins here); the script must unpack them and run, never calling pip.
    fake = _fake_modules(tmp_path / "fake", cuda=True)
    (fake / "torch" / "__init__.py").write_text((fake / "torch" / "__init__.py").read_text()
                                                + "    get_device_name = staticmethod(lambda i: 'NVIDIA H100')\n")
    (fake / "pynvml.py").write_text("def nvmlInit():\n    pass\ndef nvmlShutdown():\n    pass\n"
                                    "def nvmlDeviceGetCount():\n    return 1\n")
    wheels = tmp_path / "whl"
    for name in ("polars", "pydantic", "typer", "rich"):
        _wheel(wheels, f"{name}-0.0.1-py3-none-any.whl", {f"{name}/__init__.py": f"FROM_WHEEL = {name!r}\n"})
    python = tmp_path / "python3"
    python.write_text(f'#!/bin/sh\nif [ "$1" = "-m" ] && [ "$2" = "pip" ]; then\n'
                      f'  echo "{python}: No module named pip" >&2; exit 1\nfi\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    site = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(fake), GPU_CHECK_PYTHON=str(python), GPU_CHECK_SITE=str(site),
               GPU_CHECK_WHEELS=str(wheels))
    done = subprocess.run(["sh", str(BENCH / "gpu-check.sh"), "--preflight"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"wheelhouse {wheels} unpacked into {site} (4 wheels, 4 files)" in done.stdout
    assert "preflight ok: torch 9.9.9+cpu sees NVIDIA H100" in done.stdout
    assert (site / "polars" / "__init__.py").exists()
    # A wheelhouse for another interpreter: one line, exit 2.
    _wheel(wheels, "pydantic_core-2.50.5-cp27-cp27mu-manylinux1_x86_64.whl", {"pydantic_core/__init__.py": ""})
    refused = subprocess.run(["sh", str(BENCH / "gpu-check.sh"), "--preflight"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu-check: cannot run on this host: the wheelhouse")
    assert "pydantic_core-2.50.5-cp27-cp27mu-manylinux1_x86_64.whl: built for cp27-cp27mu" in lines[0]


@pytest.mark.slow  # its steps' budgets run in real time
def test_main_runs_the_new_parts_in_order_within_the_budget(tmp_path, monkeypatch):
    # main() wired end to end on fakes: what needs CUDA (the polls' load, the TF32 timings, the bare loop) is
    # replaced by figures; the attribution's own polling runs for real on a fake NVML.
    class Torch:
        __version__ = "2.11.0+cu130"

        class version:
            cuda = "13.0"

    nvml = _TimedNvml((70.0, 66.0), (70.0, 66.0))  # the fake load below raises GPU 0 only
    nvml.load_w = [450.0, 66.0]
    monkeypatch.setattr(gpu_check, "preflight", lambda host_side=True: (Torch, nvml))
    monkeypatch.setattr(gpu_check, "measure_updates", lambda *a: {"energy_counter": {
        "nvml_index": 0, "resolution_ms": 0.02, "update_period_ms": {"median": 100.0, "min": 99.0, "max": 101.0}}})
    monkeypatch.setattr(gpu_check, "bare_cell", lambda *a, **k: {"model": "resnet50", "batch_size": a[2],
                                                                "precision": a[3], "eager": {"p50_ms": 1.0}})
    monkeypatch.setattr(gpu_check_tf32, "measure_tf32", lambda torch, **k: {"rounds": 3, "restored": True, "ops": [
        gpu_check_tf32.compare_modes("matmul", "m", 1e12, {"fp32": [20 * MS], "tf32": [4 * MS]}, {})]})
    monkeypatch.setattr(gpu_check, "_attribution", lambda torch, pynvml, index, how, load_s: (
        attribution.measure_attribution(pynvml, _FakeLoad(pynvml), index, how, idle_s=0.2, load_s=0.3, settle_s=0.05)))
    code = gpu_check.main(["--skip-sweep", "--out-dir", str(tmp_path), "--bare-seconds", "0.01"])
    report = json.loads((tmp_path / "gpu-check.json").read_text())
    assert code == 0, report["problems"]
    assert {"NVML", "NVML update periods", "TF32 policy effect", "one-GPU attribution",
            "window-edge uncertainty"} <= set(report["step_seconds"])
    assert report["tf32"]["ops"][0]["speedup_tf32"] == pytest.approx(5.0)
    assert report["attribution"]["ok"] is True and report["attribution"]["load_index"] == 0
    assert report["edges"]["period_ms"] == 100.0 and report["edges"]["runs"] == []
    text = (tmp_path / "gpu-check.md").read_text()
    assert "One-GPU attribution (ok)" in text and "TF32 5.00x the speed of strict fp32" in text
    # A budget too small for a part: the part says so instead of running.
    gpu_check.main(["--skip-sweep", "--out-dir", str(tmp_path), "--bare-seconds", "0.01", "--budget-s", "25"])
    report = json.loads((tmp_path / "gpu-check.json").read_text())
    assert report["tf32"] == {"skipped": "the time budget is spent (30 s needed)"}
    assert report["attribution"]["ok"] is True  # 20 s fit
