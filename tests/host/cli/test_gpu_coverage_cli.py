"""plan, sweep and doctor on simulated NVIDIA hosts whose GPUs or driver cannot run some CUDA images: the cells are
explained before anything is launched (runners/cuda_binaries.json, read from the wheels with cuobjdump)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from testkit.nvidia_host import SimGpu, SimHost, SimulatedHost, run_greenrt

pytestmark = pytest.mark.process

MXNET_CUDA = "mxnet/native/cuda"
FROM_MXNET = "onnxruntime/onnx-from-mxnet/cuda"
TORCH_CUDA = "torch/native/cuda"
TF_CUDA = "tensorflow/native/cuda"
FROM_TORCH = "onnxruntime/onnx-from-torch/cuda"
MXNET_ON_HOPPER = ("mxnet/native/cuda: mxnet-cu117 1.9.1 has machine code for sm_50, sm_60, sm_70, sm_80, sm_86 and "
                   "no PTX; this GPU (gpu-0 NVIDIA H100 80GB HBM3) is sm_90")


def config(folder: Path, runtimes: list[str]) -> Path:
    path = folder / "coverage.toml"
    path.write_text(f'name = "coverage"\nmodels = ["mobilenet_v2"]\nbatch_sizes = [1, 64]\n'
                    f'runtimes = {json.dumps(runtimes)}\n')
    return path


def table_rows(text: str) -> dict[str, list[str]]:
    """rich's table rows by their first cell, with the lines a long cell wraps onto joined back."""
    rows: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("│"):
            last = None if not line.startswith(("├", "┃")) else last
            continue
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if cells[0] or last is None:
            last = rows[cells[0]] = cells
        else:
            last[:] = [f"{a} {b}".strip() for a, b in zip(last, cells)]
    return rows


def plan_json(host: SimulatedHost, cfg: Path) -> dict:
    done = run_greenrt(["plan", "--config", str(cfg), "--json", "--powercap-root", str(cfg.parent / "none")],
                       env=host.env(), timeout=120)
    assert done.returncode == 0, done.output
    return json.loads(done.stdout)


def runs_and_skips(plan: dict) -> tuple[set[str], dict[str, set[str]]]:
    skipped: dict[str, set[str]] = {}
    for s in plan["skipped"]:
        skipped.setdefault(s["cell"]["runtime"], set()).add(s["reason"])
    return {r["cell"]["runtime"] for r in plan["runs"]}, skipped


@pytest.fixture(scope="module")
def h100(tmp_path_factory) -> SimulatedHost:
    return SimHost([SimGpu("NVIDIA H100 80GB HBM3")]).write(tmp_path_factory.mktemp("h100"))


def test_hopper_skips_mxnet_native_cuda_with_the_reason_and_keeps_onnx_from_mxnet(h100, tmp_path):
    plan = plan_json(h100, config(tmp_path, [MXNET_CUDA, FROM_MXNET, TORCH_CUDA, TF_CUDA]))
    runs, skipped = runs_and_skips(plan)
    assert runs == {FROM_MXNET, TORCH_CUDA, TF_CUDA} and plan["gpu_notes"] == [], plan["skipped"]
    assert skipped == {MXNET_CUDA: {MXNET_ON_HOPPER}}


def test_a_sweep_on_hopper_never_launches_mxnet_native_cuda(h100, tmp_path):
    out = tmp_path / "out"
    done = run_greenrt(["sweep", "--config", str(config(tmp_path, [MXNET_CUDA])), "--out", str(out), "--launcher",
                        "local", "--powercap-root", str(tmp_path / "none")], env=h100.env(), timeout=300)
    # A sweep left with no run is refused before anything is written, saying why its cell was skipped.
    assert done.returncode != 0 and "Traceback" not in done.output, done.output
    said = (done.stdout + done.stderr).strip().splitlines()
    assert len(said) <= 3 and "plans no run" in said[-1], done.output
    assert MXNET_ON_HOPPER.removeprefix(MXNET_CUDA + ": ") in done.output.replace("\n", " "), done.output
    assert not out.exists(), "a refused sweep wrote its results folder"
    assert h100.truth().busy_intervals(done.pid, 0) == [], "a runner ran on the GPU"


def test_doctor_on_hopper_explains_mxnet_and_reads_the_environments_builds(h100, tmp_path):
    done = run_greenrt(["doctor", "--powercap-root", str(tmp_path / "none")], env=h100.env(), timeout=180)
    assert done.returncode == 0, done.output
    rows = table_rows(done.stdout)
    assert rows[MXNET_CUDA][1] == f"no: {MXNET_ON_HOPPER.removeprefix(MXNET_CUDA + ': ')}", rows[MXNET_CUDA]
    # The tests' torch environment holds the CPU wheel (torch 2.13.0+cpu): a GPU host must not be told that
    # torch/native/cuda runs here from it. Where it is not built yet, nothing is known.
    torch_row = rows[TORCH_CUDA][1]
    assert torch_row.startswith("no: its environment has no CUDA build: torch ") or torch_row == "yes", torch_row
    if torch_row == "yes":
        assert "absent" in rows[TORCH_CUDA][2], rows[TORCH_CUDA]
    assert "driver 580.95.05 (CUDA 13.0) against the CUDA images" in done.stdout, done.output


@pytest.fixture(scope="module")
def old_driver(tmp_path_factory) -> SimulatedHost:
    return SimHost([SimGpu("NVIDIA H100 80GB HBM3")], driver_version="550.54.15",
                   cuda_driver_version=12040).write(tmp_path_factory.mktemp("driver550"))


def test_a_550_driver_skips_the_cuda_13_images_with_the_remedy_and_keeps_tensorflow(old_driver, tmp_path):
    plan = plan_json(old_driver, config(tmp_path, [TORCH_CUDA, FROM_TORCH, TF_CUDA]))
    runs, skipped = runs_and_skips(plan)
    assert runs == {TF_CUDA}, plan["skipped"]  # CUDA 12.9 under minor-version compatibility; sm_90 machine code
    assert set(skipped) == {TORCH_CUDA, FROM_TORCH}
    for runtime, (reason,) in skipped.items():
        assert reason.startswith(f"{runtime}: the "), reason
        assert "needs a driver of the 580 branch or newer" in reason and "driver 550.54.15 supports CUDA 12.4" in reason
        assert "upgrade the driver to 580 or newer" in reason


def test_doctor_compares_a_550_driver_with_each_image(old_driver, tmp_path):
    done = run_greenrt(["doctor", "--powercap-root", str(tmp_path / "none")], env=old_driver.env(), timeout=180)
    assert done.returncode == 0, done.output
    names = {"torch", "tensorflow", "mxnet", "onnxruntime-cuda", "onnxruntime-tensorrt"}
    images = {name: cells for name, cells in table_rows(done.stdout).items() if name in names}
    assert set(images) == names and all("nvidia/cuda:" in cells[2] for cells in images.values()), done.output
    for name in ("torch", "onnxruntime-cuda", "onnxruntime-tensorrt"):
        assert images[name][-1].startswith("no: ") and "upgrade the driver to 580 or newer" in images[name][-1]
    for name in ("tensorflow", "mxnet"):
        assert images[name][-1] == "ok", images[name]
    assert "driver 550.54.15 (CUDA 12.4)" in done.stdout


def test_blackwell_notes_tensorflows_ptx_once_and_skips_onnxruntime_gpu(tmp_path):
    host = SimHost([SimGpu("NVIDIA B200")]).write(tmp_path / "b200")
    cfg = config(tmp_path, [TF_CUDA, "tensorflow/xla/cuda", FROM_TORCH, TORCH_CUDA])
    done = run_greenrt(["plan", "--config", str(cfg), "--powercap-root", str(tmp_path / "none")], env=host.env(),
                       timeout=120)
    assert done.returncode == 0, done.output
    notes = [line for line in done.stdout.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1, done.output  # one per environment, not one per cell
    assert notes[0].startswith(f"note: {TF_CUDA}, tensorflow/xla/cuda: tensorflow 2.21.0 has no machine code for "
                               f"sm_100"), notes
    assert "JIT-compiles its compute_90 PTX" in notes[0]
    plan = plan_json(host, cfg)
    assert [f"note: {n}" for n in plan["gpu_notes"]] == notes
    runs, skipped = runs_and_skips(plan)
    assert runs == {TF_CUDA, "tensorflow/xla/cuda", TORCH_CUDA}
    assert "sm_90a, sm_120a and no PTX; this GPU (gpu-0 NVIDIA B200) is sm_100" in next(iter(skipped[FROM_TORCH]))
