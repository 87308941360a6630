"""A compiled runtime that compiled inside its window is kept, and the report says so (never hidden)."""
from orchestrator.report.findings import compile_findings
from orchestrator.results.tables import runs_table
from testkit.records import make_record


def test_the_report_warns_about_a_run_that_compiled_inside_its_window():
    clean, dirty = (make_record(name, runtime="torch/inductor/cpu", index=i) for i, name in enumerate(("a", "b")))
    clean["result"]["runtime_facts"] = {"compiles_in_window": 0, "window_clean": True}
    dirty["result"]["runtime_facts"] = {"compiles_in_window": 2, "window_clean": False}
    assert compile_findings(runs_table([clean])) == []
    [line] = compile_findings(runs_table([clean, dirty]))
    assert line.startswith("warning: 1 run(s) compiled inside their measured window")
    assert "torch/inductor/cpu resnet50 bs2: 2 compile(s)" in line
