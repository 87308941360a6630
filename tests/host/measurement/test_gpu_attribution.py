"""Which GPUs a run is given, how its runner is told, and how the node's energy splits between the run and the rest."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest

from orchestrator.measurement.accounting import account_energy
from orchestrator.provisioning.environments import EnvironmentManager
from orchestrator.planning.gpus import GpuDescription, GpuSelectionError, cuda_visible_devices, from_details, select_gpus
from orchestrator.execution.launchers.local import LocalLauncher
from orchestrator.measurement.sampler import SampleSeries
from orchestrator.measurement.sensors.base import Reading, SensorStatus
from orchestrator.results.tables import run_row
from testkit.records import make_record

# NVML's order is PCI bus order; the UUIDs are deliberately not sorted like the indices.
NODE = tuple(GpuDescription(i, "NVIDIA H200", uuid, f"00000000:{bus}:00.0", True, True)
             for i, (uuid, bus) in enumerate([("GPU-d0", "19"), ("GPU-a1", "3b"), ("GPU-c2", "4c"), ("GPU-b3", "5d")]))
S = 1_000_000_000


@pytest.mark.parametrize("spec, chosen", [
    ("all", [0, 1, 2, 3]),
    ("2", [2]),
    ("3,1", [1, 3]),
    ("GPU-c2", [2]),
    ("gpu-C2", [2]),  # UUIDs compare case-insensitively
    ("0000:4c:00.0", [2]),  # lspci's short domain finds NVML's long one
    ("00000000:5D:00.0", [3]),
    ("1, GPU-a1", [1]),  # one GPU named twice is given once
])
def test_gpus_are_chosen_by_nvml_index_uuid_or_pci_bus_id(spec, chosen):
    assert [g.index for g in select_gpus(spec, NODE)] == chosen


@pytest.mark.parametrize("spec", ["4", "GPU-zz", "0000:99:00.0", ","])
def test_a_gpu_the_host_lacks_is_refused_naming_the_valid_ones(spec):
    with pytest.raises(GpuSelectionError) as refused:
        select_gpus(spec, NODE)
    message = str(refused.value)
    assert "\n" not in message and "valid: all" in message
    if spec != ",":
        assert all(g.uuid in message for g in NODE)


def test_runners_are_told_their_gpus_by_uuid_so_cuda_order_cannot_swap_them():
    assert cuda_visible_devices(select_gpus("2,0", NODE)) == "GPU-d0,GPU-c2"
    # Without a UUID (an old binding), the NVML index, which CUDA_DEVICE_ORDER=PCI_BUS_ID makes CUDA's too.
    assert cuda_visible_devices([GpuDescription(1, "Tesla P100", None, None, False, False)]) == "1"


def test_descriptions_survive_host_json():
    details = [{**g.to_dict(), "channel": g.channel} for g in NODE]
    assert from_details(details) == NODE


def _interpreter(tmp_path: Path) -> str:
    script = tmp_path / "python"
    script.write_text('#!/bin/sh\necho "visible=[${CUDA_VISIBLE_DEVICES-unset}] order=[${CUDA_DEVICE_ORDER-unset}]"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@pytest.mark.parametrize("gpus, shown, recorded", [
    ((NODE[2],), "visible=[GPU-c2] order=[PCI_BUS_ID]", "GPU-c2"),
    ((NODE[3], NODE[1]), "visible=[GPU-b3,GPU-a1] order=[PCI_BUS_ID]", "GPU-b3,GPU-a1"),
    (None, "visible=[] ", ""),  # a CPU runtime cannot quietly use a GPU
    ((), "visible=[unset]", None),  # a GPU run, no NVML: CUDA's own view is left as the host has it
])
def test_the_local_launcher_hands_a_runner_only_its_gpus(tmp_path, monkeypatch, gpus, shown, recorded):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    launcher = LocalLauncher(EnvironmentManager(default_interpreter=_interpreter(tmp_path)))
    outcome = launcher.launch("torch", ["run"], workdir=tmp_path, timeout_s=30, env_vars={},
                              log_path=tmp_path / "runner.log", gpus=gpus)
    assert shown in outcome.log_tail
    assert outcome.details.get("cuda_visible_devices") == recorded


def _four_gpu_series(watts: tuple[float, ...], seconds: int = 4) -> SampleSeries:
    series = SampleSeries(channels={g.channel: "gpu" for g in NODE})
    for k in range(seconds * 10 + 1):
        t = k * S // 10
        for g, w in zip(NODE, watts):
            series.append(t, Reading(g.channel, w * t / S, power_w=w, temperature_c=30.0 + g.index + k / 10), "gpu")
    return series


NVML_OK = [SensorStatus("nvml", True, "4 GPU(s)")]


def test_energy_per_inference_counts_the_runs_gpus_and_keeps_the_nodes_others_apart():
    energy = account_energy(_four_gpu_series((100.0, 110.0, 400.0, 120.0)), (1 * S, 3 * S), {}, NVML_OK, (NODE[2],))
    assert [name for name, c in energy.channels.items() if c.assigned] == ["gpu-2"]
    assert energy.channels["gpu-2"].temperature_c.model_dump() == {"start": pytest.approx(33.0),
                                                                  "end": pytest.approx(35.0),
                                                                  "max": pytest.approx(35.0)}
    record = make_record(runtime="torch/native/cuda", channels=energy.channels, batch_size=2, window_s=2.0)
    row = run_row(record)
    assert row["gpu_energy_j"] == pytest.approx(800.0)  # 400 W over the 2 s window, GPU 2 only
    assert row["other_gpus_energy_j"] == pytest.approx((100 + 110 + 120) * 2.0)
    assert row["node_gpu_energy_j"] == pytest.approx((100 + 110 + 400 + 120) * 2.0)
    assert row["total_energy_j"] == pytest.approx(800.0) and row["energy_domains"] == "gpu"
    assert row["j_per_inference"] == pytest.approx(800.0 / (4 * 2))
    assert row["power_gpu-2_w"] == pytest.approx(400.0) and row["temperature_max_gpu-2_c"] == pytest.approx(35.0)
    assert row["gpu_energy_method"] == "counter"


def test_a_run_given_no_gpu_has_no_gpu_figure_and_says_where_the_nodes_went():
    energy = account_energy(_four_gpu_series((100.0,) * 4), (1 * S, 3 * S), {}, NVML_OK, ())
    row = run_row(make_record(channels=energy.channels, window_s=2.0))
    assert row["gpu_energy_j"] is None and row["j_per_inference"] is None
    assert row["other_gpus_energy_j"] == pytest.approx(800.0) == row["node_gpu_energy_j"]
    assert "other_gpus_energy_j" in row["energy_note"]


def test_a_journal_from_before_attribution_counts_every_gpu_as_it_did():
    old = {"gpu-0": {"domain": "gpu", "status": "ok", "raw_j": 5.0, "dynamic_j": 1.0, "method": "counter", "reason": ""},
           "gpu-1": {"domain": "gpu", "status": "ok", "raw_j": 7.0, "dynamic_j": 2.0, "method": "counter", "reason": ""}}
    row = run_row(make_record(channels=old))
    assert row["gpu_energy_j"] == pytest.approx(12.0) and row["other_gpus_energy_j"] is None


def test_a_runs_hottest_reading_is_never_below_the_edge_readings_beside_it():
    # The sample nearest the window's end lies just after it, warmer than anything inside (seen in CI).
    series = SampleSeries(channels={"gpu-0": "gpu"})
    for t, temperature in ((0.9, 48.0), (1.5, 50.0), (2.0, 51.0), (3.05, 52.0)):
        series.append(int(t * S), Reading("gpu-0", 100.0 * t, power_w=100.0, temperature_c=temperature), "gpu")
    energy = account_energy(series, (1 * S, 3 * S), {}, NVML_OK, (NODE[0],))
    assert energy.channels["gpu-0"].temperature_c.model_dump() == {"start": 48.0, "end": 52.0, "max": 52.0}
