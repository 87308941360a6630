"""GPUs per run, refused handles, MIG and window-edge uncertainty: the real CLI on simulated NVIDIA hosts.

A GPU run here is torch/native/cuda with tests/host/gpu_standin on its PYTHONPATH (the simulated host has no CUDA):
its runner measures torch/native/cpu instead, a real runner with a real window, while its process lives like a
GPU runner, so the simulator draws load power on exactly the GPUs its CUDA_VISIBLE_DEVICES names. Everything on
the host side is greenrt's own: which GPU the run is given, how it is told, what it is charged, the edge
uncertainty.

Energy against the simulator's truth: the counter holds the true energy of its last update tick (every T), each
counter read is stamped by itself, so a window edge reads between 0 and P * T below the truth and the window's
energy lies within edge_uncertainty_j (P_start * T + P_end * T) of it; 0.05 J covers mJ and float rounding.
"""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from testkit.faults_helpers import journal
from testkit.nvidia_host import SimGpu, SimHost, SimulatedHost, run_greenrt
from testkit.paths import GPU_STANDIN
from testkit.simulated_sweeps import gpu_config, sweep

TORCH_CUDA = "torch/native/cuda"
STANDIN = GPU_STANDIN
ROUNDING_J = 0.05

pytestmark = pytest.mark.process


def only_record(out: Path) -> dict:
    (record,) = {r["run_id"]: r for r in journal(out)}.values()
    return record


def window(record: dict) -> tuple[int, int]:
    return record["result"]["window_start_ns"], record["result"]["window_end_ns"]


def table_rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip().strip("│").split("│")] for line in text.splitlines()
            if line.strip().startswith("│")]


def assert_within_edge_uncertainty(record: dict, host: SimulatedHost, pid: int) -> None:
    truth = host.truth()
    start, end = window(record)
    for name, channel in record["energy"]["channels"].items():
        true_j = truth.energy_between(pid, int(name.removeprefix("gpu-")), start, end)
        assert channel["edge_uncertainty_j"] is not None, channel
        assert abs(channel["raw_j"] - true_j) <= channel["edge_uncertainty_j"] + ROUNDING_J, (name, channel, true_j)


# --- a 4-GPU host: a single-device run gets the first GPU, and only its energy -------------------------------------
@pytest.fixture(scope="module")
def four_gpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpus-per-run")
    gpus = [SimGpu("NVIDIA H100 80GB HBM3", idle_w=60 + 5 * i, load_w=500, wobble_w=2, counter_period_s=0.1,
                   power_average_s=0.0) for i in range(4)]
    host = SimHost(gpus, busy_mode="assigned-runner").write(folder / "host")
    done, out = sweep(host, folder, gpu_config(folder / "gpus-per-run.toml"))
    return host, done, out


def test_a_single_device_run_gets_exactly_the_first_gpu(four_gpus):
    host, done, out = four_gpus
    assert done.returncode == 0, done.output
    record = only_record(out)
    assert record["status"] == "ok", record["failure"]
    first = host.gpus[0]
    assert [(g["index"], g["uuid"]) for g in record["gpus"]] == [(0, first.uuid)], record["gpus"]
    assert record["launch"]["cuda_visible_devices"] == first.uuid
    # The simulator drew load only on the GPU the runner could see; the other three idled, sampled all along.
    truth = host.truth()
    assert [len(truth.busy_intervals(done.pid, i)) for i in range(4)] == [1, 0, 0, 0]
    assert "each GPU run is given gpu-0" in done.stdout, done.output


def test_the_run_is_charged_only_its_gpus_energy(four_gpus):
    host, done, out = four_gpus
    record = only_record(out)
    truth = host.truth()
    start, end = window(record)
    channels = record["energy"]["channels"]
    assert sorted(channels) == ["gpu-0", "gpu-1", "gpu-2", "gpu-3"]
    assert [name for name, c in channels.items() if c["assigned"]] == ["gpu-0"]
    (row,) = pl.read_parquet(out / "tables/runs.parquet").iter_rows(named=True)
    true_own = truth.energy_between(done.pid, 0, start, end)
    true_others = sum(truth.energy_between(done.pid, i, start, end) for i in (1, 2, 3))
    assert abs(row["gpu_energy_j"] - true_own) <= row["gpu_edge_uncertainty_j"] + ROUNDING_J
    assert row["total_energy_j"] == pytest.approx(row["gpu_energy_j"])  # no RAPL here: the run's energy is GPU 0's
    assert row["j_per_inference"] == pytest.approx(row["gpu_energy_j"] / record["result"]["iterations"])
    assert abs(row["other_gpus_energy_j"] - true_others) <= 3 * 0.1 * (75 + 2) + ROUNDING_J
    # What the old code charged: the whole node, four times one busy GPU's share on this host.
    assert row["node_gpu_energy_j"] > row["gpu_energy_j"] + 0.9 * true_others


def test_each_window_states_its_edge_uncertainty_and_the_truth_lies_within_it(four_gpus):
    host, done, out = four_gpus
    record = only_record(out)
    assert_within_edge_uncertainty(record, host, done.pid)
    for channel in record["energy"]["channels"].values():
        assert channel["counter_period_source"] == "measured", channel
        assert channel["counter_period_s"] == pytest.approx(0.1, abs=0.02), channel
    own = record["energy"]["channels"]["gpu-0"]
    assert record["energy"]["edge_uncertainty_j"] == pytest.approx(own["edge_uncertainty_j"])
    # About 500 W at both edges for 100 ms each: ~100 J, a stated bound, not a made-up figure.
    assert 80 <= own["edge_uncertainty_j"] <= 120, own
    report = (out / "report" / "report.md").read_text()
    assert "gpu_edge_uncertainty_j" in report and "Window edges" in report


def test_more_gpus_per_run_than_selected_is_refused_in_one_line(four_gpus, tmp_path):
    host, _, _ = four_gpus
    done, out = sweep(host, tmp_path, gpu_config(tmp_path / "too-many.toml", gpus_per_run=3), "--gpus", "1,2")
    assert done.returncode != 0, done.output
    assert "Traceback" not in done.output
    (line,) = [line for line in done.stderr.splitlines() if "gpus_per_run" in line]
    assert "gpus_per_run = 3" in line and "valid: 1..2" in line, done.output
    assert not (out / "runs.jsonl").exists()


def test_two_gpus_per_run_are_the_first_two_of_gpus(four_gpus, tmp_path):
    host, _, _ = four_gpus
    done, out = sweep(host, tmp_path, gpu_config(tmp_path / "two.toml", gpus_per_run=2), "--gpus", "3,1,2")
    assert done.returncode == 0, done.output
    record = only_record(out)
    assert [g["index"] for g in record["gpus"]] == [1, 2]
    assert record["launch"]["cuda_visible_devices"] == f"{host.gpus[1].uuid},{host.gpus[2].uuid}"
    assert sorted(n for n, c in record["energy"]["channels"].items() if c["assigned"]) == ["gpu-1", "gpu-2"]
    busy = host.truth()
    assert [len(busy.busy_intervals(done.pid, i)) for i in range(4)] == [0, 1, 1, 0]


# --- a GPU whose handle NVML refuses ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    folder = tmp_path_factory.mktemp("refused")
    gpus = [SimGpu("NVIDIA H100 80GB HBM3", handle_refused=True), SimGpu("NVIDIA H100 80GB HBM3"),
            SimGpu("NVIDIA H100 80GB HBM3")]
    host = SimHost(gpus, busy_mode="assigned-runner").write(folder / "host")
    doctor = run_greenrt(["doctor", "--powercap-root", str(folder / "no-powercap")], env=host.env(), timeout=120)
    done, out = sweep(host, folder, gpu_config(folder / "refused.toml"))
    return host, doctor, done, out


def test_doctor_lists_the_refused_gpu_with_the_reason_and_measures_the_others(refused):
    host, doctor, _, _ = refused
    assert doctor.returncode == 0, doctor.output
    rows = table_rows(doctor.stdout)
    (left_out,) = [cells for cells in rows if "left out" in cells]
    assert left_out[0] == "0" and "handle refused" in left_out, left_out
    (line,) = [line for line in doctor.stdout.splitlines() if line.startswith("left out gpu-0:")]
    assert "NoPermission" in line and "Slurm" in line, line
    for gpu in host.gpus[1:]:
        assert len([cells for cells in rows if gpu.uuid in cells]) == 1, doctor.output
    assert not any(host.gpus[0].uuid in cells for cells in rows)
    (nvml,) = [cells for cells in rows if cells and cells[0] == "nvml"]
    assert nvml[1] == "yes" and "gpu-1" in nvml[2] and "gpu-2" in nvml[2] and "gpu-0" not in nvml[2], nvml


def test_a_sweep_measures_the_gpus_that_answer_and_records_the_refused_one(refused):
    host, _, done, out = refused
    assert done.returncode == 0, done.output
    record = only_record(out)
    assert record["status"] == "ok", record["failure"]
    assert [g["index"] for g in record["gpus"]] == [1]  # the first GPU NVML hands out
    assert sorted(record["energy"]["channels"]) == ["gpu-1", "gpu-2"]
    assert record["energy"]["status"] == "ok"
    assert_within_edge_uncertainty(record, host, done.pid)
    details = json.loads((out / "host.json").read_text())
    (nvml,) = [s for s in details["sensors"] if s["name"] == "nvml"]
    assert [r["index"] for r in nvml["details"]["refused_gpus"]] == [0]
    assert "NoPermission" in nvml["details"]["refused_gpus"][0]["reason"]
    report = (out / "report" / "report.md").read_text()
    assert "gpu-0 was not measured: NVML refused its handle" in report


# --- MIG -------------------------------------------------------------------------------------------------------------
def test_a_mig_gpu_is_explained_and_never_given_to_a_run(tmp_path):
    gpus = [SimGpu("NVIDIA H100 80GB HBM3", mig=True), SimGpu("NVIDIA H100 80GB HBM3", mig=False)]
    host = SimHost(gpus, busy_mode="assigned-runner").write(tmp_path / "host")
    doctor = run_greenrt(["doctor", "--powercap-root", str(tmp_path / "no-powercap")], env=host.env(), timeout=120)
    assert doctor.returncode == 0, doctor.output
    (line,) = [line for line in doctor.stdout.splitlines() if "MIG mode is enabled" in line]
    assert "gpu-0" in line and "whole GPU" in line and "no device" in line, line
    done, out = sweep(host, tmp_path, gpu_config(tmp_path / "mig.toml"))
    assert done.returncode == 0, done.output
    record = only_record(out)
    assert [g["index"] for g in record["gpus"]] == [1]
    assert record["launch"]["cuda_visible_devices"] == host.gpus[1].uuid
    assert sorted(record["energy"]["channels"]) == ["gpu-0", "gpu-1"]  # still sampled, not charged


def test_gpu_cells_are_skipped_with_the_reason_when_every_gpu_is_mig(tmp_path):
    host = SimHost([SimGpu("NVIDIA H100 80GB HBM3", mig=True)], busy_mode="assigned-runner").write(tmp_path / "host")
    # A CPU cell beside the GPU one: the sweep then has a run to report (a sweep with none is another matter).
    config = gpu_config(tmp_path / "all-mig.toml", runtimes=(TORCH_CUDA, "torch/native/cpu"))
    plan = run_greenrt(["plan", "--config", str(config), "--json", "--powercap-root", str(tmp_path / "none")],
                       env=host.env(), timeout=120)
    assert plan.returncode == 0, plan.output
    planned = json.loads(plan.stdout)
    assert [r["cell"]["runtime"] for r in planned["runs"]] == ["torch/native/cpu"]
    (skipped,) = planned["skipped"]
    assert "MIG-enabled" in skipped["reason"] and "gpu-0" in skipped["reason"], skipped
    done, out = sweep(host, tmp_path, config)
    assert done.returncode == 0, done.output
    assert [r["runtime"] for r in journal(out)] == ["torch/native/cpu"]
    assert host.truth().busy_intervals(done.pid, 0) == []


def runtime_rows(text: str) -> dict[str, str]:
    """doctor's runtimes table: runtime -> its "runs here" cell, with the lines a long cell wraps onto joined."""
    rows: dict[str, list[str]] = {}
    last: list[str] | None = None
    for cells in table_rows(text):
        if cells[0]:
            last = rows[cells[0]] = cells
        elif last is not None and len(cells) == len(last):
            last[:] = [f"{a} {b}".strip() for a, b in zip(last, cells)]
    return {name: cells[1] for name, cells in rows.items() if name.count("/") == 2 and len(cells) == 3}


@pytest.fixture(scope="module")
def all_mig(tmp_path_factory):
    folder = tmp_path_factory.mktemp("all-mig")
    return SimHost([SimGpu("NVIDIA H100 80GB HBM3", mig=True)], busy_mode="assigned-runner").write(folder / "host")


def test_doctor_says_no_gpu_runtime_runs_here_when_every_gpu_is_mig(all_mig, tmp_path):
    doctor = run_greenrt(["doctor", "--powercap-root", str(tmp_path / "no-powercap")], env=all_mig.env(), timeout=180)
    assert doctor.returncode == 0, doctor.output
    rows = runtime_rows(doctor.stdout)
    gpu = {name: cell for name, cell in rows.items() if name.rsplit("/", 1)[1] in ("cuda", "tensorrt")}
    assert TORCH_CUDA in gpu and "onnxruntime/onnx-from-torch/tensorrt" in gpu, rows
    for name, cell in gpu.items():
        if "not implemented" in cell:
            continue
        assert cell.startswith("no: needs an NVIDIA GPU: every selected GPU is MIG-enabled (gpu-0)"), (name, cell)
    assert rows["torch/native/cpu"] == "yes", rows  # the CPU side is untouched by the GPUs' MIG mode
    assert "JIT-compiled" not in doctor.stdout  # no GPU run will compile anything here
    # and `make sweep` would not plan the study's GPU matrix only to skip every GPU cell of it
    assert "make sweep would use configs/quick.toml: every selected GPU is MIG-enabled" in " ".join(doctor.stdout.split())


def test_a_sweep_whose_every_cell_is_skipped_is_refused_in_one_line_before_anything_is_written(all_mig, tmp_path):
    done, out = sweep(all_mig, tmp_path, gpu_config(tmp_path / "only-gpu.toml"))
    assert done.returncode != 0 and "Traceback" not in done.output, done.output
    said = (done.stdout + done.stderr).strip().splitlines()
    assert len(said) <= 3 and "plans no run" in said[-1], done.output
    assert "MIG" in done.output, done.output  # why its cell was skipped: every GPU is in MIG mode
    assert not out.exists(), "a refused sweep wrote its results folder"
    assert all_mig.truth().busy_intervals(done.pid, 0) == []
