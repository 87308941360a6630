"""ctranslate2/ct2-from-hf/cpu: the tiny Llama converted by CTranslate2's transformers converter and run through
the runner's CLI (real ctranslate2), against transformers on the same checkpoint."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ct2_helpers import BATCH, NEW, assert_monotonic_phases, export, run_request, runner, scale_one_weight
from models.fidelity import compare_outputs


def _run(folder: Path, request: dict) -> tuple[int, dict, dict[str, np.ndarray] | None]:
    proc = runner("run", request, folder)
    result = json.loads(Path(request["result_path"]).read_text())
    outputs = None
    if Path(request["outputs_path"]).is_file():
        with np.load(request["outputs_path"]) as saved:
            outputs = dict(saved)
    return proc.returncode, result, outputs


def test_conversions_record_the_quantization_and_load_in_ctranslate2(fp32, int8):
    assert fp32["exporter"] == "ctranslate2.converters.TransformersConverter" and fp32["seconds"] > 0
    assert fp32["versions"]["ctranslate2"] == "4.8.5"
    assert fp32["quantization"] == {"quantization": "float32"} and fp32["precision"] == "fp32"
    assert int8["quantization"] == {"scheme": "int8", "per_channel": True, "quantization": "int8"}
    assert fp32["checks"]["vocabulary_size"] == 32000 and "model.bin" in fp32["checks"]["files"]
    assert len(fp32["checks"]["generated"]) == 2  # loaded and run before it was kept
    assert int8["checks"]["compute_type"].startswith("int8")


def test_a_cli_run_makes_exactly_n_tokens_with_monotonic_phases_and_matches_torch(made, fp32, reference):
    code, result, outputs = _run(made, run_request(made, Path(fp32["output_path"]), "fp32"))
    assert code == 0 and result["status"] == "ok", result.get("error")
    assert result["provider_used"] == "cpu" and result["threads"] == 1
    generation = result["generation"]
    assert (generation["batch_size"], generation["new_tokens"]) == (BATCH, NEW)
    assert_monotonic_phases(result)
    assert outputs["tokens"].shape == (BATCH, NEW) and outputs["tokens"].dtype == np.int64
    np.testing.assert_allclose(outputs["prefill_logits"], reference["prefill_logits"], atol=1e-4, rtol=0)
    report = compare_outputs(reference, outputs)
    assert report["faithful"], report["verdict"]
    facts = result["runtime_facts"]
    assert facts["compute_type"] == "float32" and facts["intra_threads"] == 1
    assert "no prompt cache" in facts["generation"]["kv_cache"]


def test_an_int8_run_is_judged_by_the_quantized_criterion_never_faithful(made, int8, reference):
    code, result, outputs = _run(made, run_request(made, Path(int8["output_path"]), "int8", precision="int8"))
    assert code == 0 and result["status"] == "ok", result.get("error")
    assert outputs["tokens"].shape == (BATCH, NEW)
    assert result["runtime_facts"]["compute_type"].startswith("int8")
    report = compare_outputs(reference, outputs, precision="int8")
    assert report["faithful"] is None and report["acceptable"] is not None


def test_a_corrupted_conversion_is_caught(made, fp32, reference, tmp_path):
    corrupted = tmp_path / "corrupted"
    shutil.copytree(fp32["output_path"], corrupted)
    scaled = scale_one_weight(corrupted, 1.5)
    code, result, outputs = _run(tmp_path, run_request(tmp_path, corrupted, "corrupted"))
    assert code == 0 and result["status"] == "ok", result.get("error")
    report = compare_outputs(reference, outputs)
    assert not report["faithful"], (scaled, report["verdict"])
    assert np.abs(outputs["prefill_logits"] - reference["prefill_logits"]).max() > 1e-3


@pytest.mark.parametrize("fields, kind, says", [
    ({"provider_options": {"intra_threads": 2}}, "bad-request", "takes no provider options"),
    ({"precision": "int4"}, "unsupported", "int4"),
])
def test_what_it_cannot_run_is_refused_in_one_line(made, fp32, tmp_path, fields, kind, says):
    code, result, _ = _run(tmp_path, run_request(tmp_path, Path(fp32["output_path"]), "refused", **fields))
    assert code == 1 and result["error"]["kind"] == kind and says in result["error"]["message"]
    assert len(result["error"]["message"].splitlines()) == 1


def test_a_bad_conversion_request_names_the_valid_precisions(made, checkpoint):
    proc, result = export(made, "bad", framework="ctranslate2", target="ct2", precision="int4",
                          source_path=str(checkpoint))
    assert proc.returncode == 1 and result["error"]["kind"] == "bad-request"
    assert "precision 'int4' is not one of fp32, int8" in result["error"]["message"]
    assert not (made / "bad").exists()


def test_a_checkpoint_without_a_tokenizer_converts_with_one_made_from_its_vocabulary(made, checkpoint, tmp_path):
    """A user's own folder may hold no tokenizer; the converter wants one: it is made aside, the folder untouched."""
    bare = tmp_path / "bare"
    shutil.copytree(checkpoint, bare, ignore=shutil.ignore_patterns("tokenizer*", "special_tokens_map.json"))
    before = sorted(p.name for p in bare.iterdir())
    proc, result = export(tmp_path, "from-bare", framework="ctranslate2", target="ct2", source_path=str(bare))
    assert proc.returncode == 0 and result["status"] == "ok", result.get("error")
    assert "tokenizer.json" in result["checks"]["tokenizer_files_made"]
    assert result["checks"]["vocabulary_size"] == 32000
    assert sorted(p.name for p in bare.iterdir()) == before
