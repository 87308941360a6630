"""onnxruntime-genai/genai-from-hf/cpu: the tiny Llama converted by ONNX Runtime GenAI's model builder and run
through the runner's CLI (real onnxruntime_genai), against transformers on the same checkpoint."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from genai_helpers import TIER, scale_one_weight
from models.fidelity import compare_outputs
from runners.adapters.ort_genai import artifact_refusal, head_dim_refusal
from runners.protocol import RunResult, from_dict
from testkit.generative_tier import NEW, assert_phases

BATCH = TIER.batch_size


def test_fp32_conversion_records_the_builder_and_what_it_wrote(fp32):
    _, fp32 = fp32
    facts, checks = fp32["quantization"], fp32["checks"]
    assert fp32["exporter"] == "onnxruntime_genai.models.builder" and fp32["seconds"] > 0
    assert fp32["versions"]["onnxruntime-genai"] == "0.18.0" and fp32["precision"] == "fp32"
    assert facts["builder_precision"] == "fp32" and "scheme" not in facts
    assert facts["attention"] == "GroupQueryAttention" and facts["head_size"] == 64
    assert facts["matmul_nbits_nodes"] == 0 and "genai_config.json" in checks["files"]
    assert len(checks["generated"]) == 2  # loaded and run in onnxruntime_genai before it was kept


def test_int4_conversion_records_block_size_and_accuracy_level(int4):
    _, int4 = int4
    facts = int4["quantization"]
    assert int4["precision"] == "int4" and facts["scheme"] == "int4" and facts["matmul_nbits_nodes"] > 0
    # The builder's CPU defaults (0.18.0), read back from the graph: block 32, symmetric, int8 compute (level 4).
    assert facts["bits"] == [4] and facts["block_size"] == [32] and facts["symmetric"] == [True]
    assert facts["accuracy_level"] == [4] and facts["execution_provider"] == "cpu"


def test_a_cli_run_makes_exactly_n_tokens_with_monotonic_phases_and_matches_torch(made, fp32, reference):
    code, result, outputs = TIER.run(made, TIER.run_request(made, fp32[0], "fp32"))
    assert code == 0 and result["status"] == "ok", result.get("error")
    assert result["provider_used"] == "cpu" and result["threads"] == 1
    assert_phases(from_dict(RunResult, result), BATCH)
    assert outputs["tokens"].shape == (BATCH, NEW) and outputs["tokens"].dtype == np.int64
    # fp32 reproduces transformers' logits (same weights, same prompt) to float32 rounding.
    np.testing.assert_allclose(outputs["prefill_logits"], reference[BATCH]["prefill_logits"], atol=1e-4, rtol=0)
    report = compare_outputs(reference[BATCH], outputs)
    assert report["faithful"], report["verdict"]
    facts = result["runtime_facts"]
    assert facts["intra_op_num_threads"] == 1 and "no prefix reuse" in facts["generation"]["kv_cache"]


def test_an_int4_run_is_judged_by_the_quantized_criterion_never_faithful(made, int4, reference):
    code, result, outputs = TIER.run(made, TIER.run_request(made, int4[0], "int4", precision="int4"))
    assert code == 0 and result["status"] == "ok", result.get("error")
    assert outputs["tokens"].shape == (BATCH, NEW)
    report = compare_outputs(reference[BATCH], outputs, precision="int4")
    assert report["faithful"] is None and report["acceptable"] is not None
    assert result["runtime_facts"]["model"]["bits"] == [4]


def test_a_corrupted_conversion_is_caught(fp32, reference, tmp_path):
    scaled, (_, _, outputs) = TIER.corrupted_run(fp32[0], tmp_path, lambda folder: scale_one_weight(folder, 1.5))
    report = compare_outputs(reference[BATCH], outputs)
    assert not report["faithful"], (scaled, report["verdict"])
    assert np.abs(outputs["prefill_logits"] - reference[BATCH]["prefill_logits"]).max() > 1e-3


def test_a_head_dim_not_a_multiple_of_16_is_refused_before_loading(fp32, tmp_path):
    assert head_dim_refusal(64) is None and head_dim_refusal(32) is None
    assert "head_dim 24 is not a multiple of 16" in head_dim_refusal(24)
    folder = tmp_path / "head24"
    shutil.copytree(fp32[0], folder)
    config = json.loads((folder / "genai_config.json").read_text())
    config["model"]["decoder"]["head_size"] = 24
    (folder / "genai_config.json").write_text(json.dumps(config))
    assert "head_dim 24" in artifact_refusal(folder)
    code, result, _ = TIER.run(tmp_path, TIER.run_request(tmp_path, folder, "head24"))
    assert code == 1 and result["error"]["kind"] == "unsupported"
    assert "head_dim 24 is not a multiple of 16" in result["error"]["message"]
    assert len(result["error"]["message"].splitlines()) == 1 and result["load_seconds"] is None


@pytest.mark.parametrize("fields, kind, says", [
    ({"provider_options": {"intra_op_num_threads": 2}}, "bad-request", "takes no provider options"),
    ({"precision": "int8"}, "unsupported", "int8"),
])
def test_what_it_cannot_run_is_refused_in_one_line(fp32, tmp_path, fields, kind, says):
    error = TIER.refused(tmp_path, TIER.run_request(tmp_path, fp32[0], "refused", **fields))
    assert error["kind"] == kind and says in error["message"] and len(error["message"].splitlines()) == 1


def test_a_bad_conversion_request_names_the_valid_precisions(made, checkpoint):
    error = TIER.refused_conversion(made, checkpoint, "int8")
    assert error["kind"] == "bad-request" and "precision 'int8' is not one of fp32, int4" in error["message"]
    proc, result = TIER.export(made, "nosource", framework="onnxruntime-genai", target="ort-genai",
                               source_path=str(made / "absent"))
    assert result["error"]["kind"] == "bad-request" and "is not a folder" in result["error"]["message"]


def test_a_checkpoint_without_a_tokenizer_converts_with_one_made_from_its_vocabulary(checkpoint, tmp_path):
    """A user's own folder may hold no tokenizer; the builder wants one: it is made aside, the folder untouched."""
    result, untouched = TIER.convert_bare(checkpoint, tmp_path)
    assert "tokenizer.json" in result["checks"]["tokenizer_files_made"] and untouched
