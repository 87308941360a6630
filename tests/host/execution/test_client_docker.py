"""The client languages through the Docker launcher (issue 25): the onnxruntime-node image (CPU flavor: Node.js and
its peer Python client) and the torch CPU image (which builds the C++ runner) run a sweep of @python, @node,
torch/torchscript/cpu and @cpp, and every run is as the local launcher's (tests/host/execution/test_client_sweep.py).
"""
from __future__ import annotations

import json

import pytest

from orchestrator.provisioning.base_image import DEFAULT_TAG
from testkit.client_sweeps import check_client_sweep, client_sweep
from testkit.docker_helpers import assert_no_leftovers, engine_with_cpu_images, pip_find_links

pytestmark = [pytest.mark.docker, pytest.mark.root, pytest.mark.process]

NODE_IMAGE = "onnxruntime-node"


@pytest.fixture(scope="module")
def engine():
    client, images = engine_with_cpu_images()  # torch (with the C++ runner) and onnxruntime, CPU flavors
    state = images.state(NODE_IMAGE, "cpu")
    if state.state != "ready":
        images.build(NODE_IMAGE, base_image=DEFAULT_TAG, flavor="cpu", wheelhouses=pip_find_links())
    yield client, images
    assert_no_leftovers(client)


def test_the_client_images_run_a_sweep_with_the_same_outputs_as_the_python_clients(engine, tmp_path):
    done, out = client_sweep(tmp_path, "docker")
    check_client_sweep(done, out, "docker")
    for line in (out / "runs.jsonl").read_text().splitlines():
        record = json.loads(line)
        launch = record["launch"]
        assert (launch["image_flavor"], launch["container_runtime"]) == ("cpu", "default")
        assert launch["image_reference"] == f"greenrt/{record['environment']}:cpu"
        assert 0 < launch["startup_s"] < launch["start_to_first_inference_s"] < launch["seconds"]
    assert_no_leftovers(engine[0])
