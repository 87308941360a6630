"""What holds for the whole host is said once, at the top of advise and of the summary a sweep ends with; each
row says only what differs from it (issue 22: the reason energy is unavailable was repeated in every row)."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.report.advice_text import advice_lines
from orchestrator.report.advising import compute_advice
from orchestrator.report.host_caveats import host_caveats
from testkit.synthetic_sweep import journal, unavailable_journal, write_sweep

REASON = "rapl: no powercap tree at /fake"
runner = CliRunner()


def test_energy_unavailable_on_the_host_is_one_caveat_above_the_cells_and_in_no_row(tmp_path):
    advice = compute_advice([write_sweep(tmp_path / "sweep", unavailable_journal(), with_samples=False)]).advice
    lines = advice_lines(advice)
    said = [i for i, line in enumerate(lines) if REASON in line]
    assert len(said) == 1 and lines[said[0]].startswith("caveat: energy unavailable on this host: " + REASON)
    first_cell = next(i for i, line in enumerate(lines) if line.startswith(("mobilenet_v2", "resnet50")))
    assert said[0] < first_cell
    # What differs per row stays in the row: too few repetitions in one cell, a failed run in the other.
    assert any(line.startswith("  why: 1 repetition: run at least 4 (with 2 runtimes") for line in lines)
    assert "  why: onnxruntime/onnx-from-torch/cpu: 1 of 6 runs failed (crash)" in lines
    assert not any("front" in line for line in lines)  # "no front: energy unavailable" was the row's second copy


def test_a_reason_that_differs_between_cells_stays_in_its_row(tmp_path):
    """resnet50 has energy, mobilenet_v2 has none: not the host's caveat, so the mobilenet_v2 rows say it."""
    advice = compute_advice([write_sweep(tmp_path / "sweep", journal(), with_samples=False)]).advice
    caveats = host_caveats(advice)
    assert caveats.energy is None and not caveats.repetitions
    assert not any("energy unavailable" in line for line in caveats.lines)
    lines = advice_lines(advice)
    assert any(line.startswith("  no front: energy unavailable on this host") for line in lines)


@pytest.mark.slow  # the report verb builds the whole report
def test_the_summary_a_sweep_ends_with_says_it_once_before_the_table(tmp_path):
    root = write_sweep(tmp_path / "sweep", unavailable_journal(), with_samples=False)
    result = runner.invoke(app, ["report", str(root)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.count(REASON) == 1
    assert out.index("caveat: energy unavailable on this host") < out.index("cells (median over repetitions)")
    assert "n/a (unavailable)" not in out  # the J/inference cells say n/a; the caveat says why


def test_advise_says_it_once(tmp_path):
    root = write_sweep(tmp_path / "sweep", unavailable_journal(), with_samples=False)
    result = runner.invoke(app, ["advise", str(root)])
    assert result.exit_code == 0, result.output
    assert result.output.count(REASON) == 1
    assert "caveat: One host (Synthetic CPU (4 CPUs); no GPU)" in result.output


def test_a_generative_sweep_without_energy_says_it_is_ranked_by_time_per_output_token():
    from orchestrator.analysis.advice import advise
    from orchestrator.report.host_caveats import host_caveats
    from orchestrator.results.tables import runs_table
    from testkit import generative_sweep as g

    caveats = host_caveats(advise(runs_table(g.journal(energy=False))))
    energy = [line for line in caveats.lines if line.startswith("energy unavailable")]
    assert len(energy) == 1 and "ranked by time per output token (TPOT) instead of energy" in energy[0], energy
    assert "p50 latency" not in energy[0]
