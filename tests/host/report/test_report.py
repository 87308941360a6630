"""The report end to end on the synthetic sweep: files, valid images, a self-contained HTML, honest missing energy."""
import re

import matplotlib.image as mpimg
import polars as pl
import pytest

from orchestrator.report import figures
from orchestrator.report.build import build_report
from testkit.synthetic_sweep import REVISION, unavailable_journal, write_sweep

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Built once: the tests using it only read its files."""
    return build_report(write_sweep(tmp_path_factory.mktemp("report") / "sweep"))


def _assert_valid_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000
    image = mpimg.imread(path)
    assert image.shape[0] > 200 and image.shape[1] > 300
    assert image.std() > 0.01  # not a blank canvas


@pytest.mark.slow  # a full report with its figures
def test_every_figure_png_and_svg_exist_and_render(report):
    assert set(report.figures) == {"latency_p50", "throughput", "energy_per_inference", "energy_split",
                                   "energy_vs_time", "power_trace", "pareto-resnet50-bs2-fp32"}
    for png in report.figures.values():
        _assert_valid_png(png)
        svg = png.with_suffix(".svg")
        assert svg.read_text().lstrip().startswith(("<?xml", "<svg")) and svg.stat().st_size > 5_000


@pytest.mark.slow  # a full report with its figures
def test_markdown_links_exist_and_every_table_has_a_csv(report):
    text = report.markdown.read_text()
    for link in re.findall(r"\]\(([^)]+)\)", text):
        assert (report.markdown.parent / link).exists(), link
    assert {"cells", "cell_statistics", "correlation", "best", "kruskal", "pairwise", "fidelity", "failures",
            "skipped", "provenance", "versions", "time_spent"} <= set(report.tables)
    for csv in report.tables.values():
        assert csv.exists()
    assert pl.read_csv(report.tables["failures"])["failure_kind"].to_list() == ["crash"]
    fidelity = pl.read_csv(report.tables["fidelity"])
    assert fidelity.height == 8 and fidelity["fidelity_faithful"].all()


@pytest.mark.slow  # a full report with its figures
def test_html_is_self_contained(report):
    html = report.html.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", html)  # every src/href is inline data
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert html.count('src="data:image/png;base64,') == len(report.figures)


@pytest.mark.slow  # a full report with its figures
def test_provenance_names_revision_driver_image_and_config(report):
    text = report.markdown.read_text()
    for needle in (REVISION, "999.1", "greenrt/torch:cpu", "feedfacecafe0001", "torch 9.9"):
        assert needle in text, needle


@pytest.mark.slow  # a full report with its figures
def test_findings_name_the_winners_and_the_tie(report):
    text = "\n".join(report.findings)
    assert "energy, resnet50 bs2 fp32: torch" in text and "[best (significant)]" in text
    assert "latency, resnet50 bs2 fp32" in text and "tie with" in text


@pytest.mark.slow  # a full report with its figures
def test_without_energy_the_report_says_why_and_draws_no_energy(tmp_path):
    files = build_report(write_sweep(tmp_path / "sweep", unavailable_journal(), with_samples=False))
    assert not {"energy_per_inference", "energy_split", "energy_vs_time"} & set(files.figures)
    assert not list((files.markdown.parent / "figures").glob("energy*"))
    assert {"latency_p50", "throughput"} <= set(files.figures)
    # Said once, at the top (a caveat of the whole host), never again in a row, a finding or a section.
    reason = "energy unavailable on this host: rapl: no powercap tree at /fake"
    assert reason in files.caveats[0]
    for text in (files.markdown.read_text(), files.html.read_text()):
        assert text.count("no powercap tree at /fake") == 1
        assert text.index(reason) < text.index("Findings")
    assert "powercap" not in "\n".join(files.findings)
    assert "No power samples for run" in files.markdown.read_text()
    cells = pl.read_csv(files.tables["cells"])
    assert cells["J_per_inf"].null_count() == cells.height  # empty, never 0


@pytest.mark.slow  # a full report with its figures
def test_missing_energy_is_never_a_zero_bar(tmp_path, monkeypatch):
    heights = {}
    save = figures._save

    def spy(fig, out_dir, name):
        heights[name] = [p.get_height() for ax in fig.axes for p in ax.patches]
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        heights[name + ":n/a"] = texts.count("n/a")
        return save(fig, out_dir, name)

    monkeypatch.setattr(figures, "_save", spy)
    build_report(write_sweep(tmp_path / "sweep"))
    assert len(heights["energy_per_inference"]) == 3 and min(heights["energy_per_inference"]) > 0
    assert heights["energy_per_inference:n/a"] == 2  # the two mobilenet_v2 cells, measured without energy
    assert all(h > 0 for h in heights["energy_split"])


def test_findings_give_fp32_and_int8_of_one_cell_a_line_each_named_by_precision():
    from orchestrator.analysis.best import best_runtimes
    from orchestrator.report.findings import top_findings

    rows = [{"model": "resnet50", "batch_size": 1, "precision": precision, "runtime": runtime, "status": "ok",
             "latency_p50_ms": base + i, "j_per_inference": None}
            for precision, fast in (("fp32", "torch/native/cpu"), ("int8", "openvino/onnx-from-torch/cpu"))
            for runtime, base in ((fast, 10.0), ("onnxruntime/onnx-from-torch/cpu", 20.0)) for i in range(4)]
    runs = pl.DataFrame(rows, schema_overrides={"j_per_inference": pl.Float64})
    lines = top_findings(best_runtimes(runs, None, {"latency": "latency_p50_ms"}), pl.DataFrame(), None)
    assert [line.split(":")[0] for line in lines] == ["latency, resnet50 bs1 fp32", "latency, resnet50 bs1 int8"]
    assert "torch 11.5 ms p50" in lines[0] and "OV←torch 11.5 ms p50" in lines[1]


@pytest.mark.slow  # draws the report's figures
def test_fp32_and_int8_of_one_runtime_are_drawn_in_panels_of_their_own(tmp_path, monkeypatch):
    from orchestrator.analysis.stats import cell_statistics

    drawn = {}
    save = figures._save

    def spy(fig, out_dir, name):
        drawn[name] = {ax.get_title(): sorted(round(p.get_height()) for p in ax.patches) for ax in fig.axes
                       if ax.get_visible()}
        return save(fig, out_dir, name)

    monkeypatch.setattr(figures, "_save", spy)
    rows = [{"model": "resnet50", "batch_size": 64, "precision": precision, "runtime": runtime, "status": "ok",
             "latency_p50_ms": value + i, "throughput_per_s": 1.0, "j_per_inference": None}
            for runtime, values in (("onnxruntime/onnx-from-torch/cpu", {"fp32": 2473.0, "int8": 713.0}),
                                    ("torch/native/cpu", {"fp32": 7392.0}))
            for precision, value in values.items() for i in range(3)]
    stats = cell_statistics(pl.DataFrame(rows, schema_overrides={"j_per_inference": pl.Float64}))
    colors = figures.runtime_colors(["onnxruntime/onnx-from-torch/cpu", "torch/native/cpu"])
    figures.facet_bars(stats, "latency_p50_ms", "ms", "p50", tmp_path, "latency", colors)
    assert drawn["latency"] == {"resnet50, batch 64, fp32": [2474, 7393], "resnet50, batch 64, int8": [714]}


def _native_gpu_record(index: int, precision: str, repetition: int = 0) -> dict:
    """A torch/native/cuda run compared with torch's CPU outputs, as the sweep records it (models.fidelity)."""
    import numpy as np

    from models.fidelity import compare_outputs
    from testkit.records import make_record

    rng = np.random.default_rng(index)
    reference = {"logits": rng.standard_normal((2, 10)).astype(np.float32)}
    measured = {"logits": (reference["logits"] * (1 + 2e-3)).astype(np.float32)}  # within fp16's, not fp32's
    record = make_record(f"r{repetition:03d}-gpu-{precision}", runtime="torch/native/cuda", index=index)
    record.update(precision=precision, repetition=repetition, samples_path=None, environment="torch", env_vars={})
    record["fidelity"] = {"status": "ok", **compare_outputs(reference, measured, precision=precision)}
    return record


@pytest.mark.slow  # a full report with its figures
def test_the_fidelity_section_shows_native_gpu_runs_by_their_own_criterion_and_says_how_they_are_judged(tmp_path):
    from testkit.synthetic_sweep import journal

    records = journal()
    records += [_native_gpu_record(len(records), "fp16"), _native_gpu_record(len(records) + 1, "fp32")]
    files = build_report(write_sweep(tmp_path / "sweep", records))
    text = " ".join(files.markdown.read_text().split())
    for needle in ("a framework's native GPU run (torch, TensorFlow, MXNet on cuda) with the same framework's CPU "
                   "outputs", "fp16 and tf32 runs are judged by their own stated tolerance, not fp32's: 0.001 + 0.03 x "
                   "max|reference| and cosine at least 0.999", "fails with kind 'output'"):
        assert needle in text, needle
    fidelity = pl.read_csv(files.tables["fidelity"])
    gpu = fidelity.filter(pl.col("runtime") == "torch/native/cuda").sort("precision")
    assert gpu.select("precision", "fidelity_criterion", "fidelity_faithful").rows() == [
        ("fp16", "fp16", True), ("fp32", "fp32", False)]  # the same 0.2 % error: within fp16's bound, not fp32's
    # Converted models are still there; native CPU runs (the references themselves) are not.
    assert set(fidelity["runtime"]) == {"onnxruntime/onnx-from-torch/cpu", "torch/native/cuda"}


def test_a_sweep_without_a_single_run_reports_that_there_are_none(tmp_path):
    """Every cell skipped: the report is written (no traceback) and says there are no runs, and why."""
    from orchestrator.analysis.advice import advise
    from orchestrator.results.tables import read_runs, write_tables

    root = write_sweep(tmp_path / "sweep", [], with_samples=False)
    journal = read_runs(root / "runs.jsonl", root)
    written = write_tables(root / "tables", [], {"skipped": []}, runs=journal.runs)
    assert {"model", "batch_size", "runtime", "status"} <= set(pl.read_parquet(written["runs.parquet"]).columns)
    files = build_report(root)
    assert files.findings == ["no runs: all 1 of the sweep's cell(s) were skipped on this host, so nothing was "
                              "measured; the reasons are under 'Failed and skipped' (tables/skipped)"]
    text = files.markdown.read_text()
    assert files.findings[0] in text and "No runs: nothing was measured." in text
    assert "Latency and throughput were measured" not in text and "energy unavailable on this host" not in text
    assert "mxnet/native/cuda" in text  # the skipped cell, with its reason
    assert advise(journal.runs).cells == []
