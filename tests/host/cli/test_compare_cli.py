"""`greenrt report DIR` and `greenrt compare A B` through the command line."""
import polars as pl
import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from testkit.synthetic_sweep import journal, write_sweep

runner = CliRunner()


@pytest.mark.slow  # a full report with its figures
def test_report_command_writes_the_report_and_prints_findings(tmp_path):
    root = write_sweep(tmp_path / "sweep")
    result = runner.invoke(app, ["report", str(root)])
    assert result.exit_code == 0, result.output
    assert "top findings" in result.output and "[best (significant)]" in result.output
    assert f"report: {root / 'report' / 'report.md'}" in result.output.replace("\n", "")
    assert (root / "report" / "report.html").exists() and (root / "tables" / "runs.csv").exists()


@pytest.mark.slow  # a full report with its figures
def test_report_command_can_trace_a_chosen_run_and_refuses_an_unknown_one(tmp_path):
    root = write_sweep(tmp_path / "sweep")
    result = runner.invoke(app, ["report", str(root), "--trace-run", "nope"])
    assert result.exit_code == 2 and "--trace-run nope: no such run" in result.output


def test_compare_writes_markdown_and_csv(tmp_path):
    a = write_sweep(tmp_path / "a")
    slower = journal()
    for r in slower:
        if r["status"] == "ok":
            r["result"]["latencies_ns"] = [3 * x for x in r["result"]["latencies_ns"]]
    b = write_sweep(tmp_path / "b", slower)
    result = runner.invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    table = pl.read_csv(tmp_path / "cmp" / "comparison.csv")
    assert table.height == 5
    assert table["latency_ratio"].to_list() == [3.0] * 5
    assert table.filter(pl.col("model") == "resnet50")["latency_significant"].to_list() == [True, True, True]
    assert "synthhost" in (tmp_path / "cmp" / "comparison.md").read_text()


def test_compare_refuses_a_bad_directory_in_one_line(tmp_path):
    a = write_sweep(tmp_path / "a")
    (tmp_path / "empty").mkdir()
    for args in ([str(a), str(tmp_path / "missing")], [str(tmp_path / "empty"), str(a)]):
        result = runner.invoke(app, ["compare", *args])
        assert result.exit_code == 2
        assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
