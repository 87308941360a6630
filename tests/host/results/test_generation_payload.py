"""The generation payload from a runner's per-iteration stamps: TTFT, TPOT, tokens/s, and per-token energy."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator.results.generation_payload import (GenerationEnergy, GenerationTimesShape, PhaseTotal,
                                                     generation_of_result, generation_payload)

MS = 1_000_000


def _times(phases, P=16, N=5, B=2):
    return GenerationTimesShape(prompt_tokens=P, new_tokens=N, batch_size=B, phases_ns=phases)


def test_ttft_tpot_and_tokens_per_s_per_iteration():
    # iteration 0: prefill 10 ms, decode 40 ms (4 steps of 10 ms); iteration 1: prefill 20 ms, decode 80 ms
    times = _times([[0, 10 * MS, 50 * MS], [60 * MS, 80 * MS, 160 * MS]])
    g = generation_payload(times, window=(0, 170 * MS))
    assert g.iterations == 2 and g.unsplit_iterations == 0
    assert g.ttft_ms.median == pytest.approx(15.0) and (g.ttft_ms.min, g.ttft_ms.max) == (10.0, 20.0)
    assert g.tpot_ms.median == pytest.approx(15.0) and (g.tpot_ms.min, g.tpot_ms.max) == (10.0, 20.0)
    # B * N = 10 tokens over 50 ms and 100 ms
    assert sorted([g.output_tokens_per_s.min, g.output_tokens_per_s.max]) == [pytest.approx(100.0), pytest.approx(200.0)]
    assert g.prefill_s == pytest.approx(0.030) and g.decode_s == pytest.approx(0.120)
    assert g.gaps_s == pytest.approx(0.020)  # 170 ms window, 150 ms of iterations
    assert g.energy is None and g.j_per_output_token is None


def test_missing_first_token_keeps_the_iteration_for_tokens_per_s_only():
    times = _times([[0, None, 50 * MS], [60 * MS, 70 * MS, 110 * MS]])
    g = generation_payload(times)
    assert g.unsplit_iterations == 1
    assert g.ttft_ms.n == 1 and g.ttft_ms.median == pytest.approx(10.0)
    assert g.tpot_ms.n == 1 and g.tpot_ms.median == pytest.approx(10.0)
    assert g.output_tokens_per_s.n == 2
    assert "no first-token stamp" in g.note


def test_every_first_token_missing_gives_no_ttft_but_says_why():
    g = generation_payload(_times([[0, None, 50 * MS]]))
    assert g.ttft_ms is None and g.tpot_ms is None and g.prefill_s is None
    assert g.output_tokens_per_s.median == pytest.approx(200.0)
    assert "1 of 1 iterations" in g.note


def test_one_new_token_has_no_tpot_and_no_j_per_output_token():
    times = _times([[0, 10 * MS, 10 * MS]], N=1)
    energy = GenerationEnergy(status="ok", split_iterations=1, iterations_j=2.0,
                              prefill=PhaseTotal(seconds=0.01, intervals=1, raw_j=2.0),
                              decode=PhaseTotal(seconds=0.0, intervals=1, raw_j=0.0))
    g = generation_payload(times, energy=energy)
    assert g.tpot_ms is None and g.ttft_ms.median == pytest.approx(10.0)
    assert g.j_per_output_token is None
    assert g.j_per_prompt_token == pytest.approx(2.0 / (2 * 16))
    assert g.j_per_request == pytest.approx(1.0)
    assert "no TPOT" in g.note


def test_per_token_energy_divides_by_the_tokens_of_each_phase():
    times = _times([[0, 10 * MS, 50 * MS], [60 * MS, 70 * MS, 110 * MS], [120 * MS, None, 170 * MS]], P=16, N=5, B=2)
    energy = GenerationEnergy(status="partial", split_iterations=2, window_j=20.0, iterations_j=18.0,
                              iterations_dynamic_j=9.0,
                              prefill=PhaseTotal(seconds=0.02, intervals=2, raw_j=3.2, dynamic_j=1.6),
                              decode=PhaseTotal(seconds=0.08, intervals=2, raw_j=8.0, dynamic_j=4.0))
    g = generation_payload(times, energy=energy)
    assert g.j_per_prompt_token == pytest.approx(3.2 / (2 * 2 * 16))
    assert g.j_per_output_token == pytest.approx(8.0 / (2 * 2 * 4))  # N - 1 = 4 decoded tokens per sequence
    assert g.dynamic_j_per_output_token == pytest.approx(4.0 / (2 * 2 * 4))
    assert g.j_per_request == pytest.approx(18.0 / (3 * 2))  # every iteration, split or not
    assert g.prefill_energy_share == pytest.approx(3.2 / 11.2)


def test_short_phase_is_said_with_its_bound():
    energy = GenerationEnergy(status="ok", split_iterations=1, iterations_j=1.0,
                              prefill=PhaseTotal(seconds=0.01, intervals=1, median_interval_ms=10.0, raw_j=0.1,
                                                 edge_uncertainty_j=0.05, short_channels=["gpu0"]),
                              decode=PhaseTotal(seconds=0.04, intervals=1, raw_j=0.9))
    g = generation_payload(_times([[0, 10 * MS, 50 * MS]]), energy=energy)
    assert "prefill intervals (median 10 ms) are shorter than the update period of gpu0" in g.energy_note
    assert "+-0.05 J" in g.energy_note


@pytest.mark.parametrize("phases", [[[0, 60 * MS, 50 * MS]], [[10, 5, 50]], [[0, 10, 50], [40, 45, 60]]])
def test_stamps_out_of_order_are_refused(phases):
    with pytest.raises(ValidationError):
        _times(phases)


def test_from_a_run_result_dict():
    result = {"window_start_ns": 0, "window_end_ns": 60 * MS,
              "generation": {"prompt_tokens": 16, "new_tokens": 5, "batch_size": 2,
                             "phases_ns": [[0, 10 * MS, 50 * MS]]}}
    g = generation_of_result(result)
    assert g is not None and g.gaps_s == pytest.approx(0.010)
    assert generation_of_result({"latencies_ns": [1]}) is None
    # it writes only what it was built with and reads back equal
    assert type(g).model_validate(g.model_dump(mode="json")).model_dump(mode="json") == g.model_dump(mode="json")


def test_a_record_with_generation_reads_back_and_writes_the_same_line():
    from orchestrator.results.record import from_journal
    from testkit.records import make_record

    line = make_record("g1", model="llama-tiny", runtime="torch/transformers/cpu", latencies_ms=(50.0,))
    line["result"]["generation"] = {"prompt_tokens": 16, "new_tokens": 5, "batch_size": 2,
                                    "phases_ns": [[1_000_000_000, None, 1_050_000_000]]}
    g = generation_of_result(line["result"])
    line["generation"] = g.model_dump(mode="json")
    record = from_journal(line)
    assert record.generation.unsplit_iterations == 1 and record.generation.ttft_ms is None
    assert record.to_journal() == from_journal(record.to_journal()).to_journal()
    assert record.to_journal()["generation"] == line["generation"]


def test_a_classifier_record_has_no_generation_key():
    from orchestrator.results.record import from_journal
    from testkit.records import make_record

    assert "generation" not in from_journal(make_record()).to_journal()


def test_stamps_the_accounting_refuses_still_read_as_a_record():
    """A result whose stamps fail the accounting is journaled (failed, kind accounting): it must read back."""
    from orchestrator.results.record import from_journal
    from testkit.records import make_record

    line = make_record("g2", runtime="torch/transformers/cpu")
    line["result"]["generation"] = {"prompt_tokens": 4, "new_tokens": 2, "batch_size": 1, "phases_ns": [[9, 5, 1]]}
    assert from_journal(line).result["generation"]["phases_ns"] == [[9, 5, 1]]
