"""A pure planner (issue 21, point 3): a sweep's own models travel with its config to the planner, so that validating
a config registers nothing in the process's model registry and two configs in one process (a notebook, a test
session) each plan with their own models; planning runs no process and reads no adapter."""
from __future__ import annotations

import ast

import pytest

from models.registry import MODELS
from orchestrator.errors import UserError
from orchestrator.planning.config import parse_config
from orchestrator.planning.planner import HostCapabilities, plan_sweep
from testkit.onnx_models import onnx_helper_model
from testkit.paths import REPO

PLANNING = REPO / "orchestrator" / "planning"
RUNTIMES = ["onnxruntime/onnx/cpu", "torch/native/cpu"]
# A transformers architecture from transformers' defaults: no file to make, 8 int64 tokens a sample (64 bytes).
HF = {"hf": {"model_type": "bert"},
      "inputs": [{"name": "input_ids", "shape": ["batch", 8], "dtype": "int64", "range": [0, 100]}]}


def config(name: str, user_models: dict, models: list[str], runtimes: list[str] = RUNTIMES):
    return parse_config({"name": name, "models": models, "batch_sizes": [1], "runtimes": runtimes,
                         "user_models": user_models})


def test_validating_a_config_registers_nothing():
    before = dict(MODELS)
    cfg = config("a", {"mine": HF}, ["mine", "resnet50"])
    assert MODELS == before
    assert cfg.model_spec("mine").user == cfg.user_model("mine")
    assert cfg.model_spec("mine").inputs[0].shape == (8,)
    assert cfg.model_spec("resnet50") is MODELS["resnet50"]


def test_two_configs_with_one_model_name_each_plan_with_their_own(tmp_path):
    onnx_file = onnx_helper_model(tmp_path / "m.onnx")
    a = config("a", {"m": {"onnx": str(onnx_file)}}, ["m"])
    config("b", {"m": HF}, ["m"])  # validated after a: its m must not become a's
    plan = plan_sweep(a, HostCapabilities())
    assert [r.cell.runtime for r in plan.runs] == ["onnxruntime/onnx/cpu"]
    assert [(s.cell.runtime, s.reason) for s in plan.skipped] == [
        ("torch/native/cpu", "user model m is a onnx model, which runs on onnxruntime/onnx, openvino/onnx")]


def test_the_memory_check_reads_the_configs_own_model(tmp_path):
    # a's m takes 8 float32 a sample (32 bytes at batch 1), b's m 8 int64 (64 bytes): a host of 48 bytes fits a's.
    onnx_file = onnx_helper_model(tmp_path / "m.onnx")
    a = config("a", {"m": {"onnx": str(onnx_file)}}, ["m"], ["onnxruntime/onnx/cpu"])
    b = config("b", {"m": HF}, ["m"], ["torch/native/cpu"])
    assert len(plan_sweep(a, HostCapabilities(memory_bytes=48)).runs) == 1
    with pytest.raises(UserError, match="m at batch 1: its inputs alone need 0.1 KiB, more than this host's"):
        plan_sweep(b, HostCapabilities(memory_bytes=48))


def test_a_model_of_another_config_is_unknown_here():
    config("a", {"theirs": HF}, ["theirs"], ["torch/native/cpu"])
    with pytest.raises(UserError) as refused:
        parse_config({"name": "b", "models": ["theirs"], "batch_sizes": [1], "runtimes": ["torch/native/cpu"],
                      "weights": {"torch": {"theirs": "/nowhere"}}})
    assert str(refused.value).splitlines() == [
        "config: models: unknown model 'theirs'; valid: resnet50, mobilenet_v2, bert-base-uncased, "
        "llama-tiny, llama-175m, llama-500m",
        "config: weights.torch.theirs: unknown model 'theirs'; valid: resnet50, mobilenet_v2, "
        "bert-base-uncased, llama-tiny, llama-175m, llama-500m"]


def test_planning_runs_no_process_and_reads_no_adapter():
    for module in sorted(PLANNING.glob("*.py")):
        tree = ast.parse(module.read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert "subprocess" not in imported, module.name
        assert not [name for name in imported if name.startswith("runners.adapters")], module.name
        assert not {"ensure_registered", "register_user_model"} & {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
