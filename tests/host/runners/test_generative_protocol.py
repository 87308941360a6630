"""The generative additions to the runner protocol (issue 24): a result's phase stamps and a conversion's precision
and checkpoint folder survive the trip through JSON, results written before them still read, bad stamps are told."""
import json

import pytest

from runners.protocol import (ExportRequest, ExportResult, GenerationTimes, ProtocolError, RunResult, from_dict,
                              read_json, to_dict, write_json_atomic)


def generative_result(**change) -> RunResult:
    base = dict(run_id="r001", runtime="torch/transformers/cpu", model="llama-tiny", batch_size=2, status="ok",
                window_start_ns=100, window_end_ns=1000, iterations=2, latencies_ns=[300, 400],
                generation=GenerationTimes(prompt_tokens=16, new_tokens=8, batch_size=2,
                                           phases_ns=[[100, 150, 400], [450, 480, 850]]))
    return RunResult(**{**base, **change})


def test_a_generative_result_round_trips_with_typed_phase_stamps(tmp_path):
    original = generative_result()
    write_json_atomic(tmp_path / "result.json", to_dict(original))
    again = read_json(RunResult, tmp_path / "result.json")
    assert again == original and isinstance(again.generation, GenerationTimes)
    assert again.generation.prefill_ns == [50, 30] and again.generation.decode_ns == [250, 370]
    assert json.loads((tmp_path / "result.json").read_text())["generation"]["phases_ns"][1] == [450, 480, 850]


def test_a_result_written_before_generation_existed_still_reads():
    old = to_dict(RunResult(run_id="r", runtime="torch/native/cpu", model="resnet50", batch_size=1, status="ok"))
    del old["generation"]
    again = from_dict(RunResult, old)
    assert again.generation is None and again.schema == 1


def test_an_export_request_carries_precision_and_the_checkpoint_folder(tmp_path):
    request = ExportRequest(framework="llama.cpp", model="llama-tiny", output_path="/cache/gguf-q4", target="gguf",
                            result_path="/cache/r.json", precision="int4", source_path="/cache/checkpoint")
    write_json_atomic(tmp_path / "export.json", to_dict(request))
    assert read_json(ExportRequest, tmp_path / "export.json") == request
    # an export request written before these fields: fp32, no source folder
    old = {k: v for k, v in to_dict(request).items() if k not in ("precision", "source_path")}
    again = from_dict(ExportRequest, old)
    assert (again.precision, again.source_path) == ("fp32", None)
    result = ExportResult(framework="llama.cpp", model="llama-tiny", status="ok", output_path="/cache/gguf-q4",
                          target="gguf", precision="int4", quantization={"scheme": "q4_K_M"},
                          checks={"loaded": True})
    assert from_dict(ExportResult, to_dict(result)) == result


@pytest.mark.parametrize(("phases", "said"), [
    ([[100, 150, 400]], "1 phase stamps for 2 window iterations"),
    ([[100, 150, 400], [450, 500, 470]], "iteration 1's phases are out of order"),
    ([[100, 150, 400], [350, 480, 850]], "iteration 1 starts before the previous one"),
    ([[50, 150, 400], [450, 480, 850]], "iteration 0 starts before the previous one (or the window)"),
    ([[100, 150, 400], [450, 480, 1200]], "the last iteration ends after the window"),
    ([[100, 150], [450, 480, 850]], "not [start, first_token, end] integers"),
    ([[100, 150.5, 400], [450, 480, 850]], "not [start, first_token, end] integers"),
])
def test_bad_phase_stamps_are_told_and_good_ones_pass(phases, said):
    result = generative_result()
    assert result.generation.problem(result.window_start_ns, result.window_end_ns, result.iterations) is None
    bad = GenerationTimes(prompt_tokens=16, new_tokens=8, batch_size=2, phases_ns=phases)
    assert said in bad.problem(100, 1000, 2)


def test_a_malformed_generation_is_a_protocol_error():
    data = to_dict(generative_result())
    data["generation"] = {**data["generation"], "colour": "green"}
    with pytest.raises(ProtocolError, match="GenerationTimes: unknown field"):
        from_dict(RunResult, data)
