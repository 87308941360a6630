"""A user's hf model whose type the config could not check (no torch environment then): its runs fail at load in
one line with the closest types, not with transformers' list of every type it knows."""
from __future__ import annotations

import pytest

from models.user_models import spec_from_entry
from models.user_torch import build_user_torch_model
from runners.failures import RunnerError
from runners.protocol import UserModel, Weights


def hf_spec(model_type: str):
    return spec_from_entry(UserModel.from_entry({
        "name": "m", "format": "hf", "loader": "-", "outputs": ["last_hidden_state"],
        "inputs": [{"name": "input_ids", "shape": [8], "dtype": "int64"}], "hf": {"model_type": model_type}}))


@pytest.mark.parametrize("model_type, expected", [
    ("bertt", "knows no model type 'bertt'; valid: bert, "),
    ("encoder-decoder", "has no base model class (AutoModel) for model type 'encoder-decoder'"),
])
def test_a_model_type_transformers_cannot_build_fails_at_load_in_one_short_line(model_type, expected):
    with pytest.raises(RunnerError) as failed:
        build_user_torch_model(hf_spec(model_type), Weights(seed=0))
    assert failed.value.kind == "load" and expected in str(failed.value)
    assert len(str(failed.value)) < 300 and "\n" not in str(failed.value)
