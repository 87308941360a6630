"""Which GPUs one GPU run is given (gpus_per_run, MIG), and how the launchers hand exactly those to it."""
from __future__ import annotations

import pytest

from orchestrator.errors import UserError
from orchestrator.execution.launchers.docker import DockerLauncher
from orchestrator.planning.config import parse_config
from orchestrator.planning.gpus import GpuDescription, all_mig_reason, assign_gpus, gpus_per_run_refusal
from orchestrator.planning.planner import Cell, HostCapabilities, skip_reason

NODE = tuple(GpuDescription(i, "NVIDIA H100 80GB HBM3", f"GPU-{i}{i}", f"00000000:{19 + i}:00.0", True, True,
                            compute_capability="9.0", mig_enabled=False) for i in range(4))


def mig(gpu: GpuDescription) -> GpuDescription:
    return GpuDescription(gpu.index, gpu.name, gpu.uuid, gpu.pci_bus_id, True, True, compute_capability="9.0",
                          mig_enabled=True)


def test_a_run_is_given_the_first_selected_gpu_only():
    assert assign_gpus(NODE) == (NODE[0],)
    assert assign_gpus((NODE[3], NODE[1])) == (NODE[1],)  # NVML order, whatever order --gpus named them in
    assert assign_gpus(NODE, 2) == NODE[:2]


def test_mig_enabled_gpus_are_never_given_to_a_run():
    node = (mig(NODE[0]), NODE[1], mig(NODE[2]), NODE[3])
    assert assign_gpus(node) == (NODE[1],)
    assert assign_gpus(node, 2) == (NODE[1], NODE[3])
    assert all_mig_reason(node) is None
    reason = all_mig_reason((mig(NODE[0]), mig(NODE[2])))
    assert "gpu-0, gpu-2" in reason and "MIG-enabled" in reason and "\n" not in reason


def test_more_gpus_per_run_than_selected_is_refused_naming_the_valid_range():
    assert gpus_per_run_refusal(NODE[:2], 2) is None
    line = gpus_per_run_refusal((NODE[0], mig(NODE[1]), NODE[2]), 3)
    assert "gpus_per_run = 3" in line and "valid: 1..2" in line and "1 more in MIG mode" in line
    assert gpus_per_run_refusal((), 4) is None  # no GPU: the planner skips GPU cells with its own reason


def test_gpu_cells_are_skipped_when_every_gpu_is_mig_and_planned_otherwise():
    cell = Cell("mobilenet_v2", 1, "torch/native/cuda", "fp32")
    host = HostCapabilities(gpus=(mig(NODE[0]), mig(NODE[1])))
    assert "MIG-enabled" in skip_reason(cell, host)
    assert skip_reason(cell, HostCapabilities(gpus=(mig(NODE[0]), NODE[1]))) is None
    assert skip_reason(Cell("mobilenet_v2", 1, "torch/native/cpu", "fp32"), host) is None


def _config(**extra: object) -> dict:
    return {"name": "g", "models": ["mobilenet_v2"], "batch_sizes": [1], "runtimes": ["torch/native/cuda"], **extra}


def test_gpus_per_run_defaults_to_one_and_keeps_older_digests():
    default, explicit = parse_config(_config()), parse_config(_config(gpus_per_run=1))
    assert default.gpus_per_run == 1 and default.digest() == explicit.digest()
    assert parse_config(_config(gpus_per_run=2)).digest() != default.digest()


def test_a_gpus_per_run_below_one_is_refused():
    with pytest.raises(UserError) as refused:
        parse_config(_config(gpus_per_run=0))
    assert "gpus_per_run" in str(refused.value)


def test_the_docker_launcher_requests_exactly_the_runs_gpus_by_uuid():
    assert DockerLauncher._device_requests(None) is None  # a CPU run: no GPU at all
    (request,) = DockerLauncher._device_requests((NODE[2],))
    assert request["DeviceIDs"] == ["GPU-22"] and request["Capabilities"] == [["gpu"]]
    (every,) = DockerLauncher._device_requests(())  # no NVML description: whatever the engine sees
    assert every["Count"] == -1
