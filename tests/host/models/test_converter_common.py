"""What the four generative converters ask of their source alike (models/llm/converter_common.py): a Hugging Face
checkpoint folder (config.json and .safetensors), refused in one line otherwise, and a tokenizer made aside for a
folder that has none, the folder itself never written to."""
import pytest

from models.llm.converter_common import checkpoint_refusal, checkpoint_source, with_tokenizer
from runners.failures import RunnerError


def test_a_source_that_is_not_a_checkpoint_folder_is_refused_in_one_line(tmp_path):
    assert "is required" in checkpoint_refusal(None)
    assert "is not a folder" in checkpoint_refusal(str(tmp_path / "absent"))
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"")  # pickled weights are never a source
    assert "config.json and .safetensors" in checkpoint_refusal(str(tmp_path))
    with pytest.raises(RunnerError) as refused:
        checkpoint_source(str(tmp_path))
    assert refused.value.kind == "bad-request" and len(str(refused.value).splitlines()) == 1
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert checkpoint_refusal(str(tmp_path)) is None and checkpoint_source(str(tmp_path)) == tmp_path


def test_a_folder_with_a_tokenizer_is_converted_as_is(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{}")
    with with_tokenizer(tmp_path) as (folder, made):
        assert folder == tmp_path and made == []
