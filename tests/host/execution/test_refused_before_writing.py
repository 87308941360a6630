"""Nothing written before the last check (issue 22, point 3): a sweep that plans no run, the Docker launcher without
an engine or without its image, and a Slurm submission without `sbatch` are refused through the real CLI in at most
3 lines, with no traceback, and the --out folder is absent afterwards (or byte for byte what it was)."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

GREENRT = str(Path(sys.executable).with_name("greenrt"))
PLANS_RUNS = ('name = "w"\nmodels = ["mobilenet_v2"]\nbatch_sizes = [1]\nruntimes = ["torch/native/cpu"]\n'
              '[baseline]\nseconds = 0\n')
# fp16 is measured on GPU providers only, and a CUDA provider needs a GPU: fp16 on the CPU runtime is skipped on
# every host, whatever its GPUs.
PLANS_NONE = ('name = "z"\nmodels = ["mobilenet_v2", "resnet50"]\nbatch_sizes = [1]\nruntimes = ["torch/native/cpu"]\n'
              'precisions = ["fp16"]\n[baseline]\nseconds = 0\n')

pytestmark = pytest.mark.process


def digest(folder: Path) -> str:
    """Every path under the folder and every file's bytes, hashed: equal digests mean nothing was written."""
    if not folder.exists():
        return "absent"
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        h.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def refused(tmp_path: Path, toml: str, *args: str, env: dict | None = None, out_exists: bool = False) -> str:
    """The error text of `greenrt sweep` on this config, asserting the promise: non-zero exit, at most 3 lines, no
    traceback, the --out folder as it was (absent, or unchanged)."""
    config = tmp_path / "sweep.toml"
    config.write_text(toml)
    out = tmp_path / "results"
    if out_exists:
        out.mkdir()
        (out / "notes.txt").write_text("mine\n")
    before = digest(out)
    done = subprocess.run([GREENRT, "sweep", "--config", str(config), "--out", str(out), *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})
    text = done.stdout + done.stderr
    assert done.returncode != 0, text
    assert "Traceback" not in text, text
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 3, text
    assert digest(out) == before, sorted(p.name for p in out.rglob("*"))
    return done.stderr


@pytest.mark.parametrize("out_exists", [False, True])
def test_a_config_that_plans_no_run_is_refused_with_each_reason(tmp_path, out_exists):
    text = refused(tmp_path, PLANS_NONE, "--launcher", "local", out_exists=out_exists)
    assert "plans no run: all 2 cells are skipped" in text
    assert "mobilenet_v2 bs1 torch/native/cpu fp16, resnet50 bs1 torch/native/cpu fp16: fp16 is measured on GPU" in text


def test_a_config_that_plans_no_run_is_refused_before_a_slurm_submission(tmp_path):
    text = refused(tmp_path, PLANS_NONE, "--scheduler", "slurm", "--shards", "2")
    assert "plans no run" in text


def test_the_docker_launcher_without_an_engine_is_refused_before_the_results_folder(tmp_path):
    nowhere = {"DOCKER_HOST": f"unix://{tmp_path / 'no-engine.sock'}"}
    text = refused(tmp_path, PLANS_RUNS, "--launcher", "docker", env=nowhere)
    assert "no Docker engine reachable" in text


def test_a_slurm_submission_without_sbatch_is_refused_before_plan_json(tmp_path):
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    text = refused(tmp_path, PLANS_RUNS, "--scheduler", "slurm", "--shards", "1", env={"PATH": str(empty_bin)})
    assert "sbatch not found" in text


@pytest.mark.docker
def test_the_docker_launcher_without_the_image_is_refused_before_the_results_folder(tmp_path):
    from orchestrator.provisioning.images import ImageManager, docker_client

    images = ImageManager(docker_client(timeout=3))  # the docker tier: no engine is a failure, not a skip
    # The first runtime whose image the tests never build here; litert's export needs tensorflow's image first.
    candidates = [("mxnet", "mxnet/native/cpu"), ("tensorflow", "tensorflow/native/cpu"),
                  ("litert", "litert/tflite-from-tensorflow/cpu")]
    built = {env for env, _ in candidates if images.state(env).state != "absent"}
    usable = [(env, runtime) for env, runtime in candidates
              if env not in built and (env != "litert" or "tensorflow" in built)]
    assert usable, f"every candidate image is built on this engine ({sorted(built)}): no refusal to see"
    absent, runtime = usable[0]
    text = refused(tmp_path, PLANS_RUNS.replace("torch/native/cpu", runtime), "--launcher", "docker")
    assert f"no image of {absent}" in text and "greenrt images build" in text
