"""The runs table's generative columns: present for generate calls, absent from a classifier sweep's table."""
from __future__ import annotations

import pytest

from orchestrator.results.tables import runs_table
from testkit import generative_sweep as g
from testkit.synthetic_sweep import journal as classifier_journal

COLUMNS = ("ttft_ms", "tpot_ms", "output_tokens_per_s", "j_per_prompt_token", "j_per_output_token", "j_per_request",
           "prefill_energy_j", "decode_energy_j", "prefill_edge_uncertainty_j", "prefill_short",
           "prefill_energy_share")


def test_a_generative_run_has_its_columns():
    runs = runs_table(g.journal())
    row = runs.filter(runs["run_id"] == runs["run_id"][0]).row(0, named=True)  # torch fp32, first run: 2.6 J/request
    assert row["ttft_ms"] == pytest.approx(20.0) and row["tpot_ms"] == pytest.approx(5.0)
    assert row["output_tokens_per_s"] == pytest.approx(g.N / ((20 + 5 * 15) / 1e3))
    total = 2.6 * g.ITERATIONS
    assert row["j_per_request"] == pytest.approx(2.6)
    assert row["j_per_prompt_token"] == pytest.approx(total * g.PREFILL_SHARE / (g.ITERATIONS * g.P))
    assert row["j_per_output_token"] == pytest.approx(total * (1 - g.PREFILL_SHARE) / (g.ITERATIONS * (g.N - 1)))
    assert row["prefill_energy_share"] == pytest.approx(g.PREFILL_SHARE)
    assert row["prefill_short"] is False and row["new_tokens"] == g.N
    # the existing per-inference figure is the energy per request: what advise ranks
    assert row["j_per_inference"] == pytest.approx(row["j_per_request"])


def test_without_energy_the_times_stay_and_the_energy_columns_are_empty():
    runs = runs_table(g.journal(energy=False))
    assert runs["tpot_ms"].null_count() == 0
    for column in ("j_per_prompt_token", "j_per_output_token", "j_per_request", "prefill_energy_j"):
        assert runs[column].null_count() == runs.height
    assert "no readable energy sensor" not in "".join(runs["generation_note"].to_list())  # said once: energy_note
    assert runs["energy_note"].str.contains("no readable energy sensor").all()


def test_a_classifier_sweeps_table_keeps_its_columns():
    columns = set(runs_table(classifier_journal()).columns)
    assert not columns & {*COLUMNS, "prompt_tokens", "new_tokens", "generation_note"}
