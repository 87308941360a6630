"""Planning generative models (issue 24): models pair only with runtimes of their kind (a config mixing them plans the
valid pairs and says once which it left out), what a generative runtime cannot run is a skipped cell with the reason
(ONNX Runtime GenAI and head_dim, llama.cpp and batches, GPU runtimes on a host without one, a precision a runtime has
not), and every mistake in a generative model's options or a user's checkpoint folder is one line."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import UserError
from orchestrator.planning.config import parse_config
from orchestrator.planning.generative import generative_refusal, kind_pairs
from orchestrator.planning.planner import HostCapabilities, empty_plan_refusal, plan_sweep
from orchestrator.planning.runtimes import Runtime

HOST = HostCapabilities(memory_bytes=16 * 2**30)
TORCH, CT2 = "torch/transformers/cpu", "ctranslate2/ct2-from-hf/cpu"
ORT, LLAMA_CPP = "onnxruntime-genai/genai-from-hf/cpu", "llama.cpp/gguf-from-hf/cpu"
CPU_GENERATIVE = [TORCH, ORT, CT2, "openvino-genai/ir-from-hf/cpu", LLAMA_CPP]


@pytest.fixture(autouse=True)
def every_runtime_implemented(monkeypatch):
    """The refusals under test, not which adapters this checkout holds yet (runtimes.py's own check)."""
    monkeypatch.setattr(Runtime, "not_implemented_reason", lambda self, *a, **k: None)


def config(**fields) -> dict:
    return {"name": "g", "models": ["llama-tiny"], "batch_sizes": [1], "runtimes": [TORCH], **fields}


def checkpoint(tmp_path: Path, name: str = "ckpt", files: dict | None = None, **fields) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    settings = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 256,
                "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2, "intermediate_size": 512,
                "vocab_size": 1000, "max_position_embeddings": 2048, **fields}
    for file, content in (files if files is not None else {"config.json": json.dumps(settings),
                                                             "model.safetensors": "w"}).items():
        (folder / file).write_text(content)
    return folder


def refusal(data: dict) -> list[str]:
    with pytest.raises(UserError) as caught:
        parse_config(data)
    return str(caught.value).splitlines()


def test_a_config_mixing_kinds_plans_only_the_matching_pairs_and_says_once_which_it_left_out():
    plan = plan_sweep(parse_config(config(models=["llama-tiny", "mobilenet_v2"],
                                          runtimes=["torch/native/cpu", TORCH, CT2])), HOST)
    pairs = {(r.cell.model, r.cell.runtime) for r in plan.runs}
    assert pairs == {("llama-tiny", TORCH), ("llama-tiny", CT2), ("mobilenet_v2", "torch/native/cpu")}
    assert not plan.skipped  # left out, not skipped cell by cell
    assert plan.left_out is not None and "\n" not in plan.left_out
    assert "3 model x runtime pairs left out" in plan.left_out and "llama-tiny x torch/native/cpu" in plan.left_out
    assert "generative models (llama-tiny) run only on generative runtimes" in plan.left_out
    assert "classifier models (mobilenet_v2) run only on classifier runtimes" in plan.left_out
    assert type(plan).from_dict(plan.to_dict()) == plan


def test_a_config_whose_every_pair_is_of_two_kinds_plans_no_run_and_says_why():
    plan = plan_sweep(parse_config(config(runtimes=["torch/native/cpu"])), HOST)
    assert not plan.runs
    line = empty_plan_refusal(plan)
    assert "plans no run" in line and "llama-tiny x torch/native/cpu" in line and "\n" not in line


def test_kind_pairs_is_silent_when_every_pair_matches():
    assert kind_pairs({"llama-tiny": "generative"}, [TORCH, CT2]) == ({("llama-tiny", TORCH), ("llama-tiny", CT2)},
                                                                      None)


def test_the_cpu_generative_runtimes_plan_their_own_precisions_and_refuse_the_others_with_the_reason():
    plan = plan_sweep(parse_config(config(runtimes=CPU_GENERATIVE, precisions=["fp32", "fp16", "int8", "int4"])), HOST)
    planned = {(r.cell.runtime, r.cell.precision) for r in plan.runs}
    assert (LLAMA_CPP, "fp16") in planned  # f16 GGUF is a CPU format: not the classifiers' "fp16 on GPUs only"
    assert {(CT2, "int8"), (ORT, "int4"), (LLAMA_CPP, "int4"), (TORCH, "fp32")} <= planned
    reasons = {(s.cell.runtime, s.cell.precision): s.reason for s in plan.skipped}
    assert "int4" in reasons[(TORCH, "int4")] and "fp32, fp16" in reasons[(TORCH, "int4")]
    assert "fp16" in reasons[(TORCH, "fp16")] and "cuda" in reasons[(TORCH, "fp16")]
    assert (CT2, "int4") in reasons and (ORT, "int8") in reasons


def test_llama_cpp_runs_one_sequence_at_a_time_so_its_larger_batches_are_skipped_with_the_reason():
    plan = plan_sweep(parse_config(config(batch_sizes=[1, 4], runtimes=[LLAMA_CPP, CT2])), HOST)
    assert {(r.cell.runtime, r.cell.batch_size) for r in plan.runs} == {(LLAMA_CPP, 1), (CT2, 1), (CT2, 4)}
    [skipped] = plan.skipped
    assert skipped.cell.batch_size == 4 and "batch 4 > 1" in skipped.reason and "one sequence" in skipped.reason


def test_gpu_generative_runtimes_are_skipped_on_a_host_without_a_gpu():
    plan = plan_sweep(parse_config(config(runtimes=[TORCH, "torch/transformers/cuda", "vllm/hf/cuda"],
                                          precisions=["fp16"])), HOST)
    reasons = {s.cell.runtime: s.reason for s in plan.skipped}
    assert "needs an NVIDIA GPU" in reasons["torch/transformers/cuda"]
    assert "needs an NVIDIA GPU" in reasons["vllm/hf/cuda"]


def test_ort_genai_refuses_a_head_dim_its_attention_kernel_cannot_run_before_any_conversion(tmp_path):
    folder = checkpoint(tmp_path, hidden_size=96)  # 4 heads of 24
    plan = plan_sweep(parse_config(config(user_models={"odd": {"hf_checkpoint": str(folder)}}, models=["odd"],
                                          runtimes=[TORCH, ORT, CT2])), HOST)
    assert {r.cell.runtime for r in plan.runs} == {TORCH, CT2}
    [skipped] = plan.skipped
    assert skipped.cell.runtime == ORT and "head_dim 24 is not a multiple of 16" in skipped.reason
    assert generative_refusal("onnxruntime-genai", 1, {"hidden_size": 256, "num_attention_heads": 4}) is None


def test_a_users_checkpoint_plans_like_a_built_in_generative_model_with_its_own_position_limit(tmp_path):
    folder = checkpoint(tmp_path, max_position_embeddings=256)
    data = config(user_models={"mine": {"hf_checkpoint": str(folder)}}, models=["mine"], runtimes=[TORCH, CT2],
                  precisions=["fp32", "int8"], model_options={"mine": {"prompt_tokens": 200, "new_tokens": 50}})
    plan = plan_sweep(parse_config(data), HOST)
    assert {(r.cell.runtime, r.cell.precision) for r in plan.runs} == {(TORCH, "fp32"), (CT2, "fp32"), (CT2, "int8")}
    too_long = refusal({**data, "model_options": {"mine": {"prompt_tokens": 200, "new_tokens": 57}}})
    assert len(too_long) == 1 and "prompt_tokens + new_tokens = 257 exceeds its limit 256" in too_long[0]
    defaults = refusal({**data, "model_options": {}})  # 512 + 128 do not fit 256 positions
    assert len(defaults) == 1 and "model_options.mine: the defaults do not fit" in defaults[0]


@pytest.mark.parametrize("options, said", [
    ({"prompt_tokens": 0}, "prompt_tokens must be a positive integer"),
    ({"new_tokens": -3}, "new_tokens must be a positive integer"),
    ({"prompt_tokens": 2000, "new_tokens": 100}, "prompt_tokens + new_tokens = 2100 exceeds its limit 2048"),
    ({"seq_len": 128}, "unknown option(s) seq_len; valid: new_tokens, prompt_tokens"),
])
def test_a_generative_models_options_are_checked_in_one_line(options, said):
    [line] = refusal(config(model_options={"llama-tiny": options}))
    assert said in line and line.startswith("config: model_options.llama-tiny")


def test_int4_is_a_precision_name_and_a_misspelt_one_names_the_valid_ones():
    assert parse_config(config(precisions=["fp32", "int4"])).precisions == ["fp32", "int4"]
    [line] = refusal(config(precisions=["q4"]))
    assert "int4" in line and "int8" in line


@pytest.mark.parametrize("files, fields, said", [
    ({"model.safetensors": "w"}, {}, "no config.json in the folder"),
    (None, {"model_type": "gpt2"}, "model_type 'gpt2' is not a Llama-style decoder"),
    (None, {"auto_map": {"AutoModelForCausalLM": "x.Model"}}, "auto_map (remote code)"),
    ({"config.json": "{}", "pytorch_model.bin": "p"}, {}, "no .safetensors weights (only pickled ones"),
    ({"config.json": "{not json", "model.safetensors": "w"}, {}, "config.json is not readable JSON"),
    ({"config.json": "{}", "model.safetensors": "w", "modeling_x.py": "import os"}, {}, "holds code (modeling_x.py)"),
    (None, {"vocab_size": "many"}, "no positive integer vocab_size"),
])
def test_a_checkpoint_folder_greenrt_does_not_measure_is_refused_in_one_line(tmp_path, files, fields, said):
    folder = checkpoint(tmp_path, files=files, **fields) if files is not None else checkpoint(tmp_path, **fields)
    [line] = refusal(config(user_models={"x": {"hf_checkpoint": str(folder)}}, models=["x"]))
    assert f"user_models.x.hf_checkpoint = '{folder}'" in line and said in line and "valid: a folder" in line


def test_a_missing_checkpoint_folder_and_inputs_given_with_one_are_refused_in_one_line(tmp_path):
    [missing] = refusal(config(user_models={"x": {"hf_checkpoint": str(tmp_path / "nope")}}, models=["x"]))
    assert "no such folder" in missing and "valid: a folder with config.json" in missing
    folder = checkpoint(tmp_path)
    [inputs] = refusal(config(user_models={"x": {"hf_checkpoint": str(folder), "outputs": ["logits"]}}, models=["x"]))
    assert "user_models.x.outputs: not taken with hf_checkpoint" in inputs
