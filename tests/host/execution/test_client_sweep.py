"""A sweep of the client languages through the local launcher (issue 25): ONNX Runtime from Python (@python) and
Node.js (@node) on one ONNX file, PyTorch's TorchScript file from Python and C++ (@cpp), real runners in the
onnxruntime-node and torch environments; every run ok under its suffixed id, and each non-Python client's outputs
the same bytes as its Python client's.

The environments are built by `make test` first (onnxruntime-node with its npm packages; torch, with the C++ runner
by `make cpp-runner`; a sweep builds a missing C++ runner itself).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from testkit.client_sweeps import ORT, TS, check_client_sweep, client_sweep, records

pytestmark = pytest.mark.process


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    return client_sweep(tmp_path_factory.mktemp("client-sweep"), "local")


def test_every_client_runs_ok_with_the_same_outputs_as_its_python_client(local_sweep):
    check_client_sweep(*local_sweep, "local")


def test_a_non_python_runner_reads_the_inputs_file_and_is_started_as_itself(local_sweep):
    _, out = local_sweep
    by_runtime = records(out)
    for runtime in (f"{ORT}@node", f"{TS}@cpp"):
        run_dir = out / "runs" / by_runtime[runtime]["run_id"]
        request = json.loads((run_dir / "request.json").read_text())
        assert request["runtime"] == runtime and Path(request["inputs_path"]).name == "inputs.json"
        assert by_runtime[runtime]["launch"]["command"].endswith(("node", "greenrt-torch-runner"))
    request = json.loads((out / "runs" / by_runtime[TS]["run_id"] / "request.json").read_text())
    assert request["inputs_path"] is None and request["runtime"] == TS
