"""The results directory: one sweep per directory, an append-only journal that survives damage."""
import json

import pytest

from orchestrator.planning.config import parse_config
from orchestrator.errors import UserError
from orchestrator.planning.planner import HostCapabilities, plan_sweep
from orchestrator.results.store import ResultsDir
from records import make_record


def plan_for(**change):
    data = {"name": "t", "models": ["resnet50"], "batch_sizes": [1], "runtimes": ["torch/native/cpu"], **change}
    return plan_sweep(parse_config(data), HostCapabilities())


def test_a_directory_resumes_its_own_sweep_and_refuses_another(tmp_path):
    results = ResultsDir(tmp_path / "out")
    results.open_for(plan_for())
    results.open_for(plan_for())  # same sweep: resumes
    with pytest.raises(UserError, match="holds another sweep"):
        results.open_for(plan_for(batch_sizes=[64]))
    assert json.loads(results.plan_path.read_text())["runs"][0]["cell"]["batch_size"] == 1


def test_journal_appends_and_reads_back(tmp_path):
    results = ResultsDir(tmp_path)
    results.append(make_record("r000-a"))
    results.append(make_record("r000-b"))
    records, problems = results.records()
    assert [r.run_id for r in records] == ["r000-a", "r000-b"]
    assert problems == []
    assert results.recorded_run_ids() == {"r000-a", "r000-b"}


def test_a_corrupt_line_is_reported_with_its_number_and_the_rest_stays_usable(tmp_path):
    results = ResultsDir(tmp_path)
    results.append(make_record("r000-a"))
    with open(results.journal_path, "a") as fh:
        fh.write('{"run_id": "r000-half", "mod\n')  # a write cut short by a crash
    results.append(make_record("r000-c"))
    records, problems = results.records()
    assert [r.run_id for r in records] == ["r000-a", "r000-c"]
    assert len(problems) == 1 and problems[0].line == 2
    assert "runs.jsonl:2: unreadable record" in problems[0].message


def test_a_file_where_the_directory_should_be_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="exists and is not a directory"):
        ResultsDir(tmp_path / "f")
