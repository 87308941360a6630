"""The report's client-language section (report/client_section.py), client ids in labels, and old sweeps unchanged."""

import polars as pl
import pytest

from orchestrator.analysis.advice import AdviceRequest, advise
from orchestrator.analysis.clients import client_groups
from orchestrator.report.answer import answer_table
from orchestrator.report.build import build_report
from orchestrator.report.client_section import FIGURE, TITLE, cell_table
from orchestrator.report.figures import runtime_label, sorted_runtimes
from orchestrator.report.host_caveats import HostCaveats
from orchestrator.results.tables import runs_table
from testkit.browser import layout, probe_script
from testkit.client_journals import ORT_NODE, ORT_PLAIN, ORT_PY, TS_CPP, TS_PY, gap_journal
from testkit.synthetic_sweep import journal, write_sweep


def test_client_ids_read_naturally_in_figures():
    assert runtime_label(ORT_NODE) == "ORT←torch (Node.js)"
    assert runtime_label(ORT_PY) == "ORT←torch (Python)" != runtime_label(ORT_PLAIN) == "ORT←torch"
    assert runtime_label(TS_CPP) == "torch torchscript (C++)"
    assert runtime_label("onnxruntime/onnx-from-torch/cuda") == "ORT←torch [cuda]"
    # a runtime's clients sit beside it, the plain id first
    assert sorted_runtimes([ORT_NODE, "torch/native/cpu", ORT_PY, ORT_PLAIN]) == [
        "torch/native/cpu", ORT_PLAIN, ORT_PY, ORT_NODE]


def test_cell_table_has_a_row_per_client_and_metric_with_the_verdict():
    groups = {(g.batch_size, g.base): g for g in client_groups(runs_table(gap_journal(energy=True)))}
    table = cell_table(groups[(1, ORT_PLAIN)])
    assert table["client"].to_list() == ["Python (@python)", "Node.js (@node)"] * 2
    assert table["metric"].to_list() == ["p50 ms", "p50 ms", "J per inference", "J per inference"]
    assert table["runtime"].to_list() == [ORT_PY, ORT_NODE] * 2
    node = table.row(1, named=True)
    assert node["vs Python (95% CI)"].startswith("x1.") and node["Holm p"] < 0.05
    assert "slower than Python" in node["verdict"]
    assert table.row(0, named=True)["vs Python (95% CI)"] == "reference"


def test_the_answer_says_which_client_to_use():
    advice = advise(runs_table(gap_journal()), AdviceRequest(objective="latency"))
    answers = answer_table(advice, HostCaveats(()))["answer"].to_list()
    assert f"{ORT_PY}; client: Python" in answers
    assert any(a.endswith("; client: not told apart") for a in answers)


@pytest.fixture(scope="module")
def client_report(tmp_path_factory):
    return build_report(write_sweep(tmp_path_factory.mktemp("clients") / "sweep", gap_journal(energy=True),
                                    with_samples=False))


@pytest.mark.slow  # a full report with its figures
def test_a_sweep_with_clients_has_the_section_its_tables_and_its_figure(client_report):
    text = client_report.markdown.read_text()
    assert f"## {TITLE}" in text
    assert text.index(f"## {TITLE}") < text.index("## Recommendations")
    assert "resnet50, batch 1, fp32, onnxruntime/onnx-from-torch/cpu: each client against Python" in text
    assert "torch/torchscript/cpu@cpp" in text and "% faster than Python (Holm p" in text
    assert "no difference detected at this sample size" in text
    png = client_report.figures[FIGURE]
    assert png.exists() and png.stat().st_size > 10_000 and png.with_suffix(".svg").exists()
    everything = pl.read_csv(client_report.tables["clients"])
    assert set(everything["runtime"].to_list()) == {ORT_PY, ORT_NODE, TS_PY, TS_CPP}
    assert "client" in pl.read_csv(client_report.tables["recommendations"]).columns


@pytest.mark.slow  # a full report with its figures
def test_a_sweep_without_client_suffix_renders_as_before(tmp_path):
    files = build_report(write_sweep(tmp_path / "sweep", journal(), with_samples=False))
    text = files.markdown.read_text()
    assert TITLE not in text and "client" not in text.lower()
    assert FIGURE not in files.figures and not [t for t in files.tables if t.startswith("clients")]
    assert "client" not in pl.read_csv(files.tables["recommendations"]).columns


_PROBE = probe_script("""{innerWidth: window.innerWidth, pageWidth: document.documentElement.scrollWidth,
    answerBottom: document.getElementById('answer').getBoundingClientRect().bottom, innerHeight: window.innerHeight,
    tables: [...document.querySelector('section[id^="client-languages"]').querySelectorAll('table')].map(t => ({
      right: t.getBoundingClientRect().right, scroll: t.scrollWidth, client: t.clientWidth})),
    images: [...document.querySelector('section[id^="client-languages"]').querySelectorAll('img')].map(
      i => i.naturalWidth)}""")


@pytest.mark.process  # a real headless chromium
def test_the_client_section_fits_the_page_in_a_browser(client_report, tmp_path):
    page = layout(client_report.html, _PROBE, probe=tmp_path / "probe.html")
    assert len(page["tables"]) == 3 and page["images"] and all(width > 300 for width in page["images"]), page
    assert page["pageWidth"] <= page["innerWidth"], page
    assert page["answerBottom"] <= page["innerHeight"], page  # the client words keep the answer on the first screen
    for table in page["tables"]:
        assert table["right"] <= page["innerWidth"] and table["scroll"] <= table["client"] + 1, table
