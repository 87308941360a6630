"""advise on generate calls: the same runs and test as for classifiers, in per-token units (TPOT without energy)."""
from __future__ import annotations

import pytest

from orchestrator.analysis.advice import AdviceRequest, advise
from orchestrator.results.tables import runs_table
from testkit import generative_sweep as g
from testkit.synthetic_sweep import journal as classifier_journal


def _cell(advice, precision):
    return next(c for c in advice.cells if c.model == "llama-tiny" and c.precision == precision)


def test_a_generative_cell_is_ranked_by_energy_per_output_token():
    advice = advise(runs_table(g.journal()))
    cell = _cell(advice, "fp32")
    assert cell.metric == "j_per_token" and cell.unit.startswith("J per output token")
    assert cell.recommended == g.LLAMA_CPP and cell.verdict == "recommended"
    # the median run's request energy (1.0 + 0.2 J) over N = 16 tokens
    assert cell.figure.median == pytest.approx((1.0 + 0.2) / g.N)
    assert cell.figure.ci_low is not None and cell.figure.ci_low < cell.figure.median < cell.figure.ci_high
    point = next(p for p in cell.runtimes if p.runtime == g.TORCH)
    assert point.energy.metric == "j_per_token" and point.energy.median == pytest.approx(2.8 / g.N)
    assert "energy per output token" in cell.front_note
    assert _cell(advice, "int4").recommended == g.LLAMA_CPP


def test_the_per_token_ranking_is_the_per_inference_ranking():
    runs = runs_table(g.journal())
    per_token = advise(runs)
    leaders = {(c.model, c.precision): (c.leader, c.verdict, c.separation.p_holm) for c in per_token.cells}
    # the same runs ranked as a classifier would be (their new_tokens hidden): same leader, verdict and p
    as_classifier = advise(runs.drop("new_tokens"))
    assert {(c.model, c.precision): (c.leader, c.verdict, c.separation.p_holm) for c in as_classifier.cells} == leaders
    assert all(c.metric == "j_per_inference" for c in as_classifier.cells)


def test_without_energy_a_generative_cell_is_ranked_by_tpot():
    cell = _cell(advise(runs_table(g.journal(energy=False))), "fp32")
    assert cell.objective_used == "latency" and cell.metric == "tpot_ms"
    assert cell.leader == g.LLAMA_CPP and cell.figure.median == pytest.approx(2.5)
    assert any("ranked by time per output token (TPOT) instead of energy" in r for r in cell.reasons)


def test_carbon_is_per_million_output_tokens():
    from orchestrator.analysis.carbon import GridFigures

    advice = advise(runs_table(g.journal()), AdviceRequest(objective="carbon",
                                                           grid=GridFigures(grid_intensity_g_per_kwh=400.0)))
    cell = _cell(advice, "fp32")
    assert cell.unit == "gCO2e per million output tokens"
    assert cell.figure.median == pytest.approx(1.2 / g.N * 1e6 / 3.6e6 * 400.0, rel=1e-6)


def test_the_carbon_and_cost_lines_of_a_generative_cell_count_output_tokens_not_inferences():
    from orchestrator.analysis.carbon import GridFigures
    from orchestrator.report.advice_text import advice_lines

    grid = GridFigures(grid_intensity_g_per_kwh=400.0, price_per_kwh=0.3)
    lines = advice_lines(advise(runs_table(g.journal()), AdviceRequest(grid=grid)))
    money = [line.strip() for line in lines if line.strip().startswith(("carbon:", "cost:"))]
    assert money and all("per million output tokens at" in line for line in money), money
    assert not any("inferences" in line for line in money)
    classifier = advice_lines(advise(runs_table(classifier_journal()), AdviceRequest(grid=grid)))
    assert any("gCO2e per million inferences at 400 gCO2e/kWh" in line for line in classifier)


def test_a_quantized_runtime_outside_its_thresholds_is_not_advised_with_faithful_outputs_only():
    import polars as pl

    runs = runs_table(g.journal())
    assert "fidelity_acceptable" in runs.columns
    outside = (pl.col("runtime") == g.LLAMA_CPP) & (pl.col("precision") == "int4")
    runs = runs.with_columns(pl.when(outside).then(False).otherwise(pl.col("fidelity_acceptable"))
                             .alias("fidelity_acceptable"))
    cell = _cell(advise(runs), "int4")
    point = next(p for p in cell.runtimes if p.runtime == g.LLAMA_CPP)
    assert point.fidelity == "outside quantized bounds" and not point.eligible
    assert "(--no-faithful-only admits it)" in point.excluded_because
    assert cell.recommended == g.ORT_GENAI and cell.verdict == "only candidate"
    admitted = _cell(advise(runs, AdviceRequest(faithful_only=False)), "int4")
    assert admitted.recommended == g.LLAMA_CPP


def test_a_classifier_cell_is_advised_as_before():
    advice = advise(runs_table(classifier_journal()))
    assert {c.metric for c in advice.cells} <= {"j_per_inference", "latency_p50_ms"}
    assert all(p.energy.metric == "j_per_inference" for c in advice.cells for p in c.runtimes)


def test_the_advice_in_words_says_per_output_token():
    from orchestrator.report.advice_text import advice_lines

    lines = advice_lines(advise(runs_table(g.journal())))
    assert lines[0].startswith("advice: by J per output token (request energy / N);")
    assert any(line.startswith(f"llama-tiny bs1 fp32: recommended {g.LLAMA_CPP}: 0.075 J per output token")
               for line in lines), lines
    classifier = advice_lines(advise(runs_table(classifier_journal())))
    assert classifier[0].startswith("advice: by energy per inference;")


def test_an_adaptive_sweeps_verdict_on_energy_per_inference_answers_the_per_token_ranking():
    from orchestrator.analysis.adaptive import SequentialVerdict

    runs = runs_table(g.journal())
    answer = SequentialVerdict(metric="j_per_inference", verdict="tie", leader=g.LLAMA_CPP, tied=(g.ORT_GENAI,),
                               runtimes=frozenset(g.FP32), note="the verdict rule could not separate them",
                               stops={}, looks=4)
    cell = _cell(advise(runs, AdviceRequest(sequential={("llama-tiny", 1, "fp32"): answer})), "fp32")
    assert cell.verdict == "tie" and cell.tied_with == [g.ORT_GENAI] and cell.metric == "j_per_token"
    assert cell.reasons[0] == "the verdict rule could not separate them"
