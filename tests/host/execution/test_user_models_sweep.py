"""A user's own models through real sweeps on the local launcher: files made inside the test (an ONNX graph with
onnx's helper API, a small CNN exported to ONNX and to .pt2 in the torch environment, a two-layer BERT from a
config.json, a small Keras model saved as .keras in the tensorflow environment), each swept across every CPU runtime
it can run, with fidelity filled for every row compared with a reference.

Needs the torch, tensorflow, onnxruntime, onnxruntime-openvino and openvino environments (built by `make test`).
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from testkit.onnx_models import onnx_helper_model
from testkit.sweep_helpers import GREENRT, greenrt

pytestmark = pytest.mark.process

TORCH_MODELS = """
import json, sys, torch
from torch import nn
class CNN(nn.Module):
    def __init__(self):
        super().__init__(); self.conv = nn.Conv2d(3, 8, 3, padding=1); self.head = nn.Linear(8, 10)
    def forward(self, image):
        return self.head(torch.relu(self.conv(image)).mean((2, 3)))
torch.manual_seed(0)
cnn = CNN().eval()
example = torch.randn(2, 3, 16, 16)
program = torch.export.export(cnn, (example,), dynamic_shapes={"image": {0: torch.export.Dim("batch")}})
torch.export.save(program, "cnn.pt2")
torch.onnx.export(cnn, (example,), "cnn.onnx", dynamo=False, input_names=["image"], output_names=["scores"],
                  dynamic_axes={"image": {0: "n"}, "scores": {0: "n"}})
json.dump({"model_type": "bert", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2,
           "intermediate_size": 128, "vocab_size": 1000, "max_position_embeddings": 64}, open("config.json", "w"))
"""

KERAS_MODEL = """
import keras
keras.utils.set_random_seed(0)
image = keras.Input((12, 12, 3), name="image")
x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(image))
keras.Model(image, keras.layers.Dense(5, name="scores")(x)).save("small.keras")
"""


def env_python(env: str) -> str:
    done = subprocess.run([GREENRT, "env", "python", env], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def build_in(env: str, script: str, folder: Path) -> None:
    done = subprocess.run([env_python(env), "-c", script], cwd=folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def sweep(folder: Path, body: str) -> dict[tuple[str, str], dict]:
    config = folder / "sweep.toml"
    config.write_text('batch_sizes = [2]\nseed = 3\n' + body + '\n[warmup]\niterations = 1\n[measure]\n'
                      'min_iterations = 3\n[baseline]\nseconds = 0\n')
    out = folder / "results"
    done = subprocess.run([GREENRT, "sweep", "--config", str(config), "--out", str(out), "--launcher", "local",
                           "--powercap-root", str(folder / "none")], cwd=folder, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {(r["model"], r["runtime"]): r for r in map(json.loads, (out / "runs.jsonl").read_text().splitlines())}


def assert_faithful(record: dict) -> None:
    assert record["status"] == "ok", record["failure"]
    assert record["fidelity"]["status"] == "ok" and record["fidelity"]["faithful"] is True, record["fidelity"]


def assert_provenance(record: dict, folder: Path, file: str, fmt: str) -> None:
    facts = record["result"]["runtime_facts"]["user_model"]
    data = (folder / file).read_bytes()
    import hashlib

    assert facts["file"] == str((folder / file).resolve()) and facts["format"] == fmt
    assert facts["size_bytes"] == len(data) and facts["sha256"] == hashlib.sha256(data).hexdigest()
    assert facts["loader"]


def test_onnx_files_on_every_onnx_runtime_faithful_to_onnx_runtime_cpu(tmp_path):
    onnx_helper_model(tmp_path / "tiny.onnx")
    build_in("torch", TORCH_MODELS, tmp_path)
    runtimes = ["onnxruntime/onnx/cpu", "onnxruntime/onnx/openvino", "openvino/onnx/cpu", "torch/native/cpu"]
    records = sweep(tmp_path, f'name = "user-onnx"\nmodels = ["tiny", "cnn-onnx"]\nruntimes = {json.dumps(runtimes)}\n'
                              '[user_models.tiny]\nonnx = "tiny.onnx"\n[user_models.cnn-onnx]\nonnx = "cnn.onnx"\n'
                              'inputs = [{name = "image", shape = ["batch", 3, 16, 16], dtype = "float32"}]\n')
    for model, file in (("tiny", "tiny.onnx"), ("cnn-onnx", "cnn.onnx")):
        assert records[(model, "onnxruntime/onnx/cpu")]["status"] == "ok"  # the reference itself
        for runtime in runtimes[1:3]:
            assert_faithful(records[(model, runtime)])
            assert_provenance(records[(model, runtime)], tmp_path, file, "onnx")
        assert (model, "torch/native/cpu") not in records
    plan = json.loads((tmp_path / "results/plan.json").read_text())
    reasons = {(s["cell"]["model"], s["cell"]["runtime"]): s["reason"] for s in plan["skipped"]}
    assert "is a onnx model, which runs on onnxruntime/onnx, openvino/onnx" in reasons[("tiny", "torch/native/cpu")]
    report = (tmp_path / "results/report/report.md").read_text()
    assert "tiny" in report
    # The report shows each user model's file and input spec (the batch axis first).
    assert "User models: file, loader and input spec" in report
    spec = next(line for line in report.splitlines() if line.startswith("| cnn-onnx | onnx |"))
    assert "image float32 [batch, 3, 16, 16]" in spec and hashlib.sha256((tmp_path / "cnn.onnx").read_bytes()).hexdigest() in spec


def test_torch_program_and_hf_bert_on_torch_and_onnx_from_torch(tmp_path):
    build_in("torch", TORCH_MODELS, tmp_path)
    # Every CPU runtime a torch program can run (the converted and compiled ones compared with torch/native/cpu),
    # and one it cannot (skipped with the reason).
    runtimes = ["torch/native/cpu", "onnxruntime/onnx-from-torch/cpu", "openvino/onnx-from-torch/cpu",
                "onnxruntime/onnx-from-torch/openvino", "torch/inductor/cpu", "tensorflow/native/cpu"]
    records = sweep(tmp_path, f'name = "user-torch"\nmodels = ["cnn", "bert2"]\nruntimes = {json.dumps(runtimes)}\n'
                              '[user_models.cnn]\ntorch = "cnn.pt2"\n'
                              '[user_models.bert2]\nhf = {config = "config.json"}\n'
                              'outputs = ["last_hidden_state", "pooler_output"]\n'
                              'inputs = [{name = "input_ids", shape = ["batch", 16], dtype = "int64", '
                              'range = [0, 1000]}, {name = "attention_mask", shape = ["batch", 16], '
                              'dtype = "int64", range = [1, 2]}]\n')
    for model in ("cnn", "bert2"):
        assert records[(model, "torch/native/cpu")]["status"] == "ok"
        for runtime in runtimes[1:5]:
            assert_faithful(records[(model, runtime)])
        assert (model, "tensorflow/native/cpu") not in records
    assert_provenance(records[("cnn", "torch/native/cpu")], tmp_path, "cnn.pt2", "torch")
    assert_provenance(records[("bert2", "torch/native/cpu")], tmp_path, "config.json", "hf")
    digest = records[("bert2", "torch/native/cpu")]["result"]["output_digest"]["outputs"]
    assert digest["last_hidden_state"]["shape"] == [2, 16, 64] and digest["pooler_output"]["shape"] == [2, 64]


def test_keras_file_on_tensorflow_xla_and_onnx_from_tensorflow(tmp_path):
    build_in("tensorflow", KERAS_MODEL, tmp_path)
    runtimes = ["tensorflow/native/cpu", "tensorflow/xla/cpu", "onnxruntime/onnx-from-tensorflow/cpu",
                "openvino/onnx-from-tensorflow/cpu", "onnxruntime/onnx-from-tensorflow/openvino"]
    records = sweep(tmp_path, f'name = "user-keras"\nmodels = ["small"]\nruntimes = {json.dumps(runtimes)}\n'
                              '[user_models.small]\nkeras = "small.keras"\n')
    assert records[("small", "tensorflow/native/cpu")]["status"] == "ok"
    for runtime in runtimes[1:]:
        assert_faithful(records[("small", runtime)])
    assert_provenance(records[("small", "tensorflow/native/cpu")], tmp_path, "small.keras", "keras")


def test_greenrt_run_measures_an_onnx_file_without_a_config(tmp_path):
    model = onnx_helper_model(tmp_path / "helper-made.onnx")
    out = tmp_path / "adhoc"
    done = greenrt("run", "--model", str(model), "--batch-size", "8", "--min-iterations", "3", "--min-seconds", "0",
                   "--warmup-iterations", "1", "--baseline-seconds", "0", "--out", str(out),
                   "--powercap-root", str(tmp_path / "none"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (record,) = map(json.loads, (out / "runs.jsonl").read_text().splitlines())
    assert record["status"] == "ok" and record["runtime"] == "onnxruntime/onnx/cpu" and record["batch_size"] == 8
    assert record["model"] == "helper-made" and record["result"]["iterations"] >= 3
    assert record["result"]["output_digest"]["outputs"]["y"]["shape"] == [8, 4]


def test_a_file_that_is_not_what_its_extension_says_fails_its_runs_at_load(tmp_path):
    (tmp_path / "fake.onnx").write_bytes(b"this is not a protobuf\x00\xff" * 4)
    records = sweep(tmp_path, 'name = "user-fake"\nmodels = ["fake"]\nruntimes = ["onnxruntime/onnx/cpu"]\n'
                              '[user_models.fake]\nonnx = "fake.onnx"\n'
                              'inputs = [{name = "x", shape = ["batch", 8], dtype = "float32"}]\n')
    record = records[("fake", "onnxruntime/onnx/cpu")]
    assert record["status"] == "failed" and record["failure"]["kind"] == "load"
    assert "fake.onnx" in record["failure"]["message"] or "INVALID_PROTOBUF" in record["failure"]["message"]
