"""greenrt end to end on a simulated NVIDIA host: the real CLI in subprocesses, real runners, simulated GPUs.

Every greenrt here runs with tests/host/simulated_nvidia first on its PYTHONPATH (nvidia_host.py), so its
`import pynvml` gets a simulated driver whose GPUs draw load power while greenrt's runners live, and which logs the
TRUE energy of every GPU. Each sweep runs once per module (fixtures) and many assertions read its results. Runners
are real (MobileNetV2 at batch 1 in ONNX Runtime on the CPU; its export is cached under .cache/artifacts), with
budgets of a few seconds; the torch and onnxruntime environments are built before pytest starts (`make test`).

Tolerance of a GPU's window energy from its counter, against the simulator's truth (nvidia_host.counter_tolerance_j):
    |greenrt - truth| <= P_max * (T + 2 * skew) + 0.5 J
  - the counter holds the true energy of its last update tick (every T = counter_period_s), so each sample reads
    between 0 and P_max * T below the truth at the instant the simulator was called;
  - the sample is stamped at the middle of the sensor's whole read, at most skew = 25 ms from that instant (a read
    is a few NVML calls, plus the simulator's /proc scan now and then), worth up to P_max * skew either way;
  - the energy at a window edge interpolates two such samples, so each edge errs within [-P*skew, P*(T + skew)],
    and the difference of the two edges within +-P_max * (T + 2 * skew); 0.5 J covers mJ and float rounding.
  For T = 0.1 s and P_max = 303 W that is 46 J out of the ~600 J a 2-s window draws; for T = 0.025 s, 23 J.
For a GPU without a counter greenrt integrates power samples; the truth is piecewise constant in power, so both
lie between P_min * W and P_max * W over the window (W seconds; P_min, P_max of the true power around it): the
tolerance there is (P_max - P_min) * W + 0.5 J, a few joules with a small wobble.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from testkit.nvidia_host import (ORCHESTRATOR_FAULTS_DIR, SimGpu, SimHost, SimTemperature, SimulatedHost, counter_tolerance_j,
                         run_greenrt)
from testkit.faults_helpers import journal
from testkit.sweep_helpers import GREENRT
from testkit.paths import BENCH, REPO
from testkit.simulated_sweeps import sweep, sweep_config

ORT = "onnxruntime/onnx-from-torch/cpu"
TORCH_CPU = "torch/native/cpu"
TORCH_CUDA = "torch/native/cuda"
PROJECT_ROOT = REPO
FIGURES = ("energy_per_inference", "energy_vs_time", "energy_split", "power_trace")

pytestmark = pytest.mark.process


def latest(out: Path) -> dict[str, dict]:
    return {r["run_id"]: r for r in journal(out)}


def window(record: dict) -> tuple[int, int]:
    result = record["result"]
    return result["window_start_ns"], result["window_end_ns"]


def runs_table(out: Path) -> dict[str, dict]:
    return {row["run_id"]: row for row in pl.read_parquet(out / "tables/runs.parquet").iter_rows(named=True)}


def gpu_index(channel: str) -> int:
    return int(channel.removeprefix("gpu-"))


def has_cell(cells: list[str], word: str) -> bool:
    """A cell that says `word`, alone or followed by an explanation ("no: power samples integrated")."""
    return any(c == word or c.startswith((f"{word}:", f"{word} (", f"{word},")) for c in cells)


def table_rows(text: str) -> list[list[str]]:
    """The cells of each row of rich's tables in a command's output."""
    return [[cell.strip() for cell in line.strip().strip("│").split("│")] for line in text.splitlines()
            if line.strip().startswith("│")]


# --- doctor and plan -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def h200_host(tmp_path_factory) -> SimulatedHost:
    return SimHost([SimGpu("NVIDIA H200")], driver_version="580.95.05").write(tmp_path_factory.mktemp("h200"))


@pytest.fixture(scope="module")
def doctor_h200(h200_host):
    return run_greenrt(["doctor", "--powercap-root", str(h200_host.config_path.parent / "no-powercap")],
                       env=h200_host.env(), timeout=120)


def test_doctor_lists_the_gpus_and_picks_the_study_config(doctor_h200, h200_host):
    done = doctor_h200
    assert done.returncode == 0, done.output
    assert "NVIDIA GPUs" in done.stdout, done.output
    gpu = h200_host.gpus[0]
    rows = [cells for cells in table_rows(done.stdout) if gpu.uuid in cells]
    assert len(rows) == 1, done.output
    assert {"0", "NVIDIA H200", gpu.uuid, gpu.pci_bus_id} <= set(rows[0]), rows[0]
    assert has_cell(rows[0], "yes") and has_cell(rows[0], "1-s average"), rows[0]
    assert has_cell(rows[0], f"{gpu.memory_total_bytes / 2**30:.1f} GiB"), rows[0]
    assert any("driver" in line and "580.95.05" in line for line in done.stdout.splitlines()), done.output
    last = [line for line in done.stdout.splitlines() if line.strip()][-1]
    assert last.startswith("make sweep would use configs/study.toml: "), last


def test_doctor_says_which_gpus_lack_the_counter_and_average_their_power(tmp_path):
    spec = SimHost([SimGpu("Tesla P100-PCIE-16GB"), SimGpu("NVIDIA A100-SXM4-80GB"), SimGpu("NVIDIA L4")],
                   driver_version="535.183.01")
    host = spec.write(tmp_path / "host")
    done = run_greenrt(["doctor", "--powercap-root", str(tmp_path / "no-powercap")], env=host.env(), timeout=120)
    assert done.returncode == 0, done.output
    rows = {gpu.uuid: [cells for cells in table_rows(done.stdout) if gpu.uuid in cells] for gpu in host.gpus}
    expected = {0: ("no", "instantaneous"), 1: ("yes", "instantaneous"), 2: ("yes", "1-s average")}
    for index, gpu in enumerate(host.gpus):
        assert len(rows[gpu.uuid]) == 1, done.output
        counter, power = expected[index]
        cells = rows[gpu.uuid][0]
        assert {str(index), gpu.name, gpu.pci_bus_id} <= set(cells), cells
        assert has_cell(cells, counter) and has_cell(cells, power), (counter, power, cells)
    assert "535.183.01" in done.stdout


def test_a_batch_too_large_for_the_gpus_memory_is_refused_before_anything_is_written(tmp_path):
    host = SimHost([SimGpu("NVIDIA T4", memory_total_bytes=2**30)]).write(tmp_path / "host")
    config = tmp_path / "big.toml"
    config.write_text('name = "big"\nmodels = ["resnet50"]\nbatch_sizes = [4096]\n'
                      'runtimes = ["torch/native/cpu", "torch/native/cuda"]\n')
    out = tmp_path / "out"
    args = ["--config", str(config), "--powercap-root", str(tmp_path / "no-powercap")]
    refused = run_greenrt(["sweep", *args, "--out", str(out)], env=host.env(), timeout=120)
    assert refused.returncode == 2 and not out.exists(), refused.output
    [line] = refused.stderr.strip().splitlines()
    assert "torch/native/cuda" in line and "more than the GPU's 1.0 GiB of memory" in line, line
    skipped = run_greenrt(["plan", *args, "--skip-oversized", "--json"], env=host.env(), timeout=120)
    plan = json.loads(skipped.stdout)
    assert [r["cell"]["runtime"] for r in plan["runs"]] == ["torch/native/cpu"]  # the host's memory holds it
    assert "more than the GPU's" in plan["skipped"][0]["reason"]


@pytest.fixture(scope="module")
def plans(h200_host, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("plan-cwd")
    results = PROJECT_ROOT / "results" / "study"
    before = results.stat().st_mtime_ns if results.exists() else None
    args = ["plan", "--powercap-root", str(cwd / "no-powercap")]
    text = run_greenrt(args, env=h200_host.env(), cwd=cwd, timeout=120)
    as_json = run_greenrt([*args, "--json"], env=h200_host.env(), cwd=cwd, timeout=120)
    after = results.stat().st_mtime_ns if results.exists() else None
    return text, as_json, (before, after), cwd


def test_plan_without_config_uses_the_study_and_names_the_launcher(plans):
    text, _, _, _ = plans
    assert text.returncode == 0, text.output
    lines = text.stdout.splitlines()
    assert any(line.startswith("config: configs/study.toml (") for line in lines), text.output
    launcher = [line for line in lines if line.startswith("launcher: ")]  # the reason may wrap onto more lines
    assert len(launcher) == 1 and launcher[0].startswith(("launcher: local (", "launcher: docker (")), text.output
    assert TORCH_CUDA in text.stdout and "onnxruntime/onnx-from-torch/tensorrt" in text.stdout


def test_plan_json_has_the_gpu_runs_the_config_and_the_launcher(plans):
    _, done, (before, after), cwd = plans
    assert done.returncode == 0, done.output
    plan = json.loads(done.stdout)
    assert plan["config_path"].endswith("configs/study.toml") and plan["config_name"] == "study"
    assert plan["launcher"]["name"] in ("local", "docker") and plan["launcher"]["why"]
    runtimes = {run["cell"]["runtime"] for run in plan["runs"]}
    assert {TORCH_CUDA, "onnxruntime/onnx-from-torch/cuda", "onnxruntime/onnx-from-mxnet/tensorrt"} <= runtimes
    # On a Hopper GPU only MXNet's native cells are skipped: mxnet-cu117 has no sm_90 code and no PTX (its ONNX
    # exports still run, in ONNX Runtime).
    assert len(plan["runs"]) == 8 * 3 * 2 * 10 and len(plan["skipped"]) == 3 * 2
    assert {(s["cell"]["runtime"], s["reason"].split("; ")[-1]) for s in plan["skipped"]} == {
        ("mxnet/native/cuda", "this GPU (gpu-0 NVIDIA H200) is sm_90")}
    # A dry run: nothing measured, nothing written.
    assert before == after, "greenrt plan touched results/study"
    assert sorted(p.name for p in cwd.iterdir()) == [], list(cwd.iterdir())


# --- CPU runtimes with two GPUs sampled ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gpu_sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpus-sampled")
    spec = SimHost([SimGpu("NVIDIA H200", idle_w=60, load_w=300, wobble_w=3, counter_period_s=0.1),
                    SimGpu("NVIDIA H200", idle_w=75, load_w=420, wobble_w=5, wobble_period_s=5,
                           counter_period_s=0.025, temperature=SimTemperature(idle_c=31, c_per_w=0.08, tau_s=2))],
                   busy_mode="any-runner")
    host = spec.write(folder / "host")
    config = sweep_config(folder / "gpus-sampled.toml", runtimes=[ORT, TORCH_CPU])
    done, out = sweep(host, folder, config, rapl=True)
    return host, done, out


def test_sweep_with_gpus_sampled_records_every_run(gpu_sweep):
    _, done, out = gpu_sweep
    assert done.returncode == 0, done.output
    records = latest(out)
    assert len(records) == 2 and {r["status"] for r in records.values()} == {"ok"}, done.output
    for record in records.values():
        assert record["gpus"] == [] and record["launch"]["cuda_visible_devices"] == ""  # CPU runtimes


def test_gpu_energy_is_the_true_energy_over_each_window(gpu_sweep):
    host, done, out = gpu_sweep
    truth = host.truth()
    assert done.pid in truth.pids()
    for record in latest(out).values():
        start, end = window(record)
        seconds = (end - start) / 1e9
        channels = record["energy"]["channels"]
        assert {c for c in channels if c.startswith("gpu-")} == {"gpu-0", "gpu-1"}
        for channel in ("gpu-0", "gpu-1"):
            c, gpu = channels[channel], host.gpus[gpu_index(channel)]
            true_j = truth.energy_between(done.pid, gpu_index(channel), start, end)
            tolerance = counter_tolerance_j(gpu)
            assert c["status"] == "ok" and c["method"] == "counter" and c["domain"] == "gpu", c
            assert c["assigned"] is False
            assert abs(c["raw_j"] - true_j) <= tolerance, (record["run_id"], channel, c["raw_j"], true_j, tolerance)
            assert c["mean_power_w"] == pytest.approx(c["raw_j"] / seconds, rel=1e-6)
            assert abs(c["mean_power_w"] - true_j / seconds) <= tolerance / seconds
            # any-runner: the GPU drew load power through the window (the test is not about idle GPUs).
            assert true_j / seconds > gpu.idle_w + 0.8 * (gpu.load_w - gpu.idle_w)
            assert c["samples_in_window"] >= 0.5 * seconds / 0.05
            # The idle baseline (1 s) from the same counter: within the same bound, per second, of the idle draw.
            idle = SimGpu(idle_w=gpu.idle_w, load_w=gpu.idle_w, wobble_w=gpu.wobble_w,
                          counter_period_s=gpu.counter_period_s)
            assert abs(c["idle_w"] - gpu.idle_w) <= gpu.wobble_w + counter_tolerance_j(idle) / 1.0


def test_gpu_temperature_and_power_per_channel(gpu_sweep):
    host, done, out = gpu_sweep
    table = runs_table(out)
    for run_id, record in latest(out).items():
        row = table[run_id]
        for channel in ("gpu-0", "gpu-1"):
            c, gpu = record["energy"]["channels"][channel], host.gpus[gpu_index(channel)]
            temperature = c["temperature_c"]
            hottest = gpu.temperature.idle_c + gpu.temperature.c_per_w * (gpu.max_power_w - gpu.idle_w)
            assert set(temperature) == {"start", "end", "max"}, temperature
            assert temperature["max"] >= max(temperature["start"], temperature["end"])
            assert gpu.temperature.idle_c + 2 <= temperature["max"] <= hottest + 1, temperature
            assert row[f"energy_{channel}_j"] == pytest.approx(c["raw_j"])
            assert row[f"power_{channel}_w"] == pytest.approx(c["mean_power_w"])
            assert row[f"temperature_max_{channel}_c"] == pytest.approx(temperature["max"])
        # A CPU runtime is given no GPU: the node's GPUs are kept beside its energy, not in it.
        node = row["energy_gpu-0_j"] + row["energy_gpu-1_j"]
        assert row["gpu_energy_j"] is None
        assert row["other_gpus_energy_j"] == pytest.approx(node) and row["node_gpu_energy_j"] == pytest.approx(node)
        assert row["gpu_energy_method"] == "counter" and row["energy_status"] == "ok"
    samples = pl.read_parquet(out / next(iter(latest(out).values()))["samples_path"])
    gpu_samples = samples.filter(pl.col("domain") == "gpu")
    assert set(gpu_samples["channel"]) == {"gpu-0", "gpu-1"}
    assert gpu_samples["power_w"].null_count() == 0 and gpu_samples["temperature_c"].null_count() == 0
    # No two windows draw the same: the simulated power wobbles.
    assert len({round(row["power_gpu-0_w"], 6) for row in table.values()}) == len(table)


def test_report_of_the_gpu_sweep_has_the_figures_and_the_gpus(gpu_sweep):
    host, done, out = gpu_sweep
    report = out / "report"
    for name in FIGURES:
        png = report / "figures" / f"{name}.png"
        assert png.is_file() and png.stat().st_size > 1000, f"{png} missing ({sorted(report.rglob('*.png'))})"
    text = (report / "report.md").read_text()
    assert "NVIDIA H200" in text and "gpu-0" in text and "gpu-1" in text
    assert all(gpu.uuid in text for gpu in host.gpus)
    print(f"report of the simulated 2-GPU sweep: {report}")


# --- adaptive cooldown ---------------------------------------------------------------------------------------------
def cooldown_sweep(folder: Path, cooling_tau_s: float | None, max_seconds: float):
    # A fine counter (20 ms) keeps the idle baseline's error (P*T over 1.5 s, under 1 W) inside the power margin.
    temperature = SimTemperature(idle_c=35, c_per_w=0.05, tau_s=0.3, cooling_tau_s=cooling_tau_s)
    gpu = SimGpu("NVIDIA H200", idle_w=60, load_w=300, wobble_w=1, counter_period_s=0.02, temperature=temperature)
    host = SimHost([gpu], busy_mode="any-runner").write(folder / "host")
    cooldown = {"mode": "adaptive", "seconds": 0.5, "max_seconds": max_seconds, "temperature_margin_c": 2.0,
                "power_margin_w": 8.0, "power_margin_fraction": 0.05}
    config = sweep_config(folder / "cooldown.toml", runtimes=[ORT], repetitions=2, min_seconds=1.0, baseline_s=1.5,
                          cooldown=cooldown)
    done, out = sweep(host, folder, config)
    return host, done, out


@pytest.fixture(scope="module")
def quick_cooling(tmp_path_factory):
    return cooldown_sweep(tmp_path_factory.mktemp("cooldown-idle"), cooling_tau_s=None, max_seconds=30.0)


@pytest.fixture(scope="module")
def slow_cooling(tmp_path_factory):
    # Heats in 0.3 s, cools with a time constant of a day: never back within 2 °C of idle.
    return cooldown_sweep(tmp_path_factory.mktemp("cooldown-limit"), cooling_tau_s=86_400.0, max_seconds=3.0)


def _by_index(out: Path) -> list[dict]:
    return sorted(latest(out).values(), key=lambda r: r["index"])


def test_adaptive_cooldown_ends_when_the_gpu_is_back_near_idle(quick_cooling):
    _, done, out = quick_cooling
    assert done.returncode == 0, done.output
    first, second = _by_index(out)
    assert first["status"] == second["status"] == "ok", done.output
    assert first["protocol"]["cooldown_before"] is None
    cooldown = second["protocol"]["cooldown_before"]
    assert cooldown["mode"] == "adaptive" and cooldown["outcome"] == "idle", cooldown
    assert 0.5 <= cooldown["seconds"] < 30.0
    assert cooldown["gpus"]["gpu-0"]["temperature_c"] <= 35 + 2, cooldown  # what the last poll read


def test_adaptive_cooldown_stops_at_its_limit_when_the_gpu_stays_hot(slow_cooling):
    _, done, out = slow_cooling
    assert done.returncode == 0, done.output
    first, second = _by_index(out)
    assert first["status"] == second["status"] == "ok", done.output
    cooldown = second["protocol"]["cooldown_before"]
    assert cooldown["mode"] == "adaptive" and cooldown["outcome"] == "limit", cooldown
    assert cooldown["seconds"] >= 3.0 and "gpu-0" in cooldown["detail"], cooldown
    assert cooldown["gpus"]["gpu-0"]["temperature_c"] >= 35 + 10, cooldown  # still hot, truly (47 °C)


# --- a GPU lost in the middle of a window --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lost_sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpu-lost")
    # Falls off the bus 3 s after the first runner made it busy: inside that runner's window, which begins about
    # 1 s after the runner starts and lasts at least 5 s.
    host = SimHost([SimGpu("NVIDIA H100 80GB HBM3", lost_after_busy_s=3.0)]).write(folder / "host")
    config = sweep_config(folder / "lost.toml", runtimes=[ORT], repetitions=2, min_seconds=5.0)
    done, out = sweep(host, folder, config, rapl=True)
    return host, done, out


def test_a_gpu_lost_mid_window_invalidates_its_channel_and_loses_no_run(lost_sweep):
    host, done, out = lost_sweep
    assert done.returncode == 0, done.output
    first, second = _by_index(out)
    lost_at = host.truth().lost_at(done.pid, 0)
    start, end = window(first)
    assert lost_at is not None and start < lost_at < end, ("the simulated loss missed the first window: retime the "
                                                           "test", start, lost_at, end)
    reason = first["energy"]["channels"]["gpu-0"]["reason"]
    assert "lost" in reason.lower() or "read error" in reason.lower(), reason
    for record in (first, second):  # both recorded; the runners themselves were fine
        assert record["status"] == "ok", record["failure"]
        gpu = record["energy"]["channels"]["gpu-0"]
        assert gpu["status"] == "invalid" and gpu["raw_j"] is None, gpu
        # The CPU's energy does not depend on the GPU's sensor.
        assert record["energy"]["channels"]["package-0"]["status"] == "ok"
        assert record["energy"]["status"] == "partial"
    table = runs_table(out)
    for row in table.values():
        assert row["energy_gpu-0_j"] is None and row["node_gpu_energy_j"] is None and row["status"] == "ok"
        assert "gpu-0" in row["energy_note"], row["energy_note"]


# --- a GPU without an energy counter -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def no_counter_sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("no-counter")
    # Pascal: no total-energy counter (the simulator's default for the name), instantaneous power readings.
    host = SimHost([SimGpu("Tesla P100-PCIE-16GB", idle_w=30, load_w=250, wobble_w=0.5)]).write(folder / "host")
    config = sweep_config(folder / "no-counter.toml", runtimes=[ORT])
    done, out = sweep(host, folder, config)
    return host, done, out


def test_a_gpu_without_counter_is_measured_by_integrating_power(no_counter_sweep):
    host, done, out = no_counter_sweep
    assert done.returncode == 0, done.output
    (record,) = latest(out).values()
    assert record["status"] == "ok", record["failure"]
    channel = record["energy"]["channels"]["gpu-0"]
    assert channel["status"] == "ok" and channel["method"] == "power-integral", channel
    start, end = window(record)
    truth = host.truth()
    true_j = truth.energy_between(done.pid, 0, start, end)
    low, high = truth.power_range(done.pid, 0, start - 250_000_000, end + 250_000_000)
    tolerance = (high - low) * (end - start) / 1e9 + 0.5
    assert abs(channel["raw_j"] - true_j) <= tolerance, (channel["raw_j"], true_j, tolerance)
    # Busy through the window itself (the runner may exit within the 250 ms after it, so not around it).
    assert truth.power_range(done.pid, 0, start, end)[0] > 200
    (row,) = runs_table(out).values()
    assert row["gpu_energy_method"] == "power-integral"
    assert row["energy_gpu-0_j"] == pytest.approx(channel["raw_j"])


# --- per-GPU attribution on a 4-GPU host ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def four_gpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("four-gpus")
    # GA100: instantaneous power readings, so a short-lived runner shows in the samples at once.
    gpus = [SimGpu("NVIDIA A100-SXM4-80GB", idle_w=55 + 3 * i, load_w=350, wobble_w=2) for i in range(4)]
    host = SimHost(gpus, busy_mode="assigned-runner").write(folder / "host")
    config = sweep_config(folder / "four-gpus.toml", runtimes=[TORCH_CUDA, ORT], min_seconds=1.0)
    done, out = sweep(host, folder, config, "--gpus", "2")
    return host, done, out


def _record_of(out: Path, runtime: str) -> dict:
    (record,) = [r for r in latest(out).values() if r["runtime"] == runtime]
    return record


def test_a_gpu_runtime_is_given_the_gpu_asked_for(four_gpus):
    host, done, out = four_gpus
    assert done.returncode == 0, done.output
    record = _record_of(out, TORCH_CUDA)
    gpu = host.gpus[2]
    assert [(g["index"], g["uuid"], g["pci_bus_id"], g["name"]) for g in record["gpus"]] == [
        (2, gpu.uuid, gpu.pci_bus_id, gpu.name)], record["gpus"]
    assert record["launch"]["cuda_visible_devices"] == gpu.uuid
    # This host has no CUDA: the runner says so, and that is recorded as the run's failure (not a traceback).
    assert record["status"] == "failed" and record["failure"]["kind"] not in ("crash", "killed", "bad-result",
                                                                              "accounting"), record["failure"]
    assert "CUDA" in record["failure"]["message"], record["failure"]
    # NVML lists the run's own runner on its GPU while it lives (busy_mode "assigned-runner"): it is the run's,
    # never another process sharing the GPU; only the run's GPU is watched.
    watched = record["interference"]["gpu"]
    assert watched["status"] == "ok" and watched["gpu_indices"] == [2] and watched["processes"] == [], watched
    assert _record_of(out, ORT)["interference"]["gpu"]["status"] == "not observed"  # a CPU run is given no GPU


def test_only_the_given_gpu_draws_load_while_its_runner_lives(four_gpus):
    host, done, out = four_gpus
    record = _record_of(out, TORCH_CUDA)
    truth = host.truth()
    busy = {i: truth.busy_intervals(done.pid, i) for i in range(4)}
    assert busy[0] == busy[1] == busy[3] == [] and len(busy[2]) == 1, busy
    samples = pl.read_parquet(out / record["samples_path"]).filter(pl.col("domain") == "gpu")
    lived = (samples["t_ns"].min(), samples["t_ns"].max())  # sampled for the runner's whole life
    (began, ended) = busy[2][0]
    assert lived[0] <= began <= lived[1], (lived, busy[2])
    for i, gpu in enumerate(host.gpus):
        power = samples.filter(pl.col("channel") == f"gpu-{i}")
        assert power.height > 10
        if i == 2:
            loaded = power.filter(pl.col("power_w") > gpu.idle_w + 0.5 * (gpu.load_w - gpu.idle_w))
            assert loaded.height >= 0.5 * power.height, power["power_w"].to_list()
            # A sample is stamped mid-read, a few ms from the simulator's clock: 10 ms of slack.
            assert loaded["t_ns"].min() >= began - 10_000_000 and loaded["t_ns"].max() <= ended + 10_000_000
        else:
            assert power["power_w"].max() <= gpu.idle_w + gpu.wobble_w + 0.5, (i, power["power_w"].max())


def test_a_cpu_runtime_counts_no_gpu_but_keeps_the_nodes(four_gpus):
    host, done, out = four_gpus
    record = _record_of(out, ORT)
    assert record["status"] == "ok", record["failure"]
    assert record["gpus"] == [] and record["launch"]["cuda_visible_devices"] == ""
    channels = record["energy"]["channels"]
    assert sorted(c for c in channels if c.startswith("gpu-")) == ["gpu-0", "gpu-1", "gpu-2", "gpu-3"]
    start, end = window(record)
    truth = host.truth()
    for i, gpu in enumerate(host.gpus):
        c = channels[f"gpu-{i}"]
        assert c["assigned"] is False and c["status"] == "ok"
        assert abs(c["raw_j"] - truth.energy_between(done.pid, i, start, end)) <= counter_tolerance_j(gpu)
    row = runs_table(out)[record["run_id"]]
    node = sum(row[f"energy_gpu-{i}_j"] for i in range(4))
    assert row["gpu_energy_j"] is None
    assert row["other_gpus_energy_j"] == pytest.approx(node) and row["node_gpu_energy_j"] == pytest.approx(node)


# --- greenrt failing after a runner returned loses no run ----------------------------------------------------------
@pytest.fixture(scope="module")
def accounting_fault(tmp_path_factory):
    folder = tmp_path_factory.mktemp("accounting-fault")
    host = SimHost([SimGpu("NVIDIA H200")]).write(folder / "host")
    config = sweep_config(folder / "accounting.toml", runtimes=[ORT], repetitions=2, min_seconds=1.0)
    faulty = host.env(pythonpath=(ORCHESTRATOR_FAULTS_DIR,), GREENRT_TEST_ORCH_FAULT="accounting")
    done, out = sweep(host, folder, config, rapl=True, env=faulty)
    after_sweep = journal(out)
    report = run_greenrt(["report", str(out)], env=host.env(), timeout=300)
    return host, done, out, after_sweep, report


def test_an_accounting_failure_is_recorded_with_result_samples_and_traceback(accounting_fault):
    _, done, out, records, _ = accounting_fault
    assert done.returncode == 0, done.output
    assert len(records) == 2, done.output
    for record in records:
        assert record["status"] == "failed" and record["failure"]["kind"] == "accounting", record["failure"]
        assert record["result"] is not None and record["result"]["status"] == "ok"
        assert record["samples_path"] and (out / record["samples_path"]).is_file()
        trace = (out / "runs" / record["run_id"] / "accounting-error.txt").read_text()
        assert "Traceback" in trace and "RuntimeError" in trace and "fault-injection" in trace


def test_report_accounts_the_failed_runs_again(accounting_fault):
    host, done, out, before, report = accounting_fault
    assert report.returncode == 0, report.output
    records = journal(out)
    assert len(records) == len(before) + 2
    truth = host.truth()
    for old in before:
        assert f"accounted again: {old['run_id']}" in report.stdout, report.output
        again = latest(out)[old["run_id"]]
        assert again["status"] == "ok" and again["failure"] is None, again["failure"]
        assert again["energy"]["status"] == "ok", again["energy"]
        start, end = window(again)
        gpu = again["energy"]["channels"]["gpu-0"]
        true_j = truth.energy_between(done.pid, 0, start, end)  # the sweep's samples, accounted by the report
        assert abs(gpu["raw_j"] - true_j) <= counter_tolerance_j(host.gpus[0]), (gpu, true_j)
        assert again["energy"]["channels"]["package-0"]["status"] == "ok"
    rows = runs_table(out)
    assert {row["status"] for row in rows.values()} == {"ok"} and all(r["energy_gpu-0_j"] for r in rows.values())


# --- make gpu-check's analysis, on a real sweep of the simulated host -----------------------------------------------
def test_gpu_checks_analysis_of_a_gpu_sampled_sweep(gpu_sweep):
    """bench/gpu_check.py's figures (coverage, counter against power integral), from the samples a real sweep kept."""
    from gpu_check_sweep import analyse_sweep  # bench/ is on the tests' import path (pyproject)

    _, done, out = gpu_sweep
    assert done.returncode == 0, done.output
    analysis = analyse_sweep(out)
    assert len(analysis["runs"]) == 2 and not analysis["notes"], analysis["notes"]
    for run in analysis["runs"]:
        assert set(run["channels"]) == {"gpu-0", "gpu-1"}
        for channel in run["channels"].values():
            coverage = channel["coverage"]
            assert coverage["spanned_fraction"] > 0.9 and 10 < coverage["samples_per_s"] <= 25  # 50 ms sampler
            # The counter difference is the orchestrator's own figure; the 1-second-averaged power, integrated
            # over the same busy window, agrees with it to a few per cent (the simulator's wobble lags by ~0.5 s).
            ratio = channel["counter_vs_power"]
            assert ratio["counter_j"] == pytest.approx(channel["orchestrator_raw_j"], rel=1e-9)
            assert 0.9 < ratio["ratio"] < 1.1, ratio
            assert channel["read_errors"] == 0 and channel["orchestrator_method"] == "counter"


def test_gpu_checks_nvml_facts_read_the_simulated_gpus(h200_host, tmp_path):
    code = ("import json, pynvml; from gpu_check import nvml_facts; "
            "pynvml.nvmlInit(); print(json.dumps(nvml_facts(pynvml))); pynvml.nvmlShutdown()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=h200_host.env(pythonpath=(BENCH,)), cwd=REPO)
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    (gpu,) = facts["gpus"]
    expected = h200_host.gpus[0]
    assert (gpu["name"], gpu["uuid"], gpu["pci_bus_id"]) == (expected.name, expected.uuid, expected.pci_bus_id)
    assert gpu["energy_counter"] and facts["driver"] == "580.95.05"


def test_gpu_check_on_the_simulated_host_finds_nvml_and_stops_in_one_line_for_want_of_cuda(h200_host):
    """The script's preflight against an NVML that answers: only the missing CUDA device is named, no traceback."""
    root = REPO
    # The torch environment `make test` builds (TEST_ENVS), wherever GREENRT_CACHE puts it.
    torch_python = subprocess.run([GREENRT, "env", "python", "torch"], capture_output=True, text=True,
                                  check=True).stdout.strip()
    done = subprocess.run([torch_python, "bench/gpu_check.py"], capture_output=True, text=True, timeout=120,
                          env=h200_host.env(), cwd=root)
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("gpu-check: cannot run on this host: no CUDA device for torch")
    assert "NVML" not in line and "Traceback" not in done.stderr


# --- the generative GPU config -------------------------------------------------------------------------------------
def test_the_generative_gpu_config_plans_every_gpu_runtime_on_a_hopper_host_and_says_why_it_skips(h200_host, tmp_path):
    done = run_greenrt(["plan", "--config", str(REPO / "configs" / "llm-gpu.toml"), "--powercap-root",
                        str(tmp_path / "no-powercap"), "--json"], env=h200_host.env(), cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.output
    plan = json.loads(done.stdout)
    planned = {(r["cell"]["runtime"], r["cell"]["batch_size"], r["cell"]["precision"]) for r in plan["runs"]}
    assert {runtime for runtime, _, _ in planned} == {"torch/transformers/cuda", "onnxruntime-genai/genai-from-hf/cuda",
                                                      "llama.cpp/gguf-from-hf/cuda", "vllm/hf/cuda"}
    assert {("onnxruntime-genai/genai-from-hf/cuda", 64, "int4"), ("vllm/hf/cuda", 64, "fp16"),
            ("llama.cpp/gguf-from-hf/cuda", 1, "int8")} <= planned
    reasons = {(s["cell"]["runtime"], s["cell"]["batch_size"], s["cell"]["precision"]): s["reason"]
               for s in plan["skipped"]}
    # each skip is the runtime's own limit, said once per cell: none is "no GPU"
    assert "batch 64 > 1 is not measured" in reasons[("llama.cpp/gguf-from-hf/cuda", 64, "fp32")]
    assert "is not one of fp16" in reasons[("vllm/hf/cuda", 1, "fp32")]
    assert not any("GPU" in reason for reason in reasons.values()), reasons
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # a dry run writes nothing
