"""The TorchScript and AOTInductor exports (models/torch_artifacts.py) and their Python client."""
from __future__ import annotations

import json
import zipfile

import torch

from cpp_client_helpers import MODEL, make_request, run_client
from models.torch_artifacts import ARTIFACT_METADATA_KEY, export_torchscript, load_aoti
from runners.protocol import ExportRequest


def test_the_artifacts_carry_the_registry_names_for_clients_without_it(artifacts):
    expected = {"model": MODEL, "inputs": ["pixel_values"], "outputs": ["logits"]}
    extra = {ARTIFACT_METADATA_KEY: ""}
    torch.jit.load(str(artifacts["torchscript"]), _extra_files=extra)
    assert json.loads(extra[ARTIFACT_METADATA_KEY]) == expected
    metadata = load_aoti(artifacts["aoti"]).get_metadata()
    assert json.loads(metadata[ARTIFACT_METADATA_KEY]) == expected
    assert zipfile.is_zipfile(artifacts["aoti"])


def test_an_opset_is_refused_for_a_torchscript_export(tmp_path):
    out = tmp_path / "m.pt"
    result = export_torchscript(ExportRequest(framework="torch", model=MODEL, output_path=str(out), opset=17,
                                              target="torchscript", result_path=str(tmp_path / "r.json")))
    assert result.status == "error" and result.error.kind == "bad-request" and not out.exists()


def test_the_python_client_needs_an_artifact(artifacts, inputs_index, tmp_path):
    request = make_request(tmp_path, "torchscript", "python", artifacts, inputs_index, artifact_path=None)
    answer = run_client(tmp_path, "python", request)
    assert answer.returncode == 1 and answer.result["error"]["kind"] == "bad-request"
    assert "artifact_path" in answer.result["error"]["message"]
