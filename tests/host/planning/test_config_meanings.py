"""Every value checked against what it means (issue 22, point 2): numbers refused with the whole valid range,
provider option values by type and range, options only for the models a sweep plans."""
from __future__ import annotations

import pytest

from orchestrator.errors import UserError
from orchestrator.planning.config import parse_config

BASE = {"name": "m", "models": ["mobilenet_v2"], "batch_sizes": [1],
        "runtimes": ["torch/inductor/cpu", "openvino/onnx-from-torch/cpu"]}


def refusal(**changes) -> str:
    with pytest.raises(UserError) as caught:
        parse_config({**BASE, **changes})
    text = str(caught.value)
    assert len(text.splitlines()) == 1, text
    return text


@pytest.mark.parametrize("changes, valid", [
    ({"warmup": {"iterations": 2**63 - 1}}, "valid: from 0 to 10000000"),
    ({"measure": {"min_iterations": 2**62}}, "valid: from 1 to 10000000"),
    ({"batch_sizes": [1, 10**12]}, "valid: from 1 to 2147483647"),
    ({"threads": 0}, "valid: from 1 to 4096"),
    ({"timeout_seconds": 1e-300}, "valid: from 0.001 to"),
])
def test_a_number_outside_its_meaning_is_refused_with_the_whole_range(changes, valid):
    assert valid in refusal(**changes)


def test_provider_option_values_are_checked_by_type_and_range():
    text = refusal(provider_options={"torch/inductor/cpu": {"dynamic": "true"}})
    assert "dynamic = 'true': not accepted by torch/inductor/cpu; valid: false, true" in text
    # TOML's 1 equals Python's True, but is no boolean
    assert "valid: false, true" in refusal(provider_options={"torch/inductor/cpu": {"dynamic": 1}})
    text = refusal(provider_options={"openvino/onnx-from-torch/cpu": {"num_streams": -3}})
    assert "num_streams = -3" in text and "valid: an integer from 1 to 1024" in text
    text = refusal(provider_options={"openvino/onnx-from-torch/cpu": {"inference_num_threads": "4"}})
    assert "not an integer" in text
    parse_config({**BASE, "provider_options": {"torch/inductor/cpu": {"dynamic": True},
                                               "openvino/onnx-from-torch/cpu": {"num_streams": 2}}})


def test_model_options_for_a_model_the_sweep_does_not_plan_are_refused():
    text = refusal(model_options={"bert-base-uncased": {"seq_len": 64}})
    assert "model_options.bert-base-uncased: model 'bert-base-uncased' is not in models (mobilenet_v2)" in text


def test_a_user_model_file_that_is_a_symlink_loop_is_named_as_one(tmp_path):
    loop = tmp_path / "loop.onnx"
    loop.symlink_to(loop)
    text = refusal(models=["mine"], runtimes=["onnxruntime/onnx/cpu"], user_models={"mine": {"onnx": str(loop)}})
    assert "symbolic link loop" in text and "no such file" not in text


def test_an_onnx_runtime_session_entry_that_does_not_exist_is_refused_with_the_closest():
    ort = "onnxruntime/onnx-from-torch/cpu"
    text = refusal(runtimes=[ort], provider_options={ort: {"session.intra_op.allow_spinnin": "0"}})
    assert "not a session config entry ONNX Runtime reads; valid: session.intra_op.allow_spinning" in text
    parse_config({**BASE, "runtimes": [ort], "provider_options": {ort: {"session.intra_op.allow_spinning": "0"}}})


def test_an_empty_string_as_an_option_value_is_a_mistake():
    text = refusal(provider_options={"torch/inductor/cpu": {"cache_dir": " "}})
    assert "an empty string is no value" in text
