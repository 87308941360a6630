"""The openvino image's CPU flavor, built FROM the local Debian base, and a sweep of openvino/onnx-from-torch/cpu
through the Docker launcher (export and reference in the torch image, the run in the openvino image)."""
from __future__ import annotations

import json

import polars as pl
import pytest

from testkit.docker_helpers import assert_no_leftovers, engine_with_cpu_images
from orchestrator.provisioning.base_image import DEFAULT_TAG
from testkit.sweep_helpers import greenrt, write_config

pytestmark = [pytest.mark.docker, pytest.mark.root]

OV = "openvino/onnx-from-torch/cpu"


@pytest.fixture(scope="module")
def engine():
    client, images = engine_with_cpu_images()  # the base, and the torch image the export and reference run in
    state = images.state("openvino")
    if state.state != "ready" or state.flavor != "cpu":
        images.build("openvino", base_image=DEFAULT_TAG, flavor="cpu")
    yield client, images
    assert_no_leftovers(client)


def test_openvino_runs_in_its_cpu_image_and_reproduces_pytorch(engine, tmp_path):
    client, images = engine
    state = images.state("openvino")
    assert state.state == "ready" and state.flavor == "cpu", state.detail
    config = write_config(tmp_path / "c.toml", batch_sizes="[1]", runtimes=f'["{OV}"]')
    out = tmp_path / "out"
    done = greenrt("sweep", "--config", str(config), "--out", str(out), "--powercap-root", str(tmp_path / "none"),
                   launcher="docker")
    assert done.returncode == 0, done.stdout + done.stderr
    runs = pl.read_parquet(out / "tables/runs.parquet")
    assert runs["status"].to_list() == ["ok"], runs.select("runtime", "failure_message").rows()
    assert runs["launcher"].to_list() == ["docker"] and runs["fidelity_faithful"].to_list() == [True]
    (record,) = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert record["launch"]["container"].startswith("greenrt-") and record["launch"]["image"] == state.image_id
    result = record["result"]
    assert result["versions"]["openvino_package"] == "2026.4.1"
    assert result["runtime_facts"]["compiled"]["inference_precision_hint"] == "f32"
    assert result["runtime_facts"]["compile_model_end_ns"] < result["window_start_ns"]
    assert_no_leftovers(client)
