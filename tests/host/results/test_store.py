"""The results directory: one sweep per directory, an append-only journal that survives damage."""
import json

import pytest

from orchestrator.planning.config import parse_config
from orchestrator.errors import UserError
from orchestrator.planning.planner import HostCapabilities, plan_sweep
from orchestrator.results.store import ResultsDir
from testkit.records import make_record


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


def test_more_repetitions_extend_the_recorded_sweep_and_fewer_are_refused(tmp_path):
    results = ResultsDir(tmp_path / "out")
    two = plan_for(runtimes=["torch/native/cpu", "onnxruntime/onnx-from-torch/cpu"], repetitions=2)
    results.open_for(two)
    three = plan_for(runtimes=["torch/native/cpu", "onnxruntime/onnx-from-torch/cpu"], repetitions=3)
    said = results.open_for(three)
    assert said is not None and "repetitions 2 -> 3: 2 runs added after the 4 planned before" in said
    written = json.loads(results.plan_path.read_text())
    assert [r["run_id"] for r in written["runs"]] == [r.run_id for r in three.runs]
    assert [r["run_id"] for r in written["runs"][:4]] == [r.run_id for r in two.runs]  # recorded runs keep their place
    assert [(e["from"], e["to"]) for e in written["extended"]] == [(2, 3)]
    assert results.open_for(three) is None  # the extended sweep now resumes as itself
    before = results.plan_path.read_bytes()
    with pytest.raises(UserError, match=r"repetitions = 3; this config asks for 2: valid: repetitions = 3 or more"):
        results.open_for(two)
    with pytest.raises(UserError, match="holds another sweep"):  # another change beside the repetitions
        results.open_for(plan_for(runtimes=["torch/native/cpu"], repetitions=4))
    assert results.plan_path.read_bytes() == before


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


def test_resume_counts_as_done_only_what_the_full_reader_reads(tmp_path):
    from orchestrator.results.record import INTERRUPTED
    from orchestrator.results.journal import read_journal
    from orchestrator.results.journal_scan import done_run_ids, journal_problems

    results = ResultsDir(tmp_path)
    for run_id, status in (("r000-a", "ok"), ("r000-b", "failed"), ("r000-c", INTERRUPTED), ("r000-d", "ok")):
        results.append({**make_record(run_id, status="ok" if status == INTERRUPTED else status), "status": status})
    full = {r.run_id for r in read_journal(results.journal_path)[0] if r.status != INTERRUPTED}
    data = results.journal_path.read_bytes()
    assert done_run_ids(results.journal_path) == full == results.recorded_run_ids() == {"r000-a", "r000-b", "r000-d"}
    # A line of another shape (cut short, hand-written, nested run_id last) or whose fields have the wrong type
    # (which a reader of a few typed fields once took as done) holds no readable record: not done, and damage.
    wrong = json.dumps({**make_record("r000-w"), "wall_seconds": "x"}, sort_keys=True).encode() + b"\n"
    for odd in (b'{"run_id": "r000-half", "mod\n', b'{"status": "ok", "run_id": "r000-x"}\n',
                b'{"result": {"run_id": "r000-y", "status": "ok"}}\n', wrong):
        (tmp_path / "odd.jsonl").write_bytes(data + odd)
        assert done_run_ids(tmp_path / "odd.jsonl") == full
        assert [p.line for p in journal_problems(tmp_path / "odd.jsonl")] == [5]
