"""ctranslate2/ct2-from-hf/cpu: the tiny Llama converted by CTranslate2's transformers converter and run through
the runner's CLI (real ctranslate2), against transformers on the same checkpoint."""
from __future__ import annotations

import numpy as np
import pytest

from ct2_helpers import TIER, scale_one_weight
from models.fidelity import compare_outputs
from runners.protocol import RunResult, from_dict
from testkit.generative_tier import NEW, assert_phases

BATCH = TIER.batch_size


def test_conversions_record_the_quantization_and_load_in_ctranslate2(fp32, int8):
    (_, fp32), (_, int8) = fp32, int8
    assert fp32["exporter"] == "ctranslate2.converters.TransformersConverter" and fp32["seconds"] > 0
    assert fp32["versions"]["ctranslate2"] == "4.8.5"
    assert fp32["quantization"] == {"quantization": "float32"} and fp32["precision"] == "fp32"
    assert int8["quantization"] == {"scheme": "int8", "per_channel": True, "quantization": "int8"}
    assert fp32["checks"]["vocabulary_size"] == 32000 and "model.bin" in fp32["checks"]["files"]
    assert len(fp32["checks"]["generated"]) == 2  # loaded and run before it was kept
    assert int8["checks"]["compute_type"].startswith("int8")


def test_a_cli_run_makes_exactly_n_tokens_with_monotonic_phases_and_matches_torch(made, fp32, reference):
    code, result, outputs = TIER.run(made, TIER.run_request(made, fp32[0], "fp32"))
    assert code == 0 and result["status"] == "ok", result.get("error")
    assert result["provider_used"] == "cpu" and result["threads"] == 1
    assert_phases(from_dict(RunResult, result), BATCH)
    assert outputs["tokens"].shape == (BATCH, NEW) and outputs["tokens"].dtype == np.int64
    np.testing.assert_allclose(outputs["prefill_logits"], reference[BATCH]["prefill_logits"], atol=1e-4, rtol=0)
    report = compare_outputs(reference[BATCH], outputs)
    assert report["faithful"], report["verdict"]
    facts = result["runtime_facts"]
    assert facts["compute_type"] == "float32" and facts["intra_threads"] == 1
    assert "no prompt cache" in facts["generation"]["kv_cache"]


def test_an_int8_run_is_judged_by_the_quantized_criterion_never_faithful(made, int8, reference):
    code, result, outputs = TIER.run(made, TIER.run_request(made, int8[0], "int8", precision="int8"))
    assert code == 0 and result["status"] == "ok", result.get("error")
    assert outputs["tokens"].shape == (BATCH, NEW)
    assert result["runtime_facts"]["compute_type"].startswith("int8")
    report = compare_outputs(reference[BATCH], outputs, precision="int8")
    assert report["faithful"] is None and report["acceptable"] is not None


def test_a_corrupted_conversion_is_caught(fp32, reference, tmp_path):
    scaled, (_, _, outputs) = TIER.corrupted_run(fp32[0], tmp_path, lambda folder: scale_one_weight(folder, 1.5))
    report = compare_outputs(reference[BATCH], outputs)
    assert not report["faithful"], (scaled, report["verdict"])
    assert np.abs(outputs["prefill_logits"] - reference[BATCH]["prefill_logits"]).max() > 1e-3


@pytest.mark.parametrize("fields, kind, says", [
    ({"provider_options": {"intra_threads": 2}}, "bad-request", "takes no provider options"),
    ({"precision": "int4"}, "unsupported", "int4"),
])
def test_what_it_cannot_run_is_refused_in_one_line(fp32, tmp_path, fields, kind, says):
    error = TIER.refused(tmp_path, TIER.run_request(tmp_path, fp32[0], "refused", **fields))
    assert error["kind"] == kind and says in error["message"] and len(error["message"].splitlines()) == 1


def test_a_bad_conversion_request_names_the_valid_precisions(made, checkpoint):
    error = TIER.refused_conversion(made, checkpoint, "int4")
    assert error["kind"] == "bad-request" and "precision 'int4' is not one of fp32, int8" in error["message"]


def test_a_checkpoint_without_a_tokenizer_converts_with_one_made_from_its_vocabulary(checkpoint, tmp_path):
    """A user's own folder may hold no tokenizer; the converter wants one: it is made aside, the folder untouched."""
    result, untouched = TIER.convert_bare(checkpoint, tmp_path)
    assert "tokenizer.json" in result["checks"]["tokenizer_files_made"] and untouched
    assert result["checks"]["vocabulary_size"] == 32000
