"""Generative inference in the torch environment (issue 24): the tiny model's checkpoint made by the real export CLI,
a real run of torch/transformers/cpu through `python -m runners run --request`, fidelity of runs against the
reference run, and a corrupted checkpoint caught by the fidelity judgement."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from models.fidelity import compare_outputs
from runners.protocol import Budget, ExportRequest, ExportResult, RunRequest, RunResult, read_json, to_dict
from torch_helpers import ROOT

PROMPT, NEW, BATCH = 16, 8, 2


def runners(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "runners", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """llama-tiny's checkpoint folder (seed 0) made by `python -m runners export`: (folder, ExportResult)."""
    root = tmp_path_factory.mktemp("llm")
    request = ExportRequest(framework="torch", model="llama-tiny", target="hf-checkpoint",
                            output_path=str(root / "llama-tiny-s0"), result_path=str(root / "export.json"))
    (root / "export.request.json").write_text(json.dumps(to_dict(request)))
    proc = runners("export", "--request", str(root / "export.request.json"))
    assert proc.returncode == 0, proc.stderr
    return root / "llama-tiny-s0", read_json(ExportResult, root / "export.json")


@pytest.fixture(scope="module")
def reference(checkpoint, tmp_path_factory):
    """The reference run's saved outputs (torch/transformers/cpu fp32, dynamic KV cache) on the checkpoint."""
    return generate(tmp_path_factory.mktemp("reference"), checkpoint[0], "reference")


def generate(tmp_path, folder, name, **change) -> tuple[RunResult, dict[str, np.ndarray]]:
    """A real run through the runner's CLI: its result and its saved outputs."""
    request = RunRequest(**{**dict(
        run_id=name, runtime="torch/transformers/cpu", model="llama-tiny", batch_size=BATCH, threads=1,
        result_path=str(tmp_path / f"{name}.result.json"), outputs_path=str(tmp_path / f"{name}.npz"),
        artifact_path=str(folder), model_options={"prompt_tokens": PROMPT, "new_tokens": NEW},
        budget=Budget(warmup_iterations=1, min_iterations=3)), **change})
    path = tmp_path / f"{name}.request.json"
    path.write_text(json.dumps(to_dict(request)))
    proc = runners("run", "--request", str(path))
    result = read_json(RunResult, request.result_path)
    assert proc.returncode == 0, (proc.stderr, result.error)
    with np.load(request.outputs_path) as saved:
        return result, dict(saved)


def test_the_checkpoint_folder_holds_what_the_converters_need(checkpoint):
    folder, result = checkpoint
    assert result.status == "ok" and result.target == "hf-checkpoint" and result.precision == "fp32"
    assert result.max_abs_diff == 0.0 and result.seconds > 0 and "transformers" in result.versions
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
            "tokenizer_config.json"} <= names
    assert not list(folder.parent.glob(".llama-tiny-s0.tmp-*"))  # staged, renamed into place
    config = json.loads((folder / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"], config["num_key_value_heads"],
            config["vocab_size"], config["tie_word_embeddings"]) == (2, 256, 2, 32000, True)
    assert result.checks["parameters"] == 9766144  # models/llm/configs.py's count
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    assert len(tokenizer) == 32000 and tokenizer.eos_token_id == 2 and tokenizer.pad_token_id == 0


def test_the_same_seed_makes_the_same_weights(checkpoint, tmp_path):
    from safetensors.numpy import load_file

    from models.llm.checkpoint import export_checkpoint

    folder, _ = checkpoint
    again = export_checkpoint(ExportRequest(framework="torch", model="llama-tiny", target="hf-checkpoint",
                                            output_path=str(tmp_path / "again"), result_path=str(tmp_path / "r")))
    assert again.status == "ok", again.error
    first, second = load_file(str(folder / "model.safetensors")), load_file(str(tmp_path / "again" / "model.safetensors"))
    assert first.keys() == second.keys() and all(np.array_equal(first[k], second[k]) for k in first)


def test_a_real_run_generates_exactly_n_greedy_tokens_with_phase_stamps(reference):
    result, outputs = reference
    g = result.generation
    assert (g.prompt_tokens, g.new_tokens, g.batch_size) == (PROMPT, NEW, BATCH)
    assert len(g.phases_ns) == result.iterations >= 3
    assert g.problem(result.window_start_ns, result.window_end_ns, result.iterations) is None
    assert all(0 < p for p in g.prefill_ns) and all(0 < d for d in g.decode_ns)
    assert outputs["tokens"].shape == (BATCH, NEW) and outputs["tokens"].dtype == np.int64
    assert outputs["prefill_logits"].shape == (BATCH, 32000) and outputs["decode_margins"].shape == (BATCH, NEW)
    facts = result.runtime_facts["generation"]
    assert facts["kv_cache"] == "dynamic" and facts["end_of_sequence"].startswith("masked at every step")
    # greedy: the first token is the prefill logits' best non-EOS id
    logits = outputs["prefill_logits"].copy()
    logits[:, 2] = -np.inf
    assert np.array_equal(np.argmax(logits, axis=1), outputs["tokens"][:, 0])
    assert np.all(outputs["decode_margins"] >= 0)


def test_a_static_cache_run_is_faithful_to_the_reference(checkpoint, reference, tmp_path):
    folder, _ = checkpoint
    _, reference = reference
    result, static = generate(tmp_path, folder, "static", provider_options={"cache_implementation": "static"})
    assert result.runtime_facts["generation"]["kv_cache"] == "static"
    report = compare_outputs(reference, static, precision="fp32")
    assert report["faithful"] is True, report["verdict"]
    assert report["generation"]["unexplained_partings"] == []
    itself = compare_outputs(reference, reference, precision="fp32")
    assert itself["faithful"] and itself["max_abs_error"] == 0.0 and itself["generation"]["token_agreement"] == 1.0


def test_a_corrupted_checkpoint_is_caught(checkpoint, reference, tmp_path):
    from safetensors.numpy import load_file, save_file

    folder, _ = checkpoint
    corrupted = tmp_path / "corrupted"
    shutil.copytree(folder, corrupted)
    weights = load_file(str(corrupted / "model.safetensors"))
    name = "model.layers.1.mlp.down_proj.weight"
    weights[name] = weights[name] * 1.5  # one weight tensor scaled
    save_file(weights, str(corrupted / "model.safetensors"), metadata={"format": "pt"})
    _, bad = generate(tmp_path, corrupted, "bad")
    _, reference = reference
    report = compare_outputs(reference, bad, precision="fp32")
    assert report["faithful"] is False and report["verdict"].startswith("NOT faithful"), report["verdict"]
    assert report["max_abs_error"] > report["tolerance"]["logits"]
