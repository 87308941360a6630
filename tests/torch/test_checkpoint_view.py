"""The converters' view of a user's checkpoint folder (models/llm/checkpoint_view.py) through the real export CLI: a
folder saved by transformers without a tokenizer gets links to its files, config.json with a top-level rope_theta and
tokenizer files made from its vocabulary size, and a tokenizer transformers loads; the user's folder is left byte for
byte as it was; a folder with its own tokenizer gets none generated; a folder that is no checkpoint fails with a kind."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import pytest

from runners.protocol import ExportRequest, ExportResult, read_json, to_dict
from torch_helpers import ROOT


def runners(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "runners", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def users_folder(tmp_path_factory):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("user") / "my-llama"
    config = LlamaConfig(hidden_size=128, intermediate_size=256, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, vocab_size=512, max_position_embeddings=128)
    LlamaForCausalLM(config).eval().save_pretrained(str(folder), safe_serialization=True)
    return folder


def view_of(folder, out) -> ExportResult:
    request = ExportRequest(framework="torch", model="mine", target="hf-checkpoint-view", source_path=str(folder),
                            output_path=str(out / "view"), result_path=str(out / "export.json"))
    (out / "request.json").write_text(json.dumps(to_dict(request)))
    done = runners("export", "--request", str(out / "request.json"))
    assert done.returncode in (0, 1), done.stderr
    return read_json(ExportResult, out / "export.json")


def test_a_folder_without_a_tokenizer_gets_links_a_fixed_config_and_generated_tokenizer_files(users_folder, tmp_path):
    from transformers import AutoConfig, AutoTokenizer

    before = digest(users_folder)
    result = view_of(users_folder, tmp_path)
    assert result.status == "ok", result.error
    view = tmp_path / "view"
    assert "model.safetensors" in result.checks["linked"] and (view / "model.safetensors").is_symlink()
    assert (view / "model.safetensors").resolve() == (users_folder / "model.safetensors").resolve()
    assert "tokenizer.json" in result.checks["tokenizer_files"]
    assert json.loads((view / "config.json").read_text()).get("rope_theta") is not None
    assert len(AutoTokenizer.from_pretrained(str(view))) == 512
    assert AutoConfig.from_pretrained(str(view)).vocab_size == 512
    assert digest(users_folder) == before  # nothing of the user's changed


def test_a_folder_with_its_own_tokenizer_gets_none_generated(users_folder, tmp_path):
    own = tmp_path / "with-tokenizer"
    shutil.copytree(users_folder, own)
    (own / "tokenizer.json").write_text("{}")
    result = view_of(own, tmp_path)
    assert result.status == "ok" and result.checks["tokenizer_files"] == []
    assert (tmp_path / "view" / "tokenizer.json").is_symlink()


def test_a_folder_without_config_json_fails_as_a_bad_request(tmp_path):
    (tmp_path / "empty").mkdir()
    result = view_of(tmp_path / "empty", tmp_path)
    assert result.status == "error" and result.error.kind == "bad-request" and "config.json" in result.error.message
