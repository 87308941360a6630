"""Tests that run INSIDE the onnxruntime-node environment: `$(greenrt env python onnxruntime-node) -m pytest
tests/node-client` (make test-node-client). That environment holds the Python client of the same ONNX Runtime
version as onnxruntime-node (1.31.1), onnx to build small models, and node_modules/ from the lockfile (npm ci)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from runners.protocol import Budget, RunRequest, to_dict

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "runners" / "node" / "runner.js"
# The environment's npm packages: node_modules/ beside the venv's bin/ (orchestrator/provisioning/environments.py).
NODE_MODULES = Path(sys.prefix) / "node_modules"


@dataclass
class Answer:
    returncode: int
    result: dict | None
    stderr: str


def node_binary() -> str:
    node = shutil.which("node")
    assert node, "node is not on PATH (Debian's nodejs package: make system-packages)"
    return node


def node_env() -> dict[str, str]:
    assert (NODE_MODULES / "onnxruntime-node").is_dir(), f"{NODE_MODULES} has no onnxruntime-node (npm ci of the env)"
    return {**os.environ, "NODE_PATH": str(NODE_MODULES)}


def runner_command(request_path: Path) -> list[str]:
    return [node_binary(), str(RUNNER), "run", "--request", str(request_path)]


def write_request(tmp_path: Path, request: RunRequest | dict) -> Path:
    data = to_dict(request) if isinstance(request, RunRequest) else request
    path = tmp_path / "request.json"
    path.write_text(json.dumps(data))
    return path


def run_node(tmp_path: Path, request: RunRequest | dict, timeout: float = 120) -> Answer:
    """The Node.js runner on `request`, as the orchestrator starts it; its result file parsed (None if absent)."""
    path = write_request(tmp_path, request)
    done = subprocess.run(runner_command(path), env=node_env(), capture_output=True, text=True, timeout=timeout)
    result_path = Path(request.result_path if isinstance(request, RunRequest) else request["result_path"])
    result = json.loads(result_path.read_text()) if result_path.is_file() else None
    return Answer(done.returncode, result, done.stderr)


def conv_model(path: Path, seed: int = 0, channels: int = 16) -> Path:
    """A small image classifier on the registry's image input (pixel_values [N, 3, 224, 224] -> logits [N, 10]):
    Conv + Relu + GlobalAveragePool + Flatten + Gemm, seeded weights, written with onnx's helper API."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = [
        numpy_helper.from_array(rng.standard_normal((channels, 3, 3, 3), dtype=np.float32) * 0.2, "conv_w"),
        numpy_helper.from_array(rng.standard_normal(channels, dtype=np.float32) * 0.1, "conv_b"),
        numpy_helper.from_array(rng.standard_normal((10, channels), dtype=np.float32), "fc_w"),
        numpy_helper.from_array(rng.standard_normal(10, dtype=np.float32), "fc_b"),
    ]
    nodes = [
        helper.make_node("Conv", ["pixel_values", "conv_w", "conv_b"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "greenrt-node-test",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def token_model(path: Path, vocab: int = 30522, hidden: int = 8, seed: int = 1) -> Path:
    """BERT's three int64 inputs in, a float and an int64 output: embeddings summed, masked, and their argmax."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    table = numpy_helper.from_array(rng.standard_normal((vocab, hidden), dtype=np.float32), "table")
    types = numpy_helper.from_array(rng.standard_normal((2, hidden), dtype=np.float32), "types")
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["words"]),
        helper.make_node("Gather", ["types", "token_type_ids"], ["kinds"]),
        helper.make_node("Add", ["words", "kinds"], ["summed"]),
        helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask", "axis"], ["mask3"]),
        helper.make_node("Mul", ["summed", "mask3"], ["last_hidden_state"]),
        helper.make_node("ArgMax", ["last_hidden_state"], ["top"], axis=2, keepdims=0),
    ]
    axis = numpy_helper.from_array(np.array([2], dtype=np.int64), "axis")
    ids = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"])
           for n in ("input_ids", "attention_mask", "token_type_ids")]
    graph = helper.make_graph(nodes, "greenrt-node-tokens", ids,
                              [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                                             ["batch", "seq", hidden]),
                               helper.make_tensor_value_info("top", TensorProto.INT64, ["batch", "seq"])],
                              [table, types, axis])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


@pytest.fixture(scope="session")
def conv_onnx(tmp_path_factory) -> Path:
    return conv_model(tmp_path_factory.mktemp("models") / "conv.onnx")


@pytest.fixture(scope="session")
def token_onnx(tmp_path_factory) -> Path:
    return token_model(tmp_path_factory.mktemp("models") / "tokens.onnx")


def node_request(tmp_path: Path, artifact: Path, model: str = "mobilenet_v2", batch_size: int = 2,
                 budget: Budget | None = None, **fields) -> RunRequest:
    """A request for the Node.js runner, with its inputs file written from models.inputs (runners.inputs_file)."""
    from runners.inputs_file import write_model_inputs

    options = fields.pop("model_options", {})
    seed = fields.pop("input_seed", 0)
    inputs = write_model_inputs(tmp_path / "inputs", model, batch_size, seed, options)
    return RunRequest(run_id="node-test", runtime=fields.pop("runtime", "onnxruntime/onnx-from-torch/cpu@node"),
                      model=model, batch_size=batch_size, result_path=str(tmp_path / "result.json"),
                      artifact_path=str(artifact), inputs_path=str(inputs), input_seed=seed, model_options=options,
                      budget=budget or Budget(warmup_iterations=2, min_iterations=5), **fields)
