"""A journal line is data only if it is a valid record; results files that are links, loops, FIFOs or folders are
refused in one line; no file outside a results folder is read because a record names it. Each case damages a copy
of a recorded results folder and drives the verbs in-process (point 4 of issue 22)."""
from __future__ import annotations

import os

import pytest

from orchestrator.errors import UserError
from orchestrator.planning.planner import Plan
from orchestrator.results.journal_scan import done_run_ids, journal_problems
from orchestrator.results.store import ResultsDir
from testkit.damaged_folders import answered, digest, invoke, journal_lines, recorded_folder, write_lines

WRONG_TYPES = [("wall_seconds", "x"), ("energy", 5), ("batch_size", None), ("result", [1]),
               ("result.latencies_ns", "x"), ("result.window_start_ns", [0]), ("energy.channels", [1]),
               ("result.node_placement", {"status": "ok", "cpu_op_types": [1]}), ("launch", "x")]


def _set(obj: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        obj = obj[key]
    obj[last] = value


@pytest.mark.parametrize("field,value", WRONG_TYPES, ids=[f for f, _ in WRONG_TYPES])
def test_a_line_of_wrong_types_is_damage_everywhere(tmp_path, field, value):
    root = recorded_folder(tmp_path / "sweep")
    lines = journal_lines(root)
    _set(lines[0], field, value)
    write_lines(root, lines)
    journal = root / "runs.jsonl"
    # The strict reader decides: status counts the line, resume measures its run again.
    assert [p.line for p in journal_problems(journal)] == [1]
    assert lines[0]["run_id"] not in done_run_ids(journal)
    status = invoke("status", str(root))
    assert answered(status) is None
    assert "runs.jsonl: 1 unreadable line(s) (1;" in status.output
    report = invoke("report", str(root))
    assert answered(report) is None and report.exit_code == 0, report.output
    assert "1 unreadable line(s) (1;" in report.output
    assert answered(invoke("advise", str(root))) is None
    assert answered(invoke("compare", str(root), str(root), "--out", str(tmp_path / "cmp"))) is None


def _link_loop(path):
    path.unlink()
    os.symlink(path.name, path)


def _fifo(path):
    path.unlink()
    os.mkfifo(path)


def _folder(path):
    path.unlink()
    path.mkdir()


def _link_out(path):
    outside = path.parents[1] / f"outside-{path.name}"
    outside.write_bytes(path.read_bytes())
    path.unlink()
    os.symlink(outside, path)


KINDS = {"loop": _link_loop, "fifo": _fifo, "folder": _folder, "link-out": _link_out}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_journal_that_is_not_a_file_is_refused_and_resume_writes_nothing(tmp_path, kind):
    root = recorded_folder(tmp_path / "sweep")
    KINDS[kind](root / "runs.jsonl")
    before = digest(root)
    results = ResultsDir(root)
    with pytest.raises(UserError, match="journal"):
        done_run_ids(results.journal_path)
    # A resume refuses before anything is written: no baseline.json, no host.json, no plan rewritten.
    with pytest.raises(UserError, match="journal"):
        results.open_for(Plan.from_dict(results.read_plan()))
    assert digest(root) == before
    for verb in ("status", "report", "advise"):
        outcome = invoke(verb, str(root))
        assert answered(outcome) is None, (verb, outcome.output)
    assert digest(root, skip=("tables", "report")) == before


@pytest.mark.parametrize("name", ["plan.json", "host.json", "baseline.json"])
@pytest.mark.parametrize("kind", ["loop", "fifo", "folder"])
def test_results_json_files_that_are_not_files_are_never_read(tmp_path, name, kind):
    root = recorded_folder(tmp_path / "sweep")
    (root / name).write_text("{}") if not (root / name).exists() else None
    KINDS[kind](root / name)
    before = digest(root)
    for verb in ("status", "report", "advise"):
        outcome = invoke(verb, str(root))
        assert answered(outcome) is None, (verb, outcome.output)
    assert digest(root, skip=("tables", "report")) == before
    if name != "plan.json":
        assert name in invoke("status", str(root)).output


@pytest.mark.parametrize("named", ["/etc/hostname", "../outside.parquet", "samples/../../outside.parquet",
                                   "samples/link.parquet"])
def test_a_samples_path_outside_the_folder_is_never_read(tmp_path, named):
    from orchestrator.results.results_files import samples_file

    root = recorded_folder(tmp_path / "sweep")
    (tmp_path / "outside.parquet").write_bytes(b"PAR1 not really PAR1")
    (root / "samples").mkdir(exist_ok=True)
    os.symlink(tmp_path / "outside.parquet", root / "samples" / "link.parquet")
    lines = journal_lines(root)
    for line in lines:
        line["samples_path"] = named
    write_lines(root, lines)
    path, refused = samples_file(root, named)
    assert path is None and refused and "samples_path" in refused
    report = invoke("report", str(root), "--trace-run", lines[0]["run_id"])
    assert answered(report) is None and report.exit_code == 0, report.output
    said = " ".join(report.output.split())
    assert "samples_path" in said and ("leads outside" in said or "refused, never read" in said)


def test_an_unknown_trace_run_is_refused_before_the_tables_are_written(tmp_path):
    root = recorded_folder(tmp_path / "sweep")
    before = digest(root)
    for wanted in ("r999-nothing", "../../etc/passwd"):
        outcome = invoke("report", str(root), "--trace-run", wanted)
        assert outcome.exit_code != 0 and answered(outcome) is None, outcome.output
        assert "--trace-run" in outcome.output
    assert digest(root) == before  # no tables/, no report/
