"""int8 in the plan: where it is measured, why elsewhere not, and what the host's CPU flags decide (unit tier)."""
from __future__ import annotations

import pytest

from orchestrator.planning.config import parse_config
from orchestrator.planning.gpus import GpuDescription
from orchestrator.planning.planner import HostCapabilities, plan_sweep
from runners import runtimes_table
from runners.adapters.contract import check_runtime
from runners.failures import UnsupportedError
from runners.protocol import RunRequest
from runners.runtimes_table import CpuPrecision, cpu_precision_fast, cpu_precision_refusal

ORT_CPU = "onnxruntime/onnx-from-torch/cpu"
NO_VNNI = ("avx", "avx2", "fma", "sse4_2")  # a Haswell-like CPU: int8 runs, without a dot-product instruction
VNNI = (*NO_VNNI, "avx512f", "avx512_vnni")
GPU = (GpuDescription(0, "NVIDIA H200", "GPU-0", "00000000:19:00.0", True, True),)


def _plan(runtimes: list[str], host: HostCapabilities, precisions=("fp32", "int8")):
    config = parse_config({"name": "int8", "models": ["mobilenet_v2"], "batch_sizes": [1], "runtimes": runtimes,
                           "precisions": list(precisions)})
    plan = plan_sweep(config, host)
    return ({(r.cell.runtime, r.cell.precision) for r in plan.runs},
            {(s.cell.runtime, s.cell.precision): s.reason for s in plan.skipped})


def test_int8_is_planned_on_onnx_runtime_cpu_with_or_without_vnni():
    for flags in (NO_VNNI, VNNI, None):
        runs, skipped = _plan([ORT_CPU], HostCapabilities(cpu_flags=flags))
        assert runs == {(ORT_CPU, "fp32"), (ORT_CPU, "int8")} and not skipped, flags


def test_vnni_is_what_the_host_reported():
    assert cpu_precision_fast("int8", NO_VNNI) == {"vnni": False, "vnni_flags": []}
    assert cpu_precision_fast("int8", VNNI) == {"vnni": True, "vnni_flags": ["avx512_vnni"]}
    assert cpu_precision_fast("int8", None)["vnni"] is None  # unknown, not "no"
    assert cpu_precision_fast("fp32", VNNI) == {}


def test_every_cell_int8_cannot_run_is_explained():
    runs, skipped = _plan(["torch/native/cpu", "onnxruntime/onnx-from-torch/cuda", ORT_CPU],
                          HostCapabilities(gpus=GPU, cpu_flags=VNNI))
    assert ("torch/native/cpu", "int8") not in runs
    assert skipped[("torch/native/cpu", "int8")] == "torch/native: precision 'int8' is not one of fp32, fp16, tf32"
    assert skipped[("onnxruntime/onnx-from-torch/cuda", "int8")].startswith(
        "onnxruntime: int8 is measured on cpu and openvino only")
    assert {(ORT_CPU, "int8"), ("onnxruntime/onnx-from-torch/cuda", "fp32")} <= runs


def test_int8_on_a_gpu_provider_is_explained_by_the_precision_even_without_a_gpu():
    _, skipped = _plan(["onnxruntime/onnx-from-torch/tensorrt"], HostCapabilities(), precisions=("int8",))
    assert "int8 is measured on cpu and openvino only" in skipped[("onnxruntime/onnx-from-torch/tensorrt", "int8")]


def test_a_precision_the_cpu_lacks_is_skipped_with_the_flags_it_needs(monkeypatch):
    """The planner reads the host's flags: a precision that needs an instruction (as bf16 does) is skipped on a CPU
    without it, planned on one with it, and planned where the host reported no flags (nothing known missing)."""
    monkeypatch.setitem(runtimes_table.CPU_PRECISIONS, "int8", CpuPrecision(needs=("avx512_vnni", "amx_int8")))
    runs, skipped = _plan([ORT_CPU], HostCapabilities(cpu_flags=NO_VNNI))
    assert runs == {(ORT_CPU, "fp32")}
    assert skipped == {(ORT_CPU, "int8"): "int8 needs a CPU with avx512_vnni or amx_int8; this host's CPU reports "
                                          "none of them (it would be emulated, not measured)"}
    assert _plan([ORT_CPU], HostCapabilities(cpu_flags=VNNI))[0] == {(ORT_CPU, "fp32"), (ORT_CPU, "int8")}
    assert _plan([ORT_CPU], HostCapabilities(cpu_flags=None))[0] == {(ORT_CPU, "fp32"), (ORT_CPU, "int8")}


def test_bf16_needs_avx512_bf16_or_amx():
    assert "bf16 needs a CPU with avx512_bf16 or amx_bf16" in cpu_precision_refusal("bf16", VNNI)
    assert cpu_precision_refusal("bf16", (*VNNI, "amx_bf16")) is None
    assert cpu_precision_refusal("int8", NO_VNNI) is None


@pytest.mark.parametrize("runtime", ["onnxruntime/onnx-from-torch/cuda", "onnxruntime/onnx-from-mxnet/tensorrt"])
def test_the_runner_refuses_int8_on_a_provider_without_it_in_one_line(runtime, tmp_path):
    request = RunRequest(run_id="x", runtime=runtime, model="mobilenet_v2", batch_size=1, precision="int8",
                         result_path=str(tmp_path / "r.json"))
    with pytest.raises(UnsupportedError) as refused:
        check_runtime(request)
    message = str(refused.value)
    assert "\n" not in message and message.startswith("onnxruntime: int8 is measured on cpu and openvino only")
