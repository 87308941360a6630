"""Exports and reference runs never need a GPU driver, through the Docker launcher against a real engine.

Both flavors of the mxnet image are built FROM the local Debian base. Its CUDA flavor (mxnet-cu117) cannot even
import mxnet here: no driver (libcuda.so.1) and no cuDNN are mounted into a container that asks for no GPU, which
is what happens to every export and reference run on a GPU host under Docker's default runtime. The CUDA build is
the environment's image (greenrt/mxnet:latest, what `make images` gives on an NVIDIA host); the CPU build sits
beside it (greenrt/mxnet:cpu), and the export and the reference run go there.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace

import polars as pl
import pytest

from testkit.docker_helpers import assert_no_leftovers, pip_find_links
from orchestrator.execution.launchers.docker import DockerLauncher
from orchestrator.execution.run import classify_outcome
from orchestrator.planning.gpus import GpuDescription
from orchestrator.provisioning.base_image import DEFAULT_TAG, base_exists, build_base
from orchestrator.provisioning.images import ImageManager, docker_client
from testkit.sweep_helpers import GREENRT, write_config

pytestmark = [pytest.mark.docker, pytest.mark.root]

ONNX_FROM_MXNET = "onnxruntime/onnx-from-mxnet/cpu"


@pytest.fixture(scope="module")
def engine():
    client = docker_client()
    if not base_exists(client, DEFAULT_TAG):
        build_base(client, DEFAULT_TAG)
    images = ImageManager(client)
    # The CUDA flavor's 509 MB mxnet-cu117 wheel is taken from pip's find-links where it is there (PIP_FIND_LINKS).
    for name, flavor, wheels in (("onnxruntime", "cpu", ()), ("mxnet", "cpu", ()),
                                 ("mxnet", "cuda", pip_find_links())):
        if images.state(name, flavor).state != "ready":
            images.build(name, base_image=DEFAULT_TAG, flavor=flavor, wheelhouses=wheels)
    yield client, images
    assert_no_leftovers(client)


def test_both_flavors_coexist_and_the_cuda_build_is_the_environments_image(engine):
    _, images = engine
    cuda, cpu = images.state("mxnet", "cuda"), images.state("mxnet", "cpu")
    assert (cuda.reference, cuda.state, cuda.flavor) == ("greenrt/mxnet:latest", "ready", "cuda")
    assert (cpu.reference, cpu.state, cpu.flavor) == ("greenrt/mxnet:cpu", "ready", "cpu")
    assert cuda.image_id != cpu.image_id
    assert images.state("mxnet").reference == "greenrt/mxnet:latest"


def test_the_cuda_build_cannot_import_mxnet_without_a_driver(engine):
    """The situation the choice exists for: what an export in the CUDA build would meet."""
    client, _ = engine
    container = client.containers.create("greenrt/mxnet:latest", entrypoint=["python", "-c", "import mxnet"],
                                         network_mode="none")
    try:
        container.start()
        exit_code = container.wait(timeout=120)["StatusCode"]
        log = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    assert exit_code != 0
    assert "libcudnn.so.8" in log or "libcuda.so.1" in log, log[-2000:]


def test_an_export_and_a_reference_run_go_to_the_cpu_build_and_succeed(engine, tmp_path):
    client, images = engine
    config = write_config(tmp_path / "c.toml", batch_sizes="[1]", runtimes=f'["{ONNX_FROM_MXNET}", "mxnet/native/cpu"]')
    out, cache = tmp_path / "out", tmp_path / "cache"
    # A cache of its own: an ONNX file exported earlier by the local launcher must not stand in for the export.
    done = subprocess.run([GREENRT, "sweep", "--config", str(config), "--out", str(out), "--powercap-root",
                           str(tmp_path / "none"), "--launcher", "docker"], capture_output=True, text=True,
                          timeout=1800, env={**os.environ, "GREENRT_CACHE": str(cache)})
    assert done.returncode == 0, done.stdout + done.stderr
    runs = pl.read_parquet(out / "tables/runs.parquet")
    assert sorted(runs["status"].to_list()) == ["ok", "ok"], runs.select("runtime", "failure_message").rows()
    onnx = runs.filter(pl.col("runtime") == ONNX_FROM_MXNET).row(0, named=True)
    assert onnx["fidelity_faithful"] is True  # compared with the reference run's outputs
    cpu = images.state("mxnet", "cpu")
    (export_log,) = (cache / "artifacts").glob("mxnet-mobilenet_v2-*/export.log")
    assert export_log.read_text().startswith(f"greenrt: image greenrt/mxnet:cpu (cpu flavor, {cpu.image_id[:19]})")
    (reference_log,) = (cache / "references").glob("mxnet-mobilenet_v2-*/*.log")
    assert reference_log.read_text().startswith("greenrt: image greenrt/mxnet:cpu (cpu flavor")
    records = {r["runtime"]: r for r in map(json.loads, (out / "runs.jsonl").read_text().splitlines())}
    native = records["mxnet/native/cpu"]["launch"]
    assert (native["image"], native["image_reference"], native["image_flavor"], native["container_runtime"]) == (
        cpu.image_id, "greenrt/mxnet:cpu", "cpu", "default")
    assert records[ONNX_FROM_MXNET]["launch"]["image_reference"] == "greenrt/onnxruntime:cpu"
    assert_no_leftovers(client)


def test_without_the_cpu_build_a_driverless_run_is_refused_with_the_remedy(engine, tmp_path):
    """This engine has no NVIDIA runtime: the CUDA build alone cannot serve a run without a GPU."""
    client, images = engine

    class CudaBuildOnly(ImageManager):
        def flavors(self, environment):
            found = super().flavors(environment)
            return {**found, "cpu": replace(found["cpu"], state="absent", image_id=None)}

    outcome = DockerLauncher(CudaBuildOnly(client)).launch("mxnet", ["versions"], workdir=tmp_path, timeout_s=120,
                                                         env_vars={}, log_path=tmp_path / "log")
    assert outcome.exit_code is None and "make cpu-images IMAGES=mxnet" in outcome.start_error
    assert classify_outcome(outcome, None, None).kind == "start"
    assert_no_leftovers(client)


def test_a_gpu_run_gets_the_cuda_build_and_the_engine_without_nvidias_runtime_refuses_it(engine, tmp_path):
    client, images = engine
    gpu = GpuDescription(0, "NVIDIA H200", "GPU-0f0e0d0c-0b0a-0908-0706-050403020100", "00000000:19:00.0", True, True)
    outcome = DockerLauncher(images).launch("mxnet", ["versions"], workdir=tmp_path, timeout_s=60, env_vars={},
                                            log_path=tmp_path / "log", gpus=(gpu,))
    assert outcome.details["image_reference"] == "greenrt/mxnet:latest" and outcome.details["gpus"] == gpu.uuid
    assert "the engine refused to start the container" in outcome.start_error and "gpu" in outcome.start_error
    assert_no_leftovers(client)
