"""Fuzzing damaged results folders (issue 22, point 7's results part): a recorded folder whose journal line has a
field set to a value of another type, a key removed, a line cut short, or whose files are replaced by links, loops,
FIFOs or folders. `status`, `report`, `advise`, `compare` and a resume's refusal each either succeed or end in at
most 3 lines, non-zero, with no traceback; nothing outside what a verb writes on success is written or rewritten
(the folder is hashed before and after). Built from the principles, not from a list of known cases.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.errors import UserError
from orchestrator.planning.planner import Plan
from orchestrator.results.store import ResultsDir
from testkit.damaged_folders import DERIVED, answered, digest, invoke, journal_lines, recorded_folder, write_lines

# Examples per test: the readers' agreement is cheap, a report draws its figures (seconds each): 552 in all.
CHEAP, VERB, REPORTING = 300, 60, 8

_pristine = Path(tempfile.mkdtemp(prefix="greenrt-fuzz-")) / "pristine"
recorded_folder(_pristine)
_LINES = journal_lines(_pristine)


def _paths(obj, prefix=()):
    """Every key path of a record (nested objects included), the places a damage can land."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))


PATHS = sorted({p for line in _LINES for p in _paths(line)})
WRONG = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                  st.text(max_size=8), st.lists(st.integers(), max_size=3),
                  st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


@st.composite
def damage(draw):
    """(line index, kind, key path, value): one damage to one journal line."""
    index = draw(st.integers(0, len(_LINES) - 1))
    kind = draw(st.sampled_from(["retype", "retype", "remove", "truncate"]))
    path = draw(st.sampled_from(PATHS))
    return index, kind, path, draw(WRONG) if kind == "retype" else draw(st.integers(1, 400))


def _apply(root: Path, change) -> None:
    index, kind, path, value = change
    lines = journal_lines(root)
    target = lines[index]
    for key in path[:-1]:
        if not isinstance(target, dict) or not isinstance(target.get(key), dict):
            break
        target = target[key]
    else:
        if kind == "retype":
            target[path[-1]] = value
        elif kind == "remove":
            target.pop(path[-1], None)
    write_lines(root, lines)
    if kind == "truncate":
        data = (root / "runs.jsonl").read_bytes()
        (root / "runs.jsonl").write_bytes(data[:max(1, len(data) - value)])


def _folder(tmp: Path) -> Path:
    root = tmp / "sweep"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(_pristine, root, symlinks=True)
    return root


def _check(root: Path, *args: str) -> None:
    before = digest(root, skip=DERIVED)
    outcome = invoke(*args)
    problem = answered(outcome)
    assert problem is None, (args, problem)
    assert digest(root, skip=DERIVED) == before, args


def _settings(examples: int):
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@_settings(VERB + 40)
@given(change=damage())
def test_status_on_a_damaged_journal(tmp_path, change):
    root = _folder(tmp_path)
    _apply(root, change)
    _check(root, "status", str(root))


@_settings(REPORTING)
@given(change=damage())
def test_report_on_a_damaged_journal(tmp_path, change):
    root = _folder(tmp_path)
    _apply(root, change)
    _check(root, "report", str(root))


@_settings(VERB)
@given(change=damage())
def test_advise_on_a_damaged_journal(tmp_path, change):
    root = _folder(tmp_path)
    _apply(root, change)
    _check(root, "advise", str(root))


@_settings(VERB)
@given(change=damage())
def test_compare_with_a_damaged_journal(tmp_path, change):
    root = _folder(tmp_path)
    _apply(root, change)
    _check(root, "compare", str(_pristine), str(root), "--out", str(root / "compare"))


@_settings(CHEAP)
@given(change=damage())
def test_resume_counts_only_valid_records_as_done(tmp_path, change):
    from orchestrator.results.journal import read_journal
    from orchestrator.results.journal_scan import done_run_ids, journal_problems

    root = _folder(tmp_path)
    _apply(root, change)
    records, problems = read_journal(root / "runs.jsonl")
    # The readers agree: what resume calls done is exactly what the tables read, status names every other line.
    assert done_run_ids(root / "runs.jsonl") == {r.run_id for r in records if r.status != "interrupted"}
    assert journal_problems(root / "runs.jsonl") == problems


def _loop(path: Path) -> None:
    os.symlink(path.name, path)


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _dir(path: Path) -> None:
    path.mkdir()


def _link_out(path: Path) -> None:
    os.symlink("/etc/hostname", path)


FILES = ["runs.jsonl", "plan.json", "host.json", "baseline.json"]
KINDS = {"loop": _loop, "fifo": _fifo, "folder": _dir, "link-out": _link_out}
VERBS = ["status", "report", "advise", "compare", "resume"]


@_settings(REPORTING * 3)
@given(name=st.sampled_from(FILES), kind=st.sampled_from(sorted(KINDS)), verb=st.sampled_from(VERBS))
def test_results_files_replaced_by_what_is_not_a_file(tmp_path, name, kind, verb):
    root = _folder(tmp_path)
    path = root / name
    if path.exists():
        path.unlink()
    KINDS[kind](path)
    if verb == "resume":
        before = digest(root)
        results = ResultsDir(root)
        try:
            plan = Plan.from_dict(results.read_plan())
        except UserError:
            return  # no plan: nothing to resume (status says why)
        try:
            results.open_for(plan)
        except UserError as exc:
            assert "\n" not in str(exc)
        else:
            raise AssertionError(f"resume accepted {name} as a {kind}")
        assert digest(root) == before
        return
    args = [verb, str(root)] if verb != "compare" else [verb, str(_pristine), str(root), "--out", str(root / "compare")]
    _check(root, *args)
