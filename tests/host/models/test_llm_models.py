"""The built-in generative models (models/llm/configs.py) as the registry offers them, and their seeded prompts."""
import numpy as np
import pytest

from models.inputs import make_inputs
from models.llm.configs import GENERATIVE_MODELS, head_dim, llama_config, parameter_count
from models.llm.prompts import prompt_ids
from models.registry import BUILT_IN_MODELS, UnknownModelError, get_model
from runners.runtimes_table import FORWARD, GENERATIVE


def test_the_contract_sizes_and_their_derived_facts():
    tiny, mid, big = (GENERATIVE_MODELS[n] for n in ("llama-tiny", "llama-175m", "llama-500m"))
    assert (tiny["num_hidden_layers"], tiny["hidden_size"], tiny["num_attention_heads"],
            tiny["num_key_value_heads"], tiny["intermediate_size"]) == (2, 256, 4, 2, 768)
    assert (mid["num_hidden_layers"], mid["hidden_size"], mid["intermediate_size"]) == (24, 768, 2048)
    assert (big["num_hidden_layers"], big["hidden_size"], big["intermediate_size"]) == (28, 1280, 3328)
    for config in (tiny, mid, big):
        assert config["head_dim"] == head_dim(config) == 64
        assert config["hidden_size"] % 256 == 0 and config["intermediate_size"] % 256 == 0
        assert (config["vocab_size"], config["max_position_embeddings"], config["tie_word_embeddings"]) == \
            (32000, 2048, True)
        assert (config["pad_token_id"], config["bos_token_id"], config["eos_token_id"]) == (0, 1, 2)
    # hand-worked: embeddings 32000*768 + 24 layers * (q,o 2*768*768 + k,v 2*768*256 + mlp 3*768*2048 + 2*768) + 768
    assert mid["parameters"] == 32000 * 768 + 24 * (2 * 768 * 768 + 2 * 768 * 256 + 3 * 768 * 2048 + 2 * 768) + 768
    assert 170e6 < mid["parameters"] < 180e6 and 480e6 < big["parameters"] < 520e6
    assert parameter_count({**tiny, "tie_word_embeddings": False}) == tiny["parameters"] + 32000 * 256


def test_llama_config_is_a_fresh_copy_of_the_fields_only():
    fields = llama_config("llama-tiny")
    assert "parameters" not in fields and fields["head_dim"] == 64
    fields["architectures"].append("x")
    assert GENERATIVE_MODELS["llama-tiny"]["architectures"] == ["LlamaForCausalLM"]
    with pytest.raises(KeyError, match="valid: llama-tiny, llama-175m, llama-500m"):
        llama_config("llama-7b")


def test_generative_models_are_registered_with_their_workload_options():
    spec = get_model("llama-175m")
    assert spec.kind == GENERATIVE and spec.generative and "llama-175m" in BUILT_IN_MODELS
    assert spec.resolve_options() == {"prompt_tokens": 512, "new_tokens": 128}
    assert spec.outputs == ("tokens", "prefill_logits") and spec.llm_config["num_hidden_layers"] == 24
    assert get_model("resnet50").kind == FORWARD and get_model("bert-base-uncased").resolve_options() == {"seq_len": 128}
    with pytest.raises(UnknownModelError, match="prompt_tokens \\+ new_tokens = 2049 exceeds its limit 2048"):
        spec.resolve_options({"prompt_tokens": 2000, "new_tokens": 49})
    with pytest.raises(UnknownModelError, match="unknown option\\(s\\) seq_len; valid: new_tokens, prompt_tokens"):
        spec.resolve_options({"seq_len": 3})


def test_prompts_are_seeded_ids_above_the_special_ones():
    ids = prompt_ids(7, 3, 50, 32000)
    assert ids.shape == (3, 50) and ids.dtype == np.int64 and ids.min() >= 3 and ids.max() < 32000
    assert np.array_equal(ids, prompt_ids(7, 3, 50, 32000)) and not np.array_equal(ids, prompt_ids(8, 3, 50, 32000))
    assert np.array_equal(ids, np.random.default_rng(7).integers(3, 32000, size=(3, 50), dtype=np.int64))
    inputs = make_inputs(get_model("llama-tiny"), 3, 7, {"prompt_tokens": 50})
    assert list(inputs) == ["input_ids"] and np.array_equal(inputs["input_ids"], ids)
    assert prompt_ids(0, 1, 2000, 4).min() == 3  # a vocabulary of 4 leaves id 3 only
    with pytest.raises(ValueError, match="no ids above the special ones"):
        prompt_ids(0, 1, 4, 3)


@pytest.mark.parametrize(("change", "said"), [
    ({"model": "resnet50"}, "no built-in generative model 'resnet50' to make a checkpoint of; valid: llama-tiny"),
    ({"precision": "int4"}, "the checkpoint is made in fp32"),
    ({"weights": {"kind": "file", "path": "/w.safetensors"}}, "made from seeded random weights"),
])
def test_the_checkpoint_exporter_refuses_what_it_does_not_make_before_writing(tmp_path, change, said):
    from models.llm.checkpoint import export_checkpoint
    from runners.protocol import ExportRequest, Weights

    if "weights" in change:
        change = {**change, "weights": Weights(**change["weights"])}
    request = ExportRequest(**{**dict(framework="torch", model="llama-tiny", target="hf-checkpoint",
                                      output_path=str(tmp_path / "out"), result_path=str(tmp_path / "r.json")),
                               **change})
    result = export_checkpoint(request)
    assert result.status == "error" and result.error.kind == "bad-request" and said in result.error.message
    assert list(tmp_path.iterdir()) == []
