"""The index of validated journal lines (journal_index.py): resume and `status` validate only what was appended, and
the index never makes a damaged line count as done or hides one. Every case compares the indexed scan with the
reference reader (every line validated), after the index was built and the journal or the index changed."""
from __future__ import annotations

import json
import os
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.results import journal_index, journal_scan
from orchestrator.results.journal import iter_journal
from orchestrator.results.journal_index import index_path, scan
from testkit.records import make_record


@pytest.fixture(autouse=True)
def small_index(monkeypatch):
    # The index is kept from MIN_LINES lines on (1,000); a few lines show the same logic, fast.
    monkeypatch.setattr(journal_index, "MIN_LINES", 2)
    journal_scan._last.clear()  # the in-process memo of the last scan would answer before the index is read
    yield
    journal_scan._last.clear()


def line(run_id: str, status: str = "ok", **change) -> bytes:
    record = {**make_record(run_id, status="ok" if status == "interrupted" else status), "status": status, **change}
    return json.dumps(record, sort_keys=True).encode() + b"\n"


DAMAGED = b'{"run_id": "r-bad", "wall_seconds": "x"}\n'


def reference(path):
    problems = []
    done = frozenset(r.run_id for _, r in iter_journal(path, problems) if r.status != "interrupted")
    return done, tuple(problems)


def validated(monkeypatch):
    """Count the lines the scan validates (journal.read_line, as the index module calls it)."""
    seen = []
    real = journal_index.read_line

    def counting(path, number, raw, problems):
        seen.append(number)
        return real(path, number, raw, problems)

    monkeypatch.setattr(journal_index, "read_line", counting)
    return seen


@pytest.fixture
def journal(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_bytes(line("r-1") + DAMAGED + line("r-2", "failed") + line("r-3", "interrupted"))
    return path


def test_a_second_read_validates_only_the_appended_lines(journal, monkeypatch):
    assert scan(journal) == reference(journal)
    assert index_path(journal).is_file()
    seen = validated(monkeypatch)
    assert scan(journal) == reference(journal)
    assert seen == []  # nothing appended: nothing validated again
    with open(journal, "ab") as fh:
        fh.write(line("r-4") + DAMAGED + line("r-3"))
    seen.clear()
    done, problems = scan(journal)
    assert seen == [5, 6, 7]
    assert (done, problems) == reference(journal)
    assert done == {"r-1", "r-2", "r-3", "r-4"} and [p.line for p in problems] == [2, 6]
    assert json.loads(index_path(journal).read_text())["lines"] == 7


@pytest.mark.parametrize("edit", ["same length", "longer", "shorter"])
def test_an_edit_inside_the_indexed_part_is_found(journal, monkeypatch, edit):
    scan(journal)
    data = journal.read_bytes()
    first = line("r-1")
    damaged = {"same length": first.replace(b'"status": "ok"', b'"status": 17'[:14].ljust(14, b" ")),
               "longer": first.replace(b'"status": "ok"', b'"status": ["ok"]'),
               "shorter": first.replace(b'"status": "ok"', b'"status": 1')}[edit]
    assert (len(damaged) == len(first)) == (edit == "same length")
    journal.write_bytes(damaged + data[len(first):])
    seen = validated(monkeypatch)
    done, problems = scan(journal)
    assert (done, problems) == reference(journal)
    assert "r-1" not in done and [p.line for p in problems] == [1, 2]
    assert seen == [1, 2, 3, 4]  # the whole journal again


def test_a_damaged_line_repaired_in_place_counts_again(journal):
    scan(journal)
    data = journal.read_bytes()
    repaired = line("r-b")[:-1]
    assert len(repaired) >= len(DAMAGED)
    journal.write_bytes(data.replace(DAMAGED, repaired + b"\n"))
    assert scan(journal) == reference(journal) and "r-b" in scan(journal)[0]


@pytest.mark.parametrize("cut", [1, 40, "a line"])
def test_a_truncated_journal_is_read_again(journal, cut):
    scan(journal)
    data = journal.read_bytes()
    journal.write_bytes(data[:-len(line("r-3", "interrupted"))] if cut == "a line" else data[:-cut])
    assert scan(journal) == reference(journal)
    # cut back, then appended past the indexed size with other lines: the indexed bytes are gone all the same
    journal.write_bytes(data[:10] + DAMAGED * 20)
    assert scan(journal) == reference(journal)
    assert scan(journal)[0] == frozenset()


CORRUPT = {
    "garbage": b"\x00\xffnot json",
    "cut short": None,  # the real index, less its last bytes
    "wrong types": None,  # the real index, done as a string
    "a line out of range": None,
    "another reader": None,
    "another journal name": None,
    "empty": b"",
}


@pytest.mark.parametrize("kind", list(CORRUPT))
def test_a_corrupt_index_is_ignored_and_written_again(journal, monkeypatch, kind):
    scan(journal)
    real = json.loads(index_path(journal).read_text())
    # an index that claims the damaged line's run is done (its digest is the journal's): ignored for its flaw
    forged = {**real, "done": [*real["done"], "r-bad"], "damaged": []}
    changed = {"cut short": index_path(journal).read_bytes()[:-5],
               "wrong types": {**forged, "done": "r-bad"},
               "a line out of range": {**forged, "damaged": [[99, "x"]]},
               "another reader": {**forged, "reader": "0" * 64},
               "another journal name": {**forged, "journal": "other.jsonl"}}.get(kind, CORRUPT[kind])
    index_path(journal).write_bytes(changed if isinstance(changed, bytes) else json.dumps(changed).encode())
    seen = validated(monkeypatch)
    assert scan(journal) == reference(journal)
    assert seen == [1, 2, 3, 4]
    assert json.loads(index_path(journal).read_text()) == real


@pytest.mark.parametrize("kind", ["a link", "a folder", "a FIFO"])
def test_an_index_that_is_not_a_regular_file_is_never_read(journal, tmp_path, kind):
    scan(journal)
    good = index_path(journal).read_bytes()
    index_path(journal).unlink()
    if kind == "a link":
        forged = json.loads(good)
        forged["done"].append("r-bad")
        (tmp_path / "elsewhere").write_text(json.dumps(forged))
        os.symlink(tmp_path / "elsewhere", index_path(journal))
    elif kind == "a folder":
        index_path(journal).mkdir()
    else:
        os.mkfifo(index_path(journal))
    assert scan(journal) == reference(journal)  # a FIFO would block a reader that opened it


def test_an_unfinished_last_line_is_judged_every_time_and_never_indexed(journal):
    with open(journal, "ab") as fh:
        fh.write(line("r-5")[:30])  # being written, or cut short by a crash
    done, problems = scan(journal)
    assert (done, problems) == reference(journal) and [p.line for p in problems] == [2, 5]
    assert json.loads(index_path(journal).read_text())["lines"] == 4
    with open(journal, "ab") as fh:
        fh.write(line("r-5")[30:])  # its writer finishes it
    done, problems = scan(journal)
    assert (done, problems) == reference(journal) and "r-5" in done and [p.line for p in problems] == [2]


def test_no_index_where_it_cannot_be_written(journal, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    real_open = os.open
    monkeypatch.setattr(journal_index.os, "open",
                        lambda path, flags, *mode: read_only() if flags & os.O_CREAT else real_open(path, flags, *mode))
    assert scan(journal) == reference(journal)
    assert not index_path(journal).exists()


def test_a_small_journal_gets_no_index(journal, monkeypatch):
    monkeypatch.setattr(journal_index, "MIN_LINES", 5)
    assert scan(journal) == reference(journal)
    assert not index_path(journal).exists()


def test_a_moved_folder_names_its_own_journal(journal, tmp_path):
    scan(journal)
    moved = shutil.copytree(journal.parent, tmp_path.parent / f"{tmp_path.name}-moved") / "runs.jsonl"
    assert index_path(moved).is_file()
    assert scan(moved) == reference(moved) and str(moved) in scan(moved)[1][0].message


def test_resume_and_status_answer_through_the_index(journal):
    from orchestrator.results.journal_scan import done_run_ids, journal_problems

    assert done_run_ids(journal) == set(reference(journal)[0]) and index_path(journal).is_file()
    journal_scan._last.clear()
    journal.write_bytes(journal.read_bytes().replace(b'"status": "failed"', b'"status": ["failed"]'))
    journal_scan._last.clear()
    assert "r-2" not in done_run_ids(journal)
    assert [p.line for p in journal_problems(journal)] == [2, 3]


# Any sequence of appends, edits and cuts, each followed by a scan that finds (and rewrites) the index: the scan
# always says what validating every line says.
OPERATION = st.one_of(
    st.tuples(st.just("append"), st.sampled_from(["ok", "failed", "interrupted", "damaged"]), st.integers(0, 5)),
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("cut"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.integers(0, 255)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(OPERATION, min_size=1, max_size=8))
def test_any_change_then_a_scan_agrees_with_the_full_reader(tmp_path_factory, operations):
    path = tmp_path_factory.mktemp("j") / "runs.jsonl"
    path.write_bytes(line("r-0") + line("r-1"))
    for kind, a, b in operations:
        data = path.read_bytes()
        if kind == "append":
            data += DAMAGED if a == "damaged" else line(f"r-{b}", a)
        elif kind == "flip" and data:
            data = data[:a % len(data)] + bytes([b]) + data[a % len(data) + 1:]
        elif kind == "cut":
            data = data[:a % (len(data) + 1)]
        elif kind == "insert":
            data = data[:a % (len(data) + 1)] + bytes([b]) + data[a % (len(data) + 1):]
        path.write_bytes(data)
        assert scan(path) == reference(path), operations


@pytest.mark.parametrize("samples_folder", ["a folder", "a link to one outside"])
def test_status_names_every_sample_file_that_is_not_whole_or_not_a_file(tmp_path, samples_folder):
    # status lists the sample files with the folder's listing and resolves only the odd ones (resolving each of
    # 200,000 took minutes); what it says of each kind of entry stays the same.
    from orchestrator.results.damage import damage
    from orchestrator.results.store import ResultsDir

    root = tmp_path / "sweep"
    root.mkdir()
    (root / "plan.json").write_text(json.dumps({"runs": []}))
    (root / "tables").mkdir()
    samples = root / "samples" if samples_folder == "a folder" else tmp_path / "outside"
    samples.mkdir()
    if samples_folder != "a folder":
        os.symlink(samples, root / "samples")
    (samples / "a-whole.parquet").write_bytes(b"PAR1" + b"x" * 20 + b"PAR1")
    (samples / "b-cut.parquet").write_bytes(b"PAR1" + b"x" * 20)
    os.symlink(samples / "a-whole.parquet", samples / "c-link.parquet")
    os.mkfifo(samples / "d-fifo.parquet")
    (samples / "e-folder.parquet").mkdir()
    said = damage(ResultsDir(root))
    if samples_folder == "a folder":
        named = ["b-cut.parquet", "c-link.parquet", "d-fifo.parquet", "e-folder.parquet"]
        assert len(said) == 4 and all(name in line for name, line in zip(named, said)), said
        assert "cut short" in said[0] and "symbolic link" in said[1] and "refused" in said[2] + said[3], said
    else:  # each file through the link leads outside the folder: refused, never opened
        assert len(said) == 5 and all("outside" in line for line in said), said
