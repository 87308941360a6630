"""The planner's memory estimate per batch, and the refusal (or skip) of batches whose inputs cannot fit."""
import pytest

from orchestrator.errors import UserError
from orchestrator.planning.config import parse_config
from orchestrator.planning.gpus import GpuDescription
from orchestrator.planning.memory import estimate, oversized_reason
from orchestrator.planning.planner import HostCapabilities, plan_sweep


def test_inputs_come_from_the_registry_shapes_and_dtypes():
    assert estimate("resnet50", 64, {}).input_bytes == 64 * 3 * 224 * 224 * 4  # float32 NCHW
    assert estimate("bert-base-uncased", 2, {"seq_len": 128}).input_bytes == 3 * 2 * 128 * 8  # three int64 inputs
    assert estimate("mobilenet_v2", 10**8, {}).input_bytes == 10**8 * 3 * 224 * 224 * 4  # no overflow


def test_activations_grow_with_the_batch_and_bert_with_seq_len_squared():
    small, large = estimate("resnet50", 1, {}), estimate("resnet50", 64, {})
    assert large.activation_bytes == pytest.approx(64 * small.activation_bytes, rel=1e-6) and small.activation_bytes > 0
    short, long = (estimate("bert-base-uncased", 1, {"seq_len": n}).activation_bytes for n in (128, 512))
    assert long == pytest.approx(16 * short, rel=1e-6)


def test_a_batch_is_oversized_only_when_its_inputs_alone_exceed_the_memory():
    e = estimate("resnet50", 64, {})
    assert oversized_reason(e, host_memory_bytes=e.input_bytes) is None
    assert "more than this host's" in oversized_reason(e, host_memory_bytes=e.input_bytes - 1)
    assert "more than the GPU's" in oversized_reason(e, host_memory_bytes=None, gpu_memory_bytes=1 << 20)
    assert oversized_reason(e, host_memory_bytes=None) is None  # unknown memory: nothing refused


def test_the_planner_refuses_or_skips_an_oversized_cell():
    config = parse_config({"name": "m", "models": ["mobilenet_v2"], "batch_sizes": [1, 4096],
                           "runtimes": ["torch/native/cpu"]})
    host = HostCapabilities(memory_bytes=2**30)  # 4096 images of 224x224x3 float32 are 2.3 GiB
    with pytest.raises(UserError) as error:
        plan_sweep(config, host)
    assert str(error.value).count("\n") == 0 and "batch_sizes: 4096 for torch/native/cpu" in str(error.value)
    plan = plan_sweep(config, host, skip_oversized=True)
    assert [r.cell.batch_size for r in plan.runs] == [1]
    assert plan.skipped[0].reason.startswith("oversized: mobilenet_v2 at batch 4096: its inputs alone need 2.3 GiB")


def test_a_gpu_runtime_is_refused_a_batch_larger_than_its_gpus_memory_that_the_host_could_hold():
    small = GpuDescription(0, "NVIDIA T4", "GPU-0", "00000000:19:00.0", True, False, memory_bytes=2**30)
    config = parse_config({"name": "m", "models": ["resnet50"], "batch_sizes": [4096],
                           "runtimes": ["torch/native/cpu", "torch/native/cuda"]})
    plan = plan_sweep(config, HostCapabilities(gpus=(small,), memory_bytes=64 * 2**30), skip_oversized=True)
    assert [r.cell.runtime for r in plan.runs] == ["torch/native/cpu"]  # 2.3 GiB of inputs fit the host's 64
    assert "more than the GPU's 1.0 GiB of memory" in plan.skipped[0].reason
