"""The report's generative section on a synthetic generative sweep: the answer per cell in per-token units, the
table, the figures; and a classifier sweep's report without it."""
from __future__ import annotations

import polars as pl
import pytest

from orchestrator.report.build import build_report
from orchestrator.report.generation_section import TITLE
from testkit import generative_sweep as g
from testkit.browser import layout, probe_script
from testkit.synthetic_sweep import write_sweep


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return build_report(write_sweep(tmp_path_factory.mktemp("llm") / "sweep", g.journal(), with_samples=False))


@pytest.mark.slow  # a full report with its figures
def test_the_section_answers_each_cell_in_per_token_units(report):
    text = report.markdown.read_text()
    assert f"## {TITLE}" in text
    section = text.split(f"## {TITLE}")[1].split("\n## ")[0]
    fp32 = next(line for line in section.splitlines() if "llama-tiny, batch 1, fp32" in line)
    assert "by energy per output token" in fp32 and f"{g.LLAMA_CPP} recommended" in fp32
    assert "J per output token" in fp32 and "95% CI" in fp32
    assert "TTFT 12 ms" in fp32 and "TPOT 2.5 ms" in fp32 and "fidelity: faithful" in fp32
    assert "front (energy per token, p99 per request)" in fp32
    # the findings name a generate call's figures per request, the answer table per output token
    assert "energy, llama-tiny bs1 fp32: llama.cpp←HF 1.2 J/request" in text
    # and its latency by the time per output token, the figure advise and the verdict rule rank it by
    assert "latency, llama-tiny bs1 fp32: llama.cpp←HF 2.5 ms per output token (TPOT)" in text
    assert "the runtime to deploy by J per output token (request energy / N)" in text


@pytest.mark.slow
def test_the_table_has_every_runtime_with_its_phases(report):
    table = pl.read_csv(report.tables["generation"])
    fp32 = table.filter(pl.col("precision") == "fp32")
    assert fp32["runtime"].to_list()[0] == g.LLAMA_CPP  # sorted by the ranking figure
    assert set(fp32["runtime"].to_list()) == set(g.FP32)
    torch = fp32.filter(pl.col("runtime") == g.TORCH).row(0, named=True)
    assert torch["J_per_token_request"] == pytest.approx(2.8 / g.N)
    assert torch["ttft_ms"] == pytest.approx(20.0) and torch["tpot_ms"] == pytest.approx(5.0)
    assert torch["J_per_prompt_token_prefill"] == pytest.approx(2.8 * g.PREFILL_SHARE / g.P)
    assert torch["fidelity"] == "reference (not compared)"
    assert torch["J_per_token_decode"] == pytest.approx(2.8 * (1 - g.PREFILL_SHARE) / (g.N - 1))
    assert fp32.filter(pl.col("runtime") == g.LLAMA_CPP)["verdict"][0] == "recommended"


@pytest.mark.slow
def test_the_figures_are_drawn(report):
    assert {"j_per_output_token", "ttft", "tpot", "pareto-llama-tiny-bs1-fp32"} <= set(report.figures)
    for name in ("j_per_output_token", "ttft", "tpot"):
        assert report.figures[name].stat().st_size > 10_000


@pytest.mark.slow
def test_without_energy_the_section_ranks_by_tpot_and_says_why(tmp_path):
    files = build_report(write_sweep(tmp_path / "sweep", g.journal(energy=False), with_samples=False))
    section = files.markdown.read_text().split(f"## {TITLE}")[1].split("\n## ")[0]
    assert "by time per output token (no energy figure)" in section
    assert "No energy per output token" in section
    assert "j_per_output_token" not in files.figures and "tpot" in files.figures


@pytest.mark.slow
def test_a_classifier_report_has_no_generative_section(tmp_path):
    files = build_report(write_sweep(tmp_path / "sweep", with_samples=False))
    assert TITLE not in files.markdown.read_text() and "generation" not in files.tables


_PROBE = probe_script("""{innerWidth: window.innerWidth, pageWidth: document.documentElement.scrollWidth,
    headings: [...document.querySelectorAll('h2')].map(h => h.textContent),
    tables: [...document.querySelectorAll('table')].map(t => ({right: t.getBoundingClientRect().right,
                                                                 scroll: t.scrollWidth, client: t.clientWidth}))}""")


@pytest.mark.process  # a real headless chromium
def test_the_generative_section_fits_the_page_in_a_browser(report):
    page = layout(report.html, _PROBE, probe=report.html.with_name("probe-generative.html"))
    assert TITLE in page["headings"]
    assert page["pageWidth"] <= page["innerWidth"], page
    for table in page["tables"]:
        assert table["right"] <= page["innerWidth"] and table["scroll"] <= table["client"] + 1, table
