"""The Docker launcher against a real engine: a sweep through containers of the CPU images, and how a container
that is refused, fails, hangs or runs out of memory is reported and cleaned up."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from testkit.docker_helpers import assert_no_leftovers, engine_with_cpu_images
from orchestrator.provisioning.images import RUNNER_UID
from orchestrator.execution.launchers.docker import RUN_LABEL, DockerLauncher
from orchestrator.execution.run import classify_outcome
from orchestrator.planning.gpus import GpuDescription
from testkit.powercap import make_powercap_tree
from runners.protocol import Budget, RunRequest, to_dict, write_json_atomic
from testkit.sweep_helpers import PACKAGE_W, greenrt, steady_draw, write_config

pytestmark = [pytest.mark.docker, pytest.mark.root]


@pytest.fixture(scope="module")
def engine():
    client, images = engine_with_cpu_images()
    yield client, images
    assert_no_leftovers(client)


@pytest.fixture(scope="module")
def both_sweeps(engine, tmp_path_factory):
    """The same small sweep through the Docker launcher and through the local launcher, on one synthetic RAPL tree."""
    tmp = tmp_path_factory.mktemp("docker-sweep")
    tree = make_powercap_tree(tmp / "powercap", packages=1, dram=True)
    config = write_config(tmp / "e2e.toml", batch_sizes="[1]")
    with steady_draw(tree):
        done = {launcher: greenrt("sweep", "--config", str(config), "--out", str(tmp / launcher), "--powercap-root",
                                  str(tree.root), launcher=launcher)
                for launcher in ("docker", "local")}
    return done, tmp


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]


def test_a_sweep_runs_through_containers_with_energy_and_fidelity(both_sweeps, engine):
    done, tmp = both_sweeps
    assert done["docker"].returncode == 0, done["docker"].stdout + done["docker"].stderr
    assert "launcher: docker" in done["docker"].stdout
    runs = pl.read_parquet(tmp / "docker/tables/runs.parquet")
    assert sorted(runs["runtime"]) == ["onnxruntime/onnx-from-torch/cpu", "torch/native/cpu"]
    assert runs["status"].to_list() == ["ok", "ok"] and set(runs["launcher"]) == {"docker"}
    for row in runs.iter_rows(named=True):
        # The runner's window stamps are on the host's clock: the host sampler's counters integrate over them.
        assert row["cpu_energy_j"] == pytest.approx(PACKAGE_W * row["window_s"], rel=0.1)
        assert row["energy_status"] == "ok"
    ort = runs.filter(pl.col("framework") == "onnxruntime").row(0, named=True)
    assert ort["fidelity_faithful"] is True and ort["fidelity_max_abs_error"] < 1e-3
    for record in _records(tmp / "docker"):
        launch = record["launch"]
        assert launch["container"].startswith("greenrt-") and launch["image"].startswith("sha256:")
        assert len(launch["container_id"]) == 64  # the engine's full id, as the container's cgroup names it
        # The container's processes are the run's own, found by that cgroup: excluded beside greenrt itself.
        assert len(record["interference"]["excluded_pids"]) >= 2, record["interference"]
        # A CPU run goes to the CPU build, under the engine's default runtime, and says so.
        assert (launch["image_flavor"], launch["container_runtime"]) == ("cpu", "default")
        assert launch["image_reference"] == f"greenrt/{record['runtime'].split('/')[0]}:cpu"
        # Start-up is measured and lies before the first inference, hence outside the measured window.
        assert 0 < launch["startup_s"] < launch["start_to_first_inference_s"] < launch["seconds"]
        assert record["result"]["first_inference_ns"] <= record["result"]["window_start_ns"]
    assert_no_leftovers(engine[0])


def _shape(value):
    """The keys of a record, recursively: what a reader of the journal relies on."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return None


def test_docker_records_have_the_local_launchers_shape(both_sweeps):
    done, tmp = both_sweeps
    assert done["local"].returncode == 0, done["local"].stdout + done["local"].stderr
    docker = {r["runtime"]: r for r in _records(tmp / "docker")}
    local = {r["runtime"]: r for r in _records(tmp / "local")}
    assert docker.keys() == local.keys()
    for runtime in docker:
        d, lo = docker[runtime], local[runtime]
        # Only how the runner was started differs: a container and its image, or an interpreter; and how it was
        # handed GPUs: a device request ("gpus") or CUDA_VISIBLE_DEVICES ("" for a CPU runtime).
        d_launch, lo_launch = d.pop("launch"), lo.pop("launch")
        image_facts = {"image", "image_reference", "image_flavor", "container_runtime"}
        assert set(d_launch) - {"container", "container_id", "gpus", *image_facts} == \
            set(lo_launch) - {"python", "cuda_visible_devices"}
        assert d_launch["gpus"] == "" and lo_launch["cuda_visible_devices"] == ""
        assert _shape(d) == _shape(lo), runtime
        assert (d["launcher"], lo["launcher"]) == ("docker", "local")
    docker_columns = pl.read_parquet(tmp / "docker/tables/runs.parquet").columns
    assert docker_columns == pl.read_parquet(tmp / "local/tables/runs.parquet").columns


def test_the_runner_writes_as_an_unprivileged_user(both_sweeps):
    _, tmp = both_sweeps
    result = next((tmp / "docker/runs").glob("*/result.json"))
    expected = RUNNER_UID if os.geteuid() == 0 else os.geteuid()
    assert result.stat().st_uid == expected != 0


def _request(folder: Path, runtime: str = "torch/native/cpu", min_seconds: float = 0.0) -> Path:
    request = RunRequest(run_id="t", runtime=runtime, model="mobilenet_v2", batch_size=1,
                         result_path=str(folder / "result.json"),
                         budget=Budget(warmup_iterations=0, min_iterations=1, min_seconds=min_seconds))
    write_json_atomic(folder / "request.json", to_dict(request))
    return folder / "request.json"


def test_a_gpu_run_is_not_given_a_cpu_build_and_says_which_build_it_needs(engine, tmp_path):
    """The engine's own refusal of a GPU request (no NVIDIA runtime) is tested on a CUDA build:
    test_driverless_preparation.py."""
    client, images = engine
    gpu = GpuDescription(0, "NVIDIA H200", "GPU-0f0e0d0c-0b0a-0908-0706-050403020100", "00000000:19:00.0", True, True)
    outcome = DockerLauncher(images).launch("onnxruntime", ["versions"], workdir=tmp_path, timeout_s=60, env_vars={},
                                            log_path=tmp_path / "log", gpus=(gpu,))
    assert outcome.exit_code is None and not outcome.timed_out
    assert "needs the CUDA build of the onnxruntime image" in outcome.start_error
    assert "`greenrt images build onnxruntime` on an NVIDIA host" in outcome.start_error
    assert classify_outcome(outcome, None, None).kind == "start"
    assert_no_leftovers(client)


def test_a_runner_that_exits_non_zero_is_a_crash_with_its_log(engine, tmp_path):
    client, images = engine
    outcome = DockerLauncher(images).launch("onnxruntime", ["run", "--request", str(tmp_path / "missing.json")],
                                            workdir=tmp_path, timeout_s=60, env_vars={}, log_path=tmp_path / "log")
    assert outcome.exit_code == 2 and not outcome.timed_out and not outcome.start_error
    assert "missing.json" in outcome.log_tail
    failure = classify_outcome(outcome, None, "no readable result")
    assert failure.kind == "crash" and "code 2" in failure.message
    assert_no_leftovers(client)


def test_a_runner_past_its_time_limit_is_killed_and_its_container_removed(engine, tmp_path):
    client, images = engine
    request = _request(tmp_path, min_seconds=3600)
    seen = {}

    def inspect_while_running() -> None:
        for _ in range(200):
            running = client.containers.list(filters={"label": RUN_LABEL}, ignore_removed=True)
            if running:
                seen.update(running[0].attrs)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=inspect_while_running)
    watcher.start()
    outcome = DockerLauncher(images).launch("torch", ["run", "--request", str(request)], workdir=tmp_path,
                                            timeout_s=8, env_vars={"GREENRT_TEST": "1"}, log_path=tmp_path / "log")
    watcher.join()
    assert outcome.timed_out and outcome.exit_code is None
    assert 8 <= outcome.seconds < 60
    assert classify_outcome(outcome, None, None).kind == "timeout"
    assert_no_leftovers(client)
    # What the container was while it ran: no network, nothing writable but its folder, no privileges.
    host = seen["HostConfig"]
    assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
    assert seen["Config"]["User"] != "" and not seen["Config"]["User"].startswith("0")
    assert "GREENRT_TEST=1" in seen["Config"]["Env"]
    mounts = {m["Destination"]: m["RW"] for m in seen["Mounts"]}
    assert mounts == {str(tmp_path): True}


def test_a_runner_killed_for_memory_is_an_oom_failure(engine, tmp_path):
    client, images = engine
    request = _request(tmp_path)
    outcome = DockerLauncher(images, memory_limit="96m").launch(
        "torch", ["run", "--request", str(request)], workdir=tmp_path, timeout_s=120, env_vars={},
        log_path=tmp_path / "log")
    assert outcome.oom_killed, (outcome.exit_code, outcome.log_tail)
    assert classify_outcome(outcome, None, None).kind == "oom"
    assert_no_leftovers(client)
