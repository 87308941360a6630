"""Planning: the matrix expanded, every unrunnable cell explained, a seeded and interleaved order."""
from collections import Counter

from orchestrator.planning.config import parse_config
from orchestrator.planning.gpus import GpuDescription
from orchestrator.planning.planner import HostCapabilities, Plan, plan_sweep

CPU_HOST = HostCapabilities(gpu_reason="NVML library not found (no NVIDIA driver on this host)")
GPU_HOST = HostCapabilities(gpus=(GpuDescription(0, "NVIDIA H200", "GPU-0", "00000000:19:00.0", True, True),))


def config(**change):
    base = {"name": "t", "models": ["resnet50", "mobilenet_v2"], "batch_sizes": [1, 64],
            "runtimes": ["torch/native/cpu", "onnxruntime/onnx-from-torch/cpu"], "repetitions": 3, "seed": 7}
    return parse_config({**base, **change})


def test_expansion_covers_every_cell_once_per_repetition():
    plan = plan_sweep(config(), CPU_HOST)
    assert len(plan.runs) == 2 * 2 * 2 * 3
    per_cell = Counter(run.cell for run in plan.runs)
    assert set(per_cell.values()) == {3}
    assert [run.index for run in plan.runs] == list(range(len(plan.runs)))
    assert len({run.run_id for run in plan.runs}) == len(plan.runs)
    assert not plan.skipped


def test_each_repetition_is_a_complete_block_in_its_own_order():
    plan = plan_sweep(config(), CPU_HOST)
    blocks = [[run.cell for run in plan.runs if run.repetition == r] for r in range(3)]
    assert all(set(block) == set(blocks[0]) for block in blocks)
    assert all(run.repetition == i // 8 for i, run in enumerate(plan.runs))
    assert blocks[0] != blocks[1] or blocks[1] != blocks[2]  # shuffled per repetition, not one fixed order


def test_order_is_reproducible_from_the_seed():
    assert plan_sweep(config(), CPU_HOST).runs == plan_sweep(config(), CPU_HOST).runs
    assert plan_sweep(config(), CPU_HOST).runs != plan_sweep(config(seed=8), CPU_HOST).runs


def test_gpu_providers_are_skipped_on_a_cpu_host_with_the_reason():
    plan = plan_sweep(config(runtimes=["torch/native/cuda", "onnxruntime/onnx-from-torch/tensorrt", "torch/native/cpu"],
                             repetitions=1), CPU_HOST)
    assert {run.cell.runtime for run in plan.runs} == {"torch/native/cpu"}
    reasons = {s.cell.runtime: s.reason for s in plan.skipped}
    assert reasons["torch/native/cuda"] == ("provider cuda needs an NVIDIA GPU: "
                                            "NVML library not found (no NVIDIA driver on this host)")
    assert reasons["onnxruntime/onnx-from-torch/tensorrt"].startswith("provider tensorrt needs an NVIDIA GPU")
    assert len(plan.skipped) == 2 * 2 * 2


def test_the_studys_matrix_is_fully_planned_on_a_gpu_host():
    from orchestrator import paths
    from orchestrator.planning.config import load_config

    study = load_config(paths.PROJECT_ROOT / "configs/study.toml")
    plan = plan_sweep(study, GPU_HOST)
    assert not plan.skipped
    assert len(plan.runs) == 3 * 2 * 9 * 10


def test_a_runtime_without_a_runner_or_exporter_gets_its_reason():
    from orchestrator.planning.runtimes import parse_runtime

    only_torch = frozenset({"torch", "onnxruntime"})
    assert parse_runtime("tensorflow/native/cuda").not_implemented_reason(only_torch, frozenset({"torch"})) == \
        "no tensorflow runner in this version of greenrt"
    assert parse_runtime("onnxruntime/onnx-from-mxnet/cpu").not_implemented_reason(only_torch, frozenset({"torch"})) \
        == "no ONNX export from mxnet in this version of greenrt"
    assert parse_runtime("onnxruntime/onnx-from-mxnet/cpu").not_implemented_reason() is None


def test_fp16_only_on_gpu_providers():
    plan = plan_sweep(config(runtimes=["torch/native/cpu", "torch/native/cuda"], precisions=["fp32", "fp16"],
                             repetitions=1), GPU_HOST)
    fp16 = [run.cell for run in plan.runs if run.cell.precision == "fp16"]
    assert fp16 and all(c.runtime == "torch/native/cuda" for c in fp16)
    assert all(s.reason.startswith("fp16 is measured on GPU providers only") for s in plan.skipped)


def test_plan_round_trips_through_json():
    plan = plan_sweep(config(runtimes=["torch/native/cpu", "torch/native/cuda"]), CPU_HOST)
    assert Plan.from_dict(plan.to_dict()) == plan


def test_tf32_cells_are_skipped_on_gpus_older_than_ampere_and_planned_on_hopper():
    config = parse_config({"name": "t", "models": ["mobilenet_v2"], "batch_sizes": [1], "precisions": ["tf32"],
                           "runtimes": ["onnxruntime/onnx-from-torch/cuda"]})
    turing = HostCapabilities(gpus=(GpuDescription(0, "Tesla T4", "GPU-0", None, True, False,
                                                   compute_capability="7.5"),))
    hopper = HostCapabilities(gpus=(GpuDescription(0, "NVIDIA H100", "GPU-0", None, True, True,
                                                   compute_capability="9.0", ),))
    skipped = plan_sweep(config, turing).skipped
    assert [s.reason for s in skipped] == [
        "tf32 needs a GPU of compute capability 8.0 (Ampere) or newer; this host has Tesla T4 (7.5)"]
    assert not plan_sweep(config, hopper).skipped and len(plan_sweep(config, hopper).runs) == 1
