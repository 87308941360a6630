"""The Python API: the docs' notebook example runs as written, and the API answers what the CLI prints."""
from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from orchestrator import api
from orchestrator.cli import app
from testkit.synthetic_sweep import ORT, TORCH, write_sweep
from testkit.paths import DOCS

DOC = DOCS / "api.md"


def notebook_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1, "docs/api.md has one runnable ```python block: the notebook example"
    return blocks[0]


def test_the_docs_notebook_example_runs_on_a_recorded_sweep(tmp_path, monkeypatch, capsys):
    write_sweep(tmp_path / "results" / "study")
    monkeypatch.chdir(tmp_path)
    exec(compile(notebook_example(), str(DOC), "exec"), {})
    printed = capsys.readouterr().out
    assert "resnet50" in printed and "mobilenet_v2" in printed
    assert "package-0" in printed and "gpu-0" in printed  # the samples of one run, per channel
    assert f"resnet50 2 recommended {TORCH}" in printed  # lowest J/inference (1.0..1.4 against 2.0.. and 3.0..)


def test_cells_carry_the_median_and_interval_of_each_metric(tmp_path):
    study = write_sweep(tmp_path / "study")
    cells = api.load_cells(study)
    torch = cells.filter((cells["runtime"] == TORCH) & (cells["model"] == "resnet50")
                         & (cells["metric"] == "j_per_inference")).row(0, named=True)
    assert torch["n"] == 5 and torch["median"] == pytest.approx(1.2)
    assert torch["ci_low"] < 1.2 < torch["ci_high"]
    runs = api.load_runs(study)
    assert runs.filter(runs["runtime"] == ORT)["status"].to_list().count("failed") == 1


def test_samples_of_an_unknown_run_name_the_valid_ones(tmp_path):
    study = write_sweep(tmp_path / "study")
    with pytest.raises(api.UserError, match=r"run 'nope': not in .*runs.jsonl; valid: r000-resnet50"):
        api.load_samples(study, "nope")
    without = api.load_runs(study)["run_id"][1]
    with pytest.raises(api.UserError, match="no samples kept"):
        api.load_samples(study, without)


def test_a_directory_without_a_plan_is_one_line(tmp_path):
    with pytest.raises(api.UserError, match="plan.json"):
        api.load_runs(tmp_path)


def test_advise_is_what_the_cli_prints_as_json(tmp_path):
    study = write_sweep(tmp_path / "study")
    printed = CliRunner().invoke(app, ["advise", str(study), "--json", "--objective", "latency"])
    assert printed.exit_code == 0, printed.output
    assert api.advise(study, objective="latency").model_dump(mode="json") == json.loads(printed.stdout)
    with pytest.raises(api.UserError, match="unknown objective 'speed'; valid: energy"):
        api.advise(study, objective="speed")


@pytest.mark.slow  # a full report with its figures
def test_finish_writes_tables_and_report_and_advises(tmp_path):
    study = write_sweep(tmp_path / "study")
    done = api.finish(study, advise=True)
    assert done.tables == ["runs.csv", "runs.parquet", "skipped.csv", "skipped.parquet"]
    assert all((study / "tables" / name).exists() for name in done.tables)
    assert done.report.markdown == study / "report" / "report.md" and done.report.markdown.exists()
    assert done.advice is not None and done.advice_error is None
    assert done.advice.model_dump() == api.advise(study).model_dump()
    summary = done.summary.filter((done.summary["runtime"] == ORT) & (done.summary["model"] == "resnet50"))
    assert summary.row(0, named=True)["failed"] == 1
