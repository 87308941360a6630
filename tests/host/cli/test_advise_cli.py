"""`greenrt advise` and the report's opening on the synthetic sweep (tests/host/testkit/synthetic_sweep.py).

The synthetic sweep's right answers (see its docstring): resnet50 bs2 energy, torch 1.0..1.4 J against ORT
2.0..2.4 and TF 3.0..3.4, five runs each, so torch is significantly lowest (2 comparisons: torch against each, Holm p 2 x 2/252);
mobilenet_v2 has no energy and torch a single run: latency instead, not enough evidence.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.analysis.advice_schema import Advice, json_schema_text
from orchestrator.cli import app
from orchestrator.report.build import build_report
from testkit.synthetic_sweep import ORT, TF, TORCH, write_sweep
from testkit.paths import DOCS

runner = CliRunner()
DOCS_SCHEMA = DOCS / "advise-schema.json"


def advise_json(*args: str) -> Advice:
    result = runner.invoke(app, ["advise", *args, "--json"])
    assert result.exit_code == 0, result.output
    return Advice.model_validate(json.loads(result.stdout))


def test_json_advice_of_the_synthetic_sweep(tmp_path):
    root = write_sweep(tmp_path / "sweep")
    advice = advise_json(str(root))
    mbv2, r50 = advice.cells
    assert (r50.model, r50.verdict, r50.recommended, r50.objective_used) == ("resnet50", "recommended", TORCH, "energy")
    assert r50.figure.median == pytest.approx(1.2) and r50.separation.runner_up == ORT
    assert r50.separation.p_holm == pytest.approx(2 * 2 / 252) and r50.separation.comparisons == 2
    assert r50.front == [TORCH] and advice.hosts[0].signature.startswith("Synthetic CPU (4 CPUs); no GPU")
    assert (mbv2.objective_used, mbv2.verdict, mbv2.leader) == ("latency", "not enough evidence", TORCH)
    assert mbv2.reasons[0].startswith("1 repetition: run at least 4")
    assert not (root / "report").exists()  # advice writes nothing


def test_text_advice_names_the_verdict_the_test_and_the_front(tmp_path):
    root = write_sweep(tmp_path / "sweep")
    result = runner.invoke(app, ["advise", str(root), "--grid-intensity-g-per-kwh", "360"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"resnet50 bs2 fp32: recommended {TORCH}: 1.2 J per inference (median of 5 runs; mean 1.2, 95% CI" in out
    assert "Holm p 0.01587 over 2 comparisons" in out and f"Pareto front (energy, p99): {TORCH}" in out
    # 1.2 J x 1e6 / 3.6e6 = 1/3 kWh x 360 g = 120 g, and the figures used are named.
    assert "carbon: 120 gCO2e per million inferences at 360 gCO2e/kWh, no PUE (measured energy only)" in out
    assert "why: 1 repetition: run at least 4" in out


def test_the_latency_limit_moves_the_recommendation(tmp_path):
    root = write_sweep(tmp_path / "sweep")
    advice = advise_json(str(root), "--model", "resnet50", "--objective", "latency", "--max-p99-ms", "20")
    (cell,) = advice.cells
    # ORT's p99 is 22 ms: out; torch and TF have the same latencies: a tie.
    assert cell.verdict == "tie" and {cell.leader, *cell.tied_with} == {TORCH, TF}
    assert next(p for p in cell.runtimes if p.runtime == ORT).excluded_because == "p99 22 ms is above the limit of 20 ms"


@pytest.mark.parametrize("args, line", [
    (["--objective", "speed"], "error: unknown objective 'speed'; valid: energy, latency, edp, carbon, cost"),
    (["--model", "bert-base-uncased"], "error: --model bert-base-uncased: no run of it in these directories; "
                                       "valid: mobilenet_v2, resnet50"),
    (["--batch-size", "8"], "error: --batch-size 8: no run of it in these directories; valid: 1, 2"),
    (["--pue", "0.5"], "error: --pue: 0.5 is below 1"),
    (["--price-per-kwh", "nan"], "error: --price-per-kwh: nan is not a finite positive number"),
    (["--objective", "carbon"], "error: --objective carbon needs --grid-intensity-g-per-kwh"),
    (["--max-p99-ms", "-3"], "error: --max-p99-ms: -3.0 is not a finite positive number"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, line):
    root = write_sweep(tmp_path / "sweep")
    result = runner.invoke(app, ["advise", str(root), *args])
    assert result.exit_code == 2
    assert result.output.strip().startswith(line) and len(result.output.strip().splitlines()) == 1, result.output


def test_not_a_results_directory(tmp_path):
    result = runner.invoke(app, ["advise", str(tmp_path)])
    assert result.exit_code == 2 and "not a greenrt results directory (no plan.json)" in result.output


def _other_host(root: Path) -> None:
    host = json.loads((root / "host.json").read_text())
    host["cpu_model"] = "Another CPU"
    (root / "host.json").write_text(json.dumps(host))


def test_directories_pool_only_when_their_hosts_match(tmp_path):
    a, b, c = (write_sweep(tmp_path / name) for name in "abc")
    pooled = advise_json(str(a), str(b), "--model", "resnet50")
    assert pooled.pooling == "2 directories pooled: one host signature"
    assert pooled.cells[0].figure.runs == 10 and pooled.cells[0].sources == [str(a), str(b)]
    _other_host(c)
    apart = advise_json(str(a), str(c), "--model", "resnet50")
    assert apart.pooling.startswith("2 hosts (their signatures differ)")
    assert [(cell.host.split(" (")[0], cell.figure.runs) for cell in apart.cells] == [("Another CPU", 5),
                                                                                     ("Synthetic CPU", 5)]


def _set_grid(root: Path, **figures) -> None:
    plan = json.loads((root / "plan.json").read_text())
    plan["config"] = {"report": figures}
    (root / "plan.json").write_text(json.dumps(plan))


def test_grid_figures_from_the_config_and_disagreeing_directories(tmp_path):
    a, b = write_sweep(tmp_path / "a"), write_sweep(tmp_path / "b")
    _set_grid(a, grid_intensity_g_per_kwh=360.0, price_per_kwh=0.5)
    cell = advise_json(str(a), "--model", "resnet50", "--objective", "cost").cells[0]
    assert cell.figure.median == pytest.approx(1.2 / 3.6 * 0.5)
    _set_grid(b, grid_intensity_g_per_kwh=100.0)
    result = runner.invoke(app, ["advise", str(a), str(b)])
    assert result.exit_code == 2 and "report.grid_intensity_g_per_kwh differ" in result.output
    advice = advise_json(str(a), str(b), "--grid-intensity-g-per-kwh", "720")
    assert advice.grid.grid_intensity_g_per_kwh == 720.0 and advice.grid.price_per_kwh == 0.5


def test_the_schema_in_docs_is_the_models_schema():
    assert DOCS_SCHEMA.read_text() == json_schema_text(), "run: python -m orchestrator.analysis.advice_schema " \
                                                          "> docs/advise-schema.json"


@pytest.mark.slow  # a full report with its figures
def test_the_report_opens_with_the_recommendations_and_draws_the_pareto_figures(tmp_path):
    root = write_sweep(tmp_path / "sweep")
    files = build_report(root)
    md = files.markdown.read_text()
    sections = [line for line in md.splitlines() if line.startswith("## ")]
    # The answer first (one short row per cell), then the figures; the wide recommendations table after them.
    assert sections[:3] == ["## The answer", "## Energy against latency: the Pareto front", "## Findings"]
    assert sections.index("## Recommendations") > sections.index("## Latency and throughput")
    assert ("| resnet50 bs2 fp32 | torch/native/cpu | 1.2 J per inference | runner-up onnxruntime/onnx-from-torch/cpu "
            "+83% | significant, Holm p 0.01587 (5 runs) | – |") in md
    assert "| resnet50 | 2 | fp32 | recommended | torch/native/cpu |" in md
    assert "gCO2e_per_million" not in md  # no grid figure given: no carbon column, never a default
    assert "mobilenet_v2, batch 1, fp32: no front: energy unavailable on this host" in md
    png = files.figures["pareto-resnet50-bs2-fp32"]
    assert png.exists() and png.with_suffix(".svg").exists() and "pareto-mobilenet_v2-bs1-fp32" not in files.figures
    html = files.html.read_text()
    assert html.index("<h2>The answer</h2>") < html.index("<h2>Findings</h2>") < html.index("<h2>Recommendations</h2>")
    assert (root / "report" / "tables" / "recommendations.csv").exists()


@pytest.mark.slow  # a full report with its figures
def test_report_command_shows_carbon_and_cost_with_the_figures_used(tmp_path):
    root = write_sweep(tmp_path / "sweep")
    result = runner.invoke(app, ["report", str(root), "--grid-intensity-g-per-kwh", "400", "--pue", "1.2",
                                 "--price-per-kwh", "0.3"])
    assert result.exit_code == 0, result.output
    md = (root / "report" / "report.md").read_text()
    # 1.2 J: 1/3 kWh per million, x 1.2 = 0.4 kWh: 160 g and 0.12.
    assert "| 160 | 0.12 |" in md
    assert "gCO2e per million inferences at 400 gCO2e/kWh, PUE 1.2" in md
    bad = runner.invoke(app, ["report", str(root), "--pue", "0"])
    assert bad.exit_code == 2 and bad.output.strip() == "error: --pue: 0.0 is not a finite positive number"
