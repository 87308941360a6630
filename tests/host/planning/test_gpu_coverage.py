"""Which CUDA binaries run on which GPU and driver: the cuobjdump parser on real output, the compatibility rules, and
the committed coverage data read from the wheels (runners/cuda_binaries.json).

The fixtures in fixtures/cuobjdump/ are real `cuobjdump --list-elf/--list-ptx` output (nvidia-cuda-cuobjdump 13.5.37)
of the pinned wheels' libraries, cut to the first line of each architecture.
"""
from __future__ import annotations


import pytest

from orchestrator.planning.gpu_support import (driver_refusal, fit, gpu_refusal, jit_note, machine_code_runs,
                                               ptx_runs)
from orchestrator.planning.gpus import GpuDescription
from orchestrator.provisioning.cuda_binaries import built_for_cuda, parse_listing
from runners import cuda_binaries
from runners.cuda_binaries import EnvironmentBinaries, LibraryCode
from testkit.paths import FIXTURES

CUOBJDUMP = FIXTURES / "cuobjdump"


def _listing(name: str) -> dict[str, int]:
    return parse_listing((CUOBJDUMP / name).read_text())


def gpu(name: str, cc: str) -> GpuDescription:
    return GpuDescription(0, name, "GPU-0", "00000000:19:00.0", True, True, 80 * 2**30, cc)


H100 = gpu("NVIDIA H100 80GB HBM3", "9.0")
B200 = gpu("NVIDIA B200", "10.0")
L40S = gpu("NVIDIA L40S", "8.9")
T4 = gpu("Tesla T4", "7.5")
RTX5090 = gpu("NVIDIA GeForce RTX 5090", "12.0")


def test_parser_reads_machine_code_per_architecture_from_real_output():
    assert list(_listing("mxnet-cu117-1.9.1-libmxnet.list-elf.txt")) == ["sm_50", "sm_60", "sm_70", "sm_80", "sm_86"]
    assert list(_listing("onnxruntime-gpu-1.31.1-providers_cuda.list-elf.txt")) == [
        "sm_75", "sm_80", "sm_86", "sm_89", "sm_90a", "sm_120a"]
    assert list(_listing("torch-2.13.0-libtorch_cuda.list-elf.txt")) == [
        "sm_75", "sm_80", "sm_86", "sm_89", "sm_90", "sm_90a", "sm_100", "sm_100a", "sm_103", "sm_120", "sm_120a",
        "sm_121a"]


def test_parser_names_ptx_by_its_virtual_architecture_and_counts_files():
    assert _listing("tensorflow-2.21.0-libtensorflow_framework.list-ptx.txt") == {"compute_90": 2}
    assert _listing("tensorflow-2.21.0-libtensorflow_framework.list-elf.txt") == {
        "sm_60": 1, "sm_70": 1, "sm_80": 1, "sm_89": 1, "sm_90": 1}


def test_parser_reads_no_code_from_cuobjdump_info_lines():
    assert _listing("mxnet-cu117-1.9.1-libmxnet.list-ptx.txt") == {}  # "No PTX file found to extract ..."
    assert _listing("torch-2.13.0-libtorch_cpu.list-elf.txt") == {}  # "... does not contain device code"


def test_build_info_gives_the_cuda_each_wheel_was_built_for():
    assert built_for_cuda("torch/version.py", "__version__ = '2.13.0+cu130'\ncuda: Optional[str] = '13.0'\n") == "13.0"
    assert built_for_cuda("tensorflow/python/platform/build_info.py",
                          "build_info = collections.OrderedDict([('cuda_version', '12.5.1'), ('cudnn_version', '9')])"
                          ) == "12.5.1"
    assert built_for_cuda("mxnet_cu117-1.9.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: mxnet-cu117\n") == "11.7"


@pytest.mark.parametrize("arch, cc, runs", [
    ("sm_86", "8.9", True),  # same major, older minor: binary compatible
    ("sm_86", "8.0", False),  # newer minor than the GPU
    ("sm_86", "9.0", False),  # another major: never
    ("sm_90a", "9.0", True),
    ("sm_90a", "10.0", False),  # arch-specific code runs on exactly that GPU
    ("sm_120a", "12.1", False),
    ("sm_100", "10.3", True),
])
def test_machine_code_runs_within_its_major_version(arch, cc, runs):
    assert machine_code_runs(arch, cc) is runs


@pytest.mark.parametrize("arch, cc, runs", [
    ("compute_90", "9.0", True), ("compute_90", "10.0", True), ("compute_90", "12.0", True),
    ("compute_90", "8.9", False), ("compute_90a", "10.0", False),
])
def test_ptx_runs_on_its_architecture_and_every_newer_one(arch, cc, runs):
    assert ptx_runs(arch, cc) is runs


# --- the committed data, read from the wheels ----------------------------------------------------------------------
def data() -> dict[str, EnvironmentBinaries]:
    return cuda_binaries.load()


def test_committed_coverage_is_what_cuobjdump_showed():
    envs = data()
    assert envs["mxnet"].label == "mxnet-cu117 1.9.1"
    assert [(lib.path, lib.sm, lib.ptx) for lib in envs["mxnet"].libraries] == [
        ("mxnet/libmxnet.so", ("sm_50", "sm_60", "sm_70", "sm_80", "sm_86"), ())]
    tf = envs["tensorflow"].libraries
    assert all(lib.sm == ("sm_60", "sm_70", "sm_80", "sm_89", "sm_90") and lib.ptx == ("compute_90",) for lib in tf)
    assert envs["onnxruntime-cuda"].libraries[0].sm == ("sm_75", "sm_80", "sm_86", "sm_89", "sm_90a", "sm_120a")
    assert "sm_90" in envs["torch"].libraries[0].sm and not envs["torch"].libraries[0].ptx
    assert (envs["torch"].cuda_runtime, envs["tensorflow"].cuda_runtime, envs["mxnet"].cuda_runtime) == (
        "13.0.1", "12.9.1", "11.7.1")


def test_mxnet_cu117_cannot_run_on_hopper_and_says_why():
    refusal = fit(data()["mxnet"], H100, "13.0").refusal
    assert refusal == ("mxnet-cu117 1.9.1 has machine code for sm_50, sm_60, sm_70, sm_80, sm_86 and no PTX; "
                       "this GPU (gpu-0 NVIDIA H100 80GB HBM3) is sm_90")
    ada = fit(data()["mxnet"], L40S, "13.0")  # Ada (8.9) runs sm_86 machine code
    assert ada.refusal is None and ada.jit == ()


def test_tensorflow_has_hopper_machine_code_and_runs_blackwell_from_ptx():
    tf = data()["tensorflow"]
    assert fit(tf, H100, "12.4").refusal is None and fit(tf, H100, "12.4").jit == ()
    assert fit(tf, B200, "13.0").jit == ("compute_90",)
    assert "JIT-compiles its compute_90 PTX" in (jit_note(tf, [B200], "13.0") or "")
    assert jit_note(tf, [H100], "13.0") is None


def test_ptx_newer_than_the_driver_is_refused():
    tf = data()["tensorflow"]  # its PTX is ISA 8.3: CUDA 12.3
    refusal = fit(tf, B200, "12.2").refusal
    assert refusal and "PTX of CUDA 12.3, which this driver (CUDA 12.2) cannot JIT-compile" in refusal
    assert fit(tf, B200, "12.3").refusal is None


def test_onnxruntime_gpu_has_no_code_for_b200():
    ort = data()["onnxruntime-cuda"]
    assert fit(ort, H100, "13.0").refusal is None  # sm_90a is exactly Hopper
    assert fit(ort, RTX5090, "13.0").refusal is None  # sm_120a is exactly 12.0
    assert "this GPU (gpu-0 NVIDIA B200) is sm_100" in (fit(ort, B200, "13.0").refusal or "")


def test_torch_runs_on_turing_although_its_linalg_library_starts_at_sm_80():
    torch = data()["torch"]
    assert [lib.path for lib in torch.optional] == ["torch/lib/libtorch_cuda_linalg.so", "torch/lib/libtorch_nvshmem.so"]
    assert fit(torch, T4, "13.0").refusal is None


def test_cuda_13_images_need_the_580_driver_and_say_how_to_get_there():
    envs = data()
    refusal = driver_refusal(envs["torch"], "550.54.15", "12.4")
    assert refusal and "needs a driver of the 580 branch or newer" in refusal
    assert "upgrade the driver to 580 or newer" in refusal and "driver 550.54.15 supports CUDA 12.4" in refusal
    assert driver_refusal(envs["onnxruntime-cuda"], "550.54.15", "12.4")
    assert driver_refusal(envs["tensorflow"], "550.54.15", "12.4") is None  # CUDA 12.9 under minor-version compat
    assert driver_refusal(envs["mxnet"], "550.54.15", "12.4") is None
    assert driver_refusal(envs["tensorflow"], "470.256.02", "11.4")  # CUDA 12 needs 525.60.13
    assert all(driver_refusal(e, "580.95.05", "13.0") is None for e in envs.values())


def test_gpu_refusal_checks_the_driver_first_and_knows_nothing_without_data():
    torch = data()["torch"]
    assert "580" in (gpu_refusal(torch, [H100], "550.54.15", "12.4") or "")
    assert gpu_refusal(None, [H100], "550.54.15", "12.4") is None
    assert gpu_refusal(torch, [gpu("unknown", None)], None, None) is None  # NVML said nothing: nothing refused


def test_a_library_without_ptx_isa_falls_back_to_the_toolkit_it_was_built_with():
    env = EnvironmentBinaries("x", "pkg", "1", "12.8", "nvidia/cuda:12.8.0-runtime", "12.8",
                              (LibraryCode("lib.so", ("sm_80",), ("compute_80",)),))
    assert "PTX of CUDA 12.8" in (fit(env, H100, "12.4").refusal or "")


def test_the_planner_skips_what_the_host_cannot_run_and_keeps_the_rest():
    from orchestrator.planning.config import parse_config
    from orchestrator.planning.planner import HostCapabilities, plan_sweep

    config = parse_config({"name": "c", "models": ["mobilenet_v2"], "batch_sizes": [1],
                           "runtimes": ["mxnet/native/cuda", "onnxruntime/onnx-from-mxnet/cuda", "torch/native/cuda",
                                        "tensorflow/native/cuda", "mxnet/native/cpu"]})
    host = HostCapabilities(gpus=(H100,), driver_version="550.54.15", cuda_driver_version="12.4")
    plan = plan_sweep(config, host)
    skipped = {s.cell.runtime: s.reason for s in plan.skipped}
    assert {r.cell.runtime for r in plan.runs} == {"tensorflow/native/cuda", "mxnet/native/cpu"}
    assert skipped["mxnet/native/cuda"].endswith("this GPU (gpu-0 NVIDIA H100 80GB HBM3) is sm_90")
    assert "580" in skipped["torch/native/cuda"] and "580" in skipped["onnxruntime/onnx-from-mxnet/cuda"]
    current = plan_sweep(config, HostCapabilities(gpus=(H100,), driver_version="580.95.05", cuda_driver_version="13.0"))
    assert {s.cell.runtime for s in current.skipped} == {"mxnet/native/cuda"}
