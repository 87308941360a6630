"""Which runs a journal holds as done (resume) and which of its lines are damaged (`greenrt status`), both decided by
the record reader (journal.py): a line is data only if it is a valid record, so a line resume counts as done is one
the tables count too, and `status` names every line the report skips.

Faster readers once answered here from a few typed fields of each line (polars, or the line's sorted tail); they
accepted lines whose other fields had the wrong type, which the report then skipped (or crashed on) while resume
called the run done and status said nothing. Every line is still judged by the record reader, but once: the index
of validated lines (journal_index.py) keeps what the lines read so far said, so a later read validates only the
lines appended since (and hashes the rest, to know they are the same bytes).
"""
from __future__ import annotations

import os
from pathlib import Path

from orchestrator.results.journal import JournalProblem
from orchestrator.results.journal_index import scan

# The last scan, by the journal's identity: `greenrt status` asks for the done runs and for the damaged lines of the
# same journal, which one strict pass answers.
_last: dict[tuple[str, int, int, int], tuple[frozenset[str], tuple[JournalProblem, ...]]] = {}


def _scan(path: Path) -> tuple[frozenset[str], tuple[JournalProblem, ...]]:
    try:
        st = os.lstat(path)  # a link in the file's place is another key, and refused by the scan
        key = (str(path.absolute()), st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError:
        key = None  # absent or refused: the scan answers (nothing, or one line)
    if key is not None and key in _last:
        return _last[key]
    done, problems = scan(path)
    if key is not None:
        _last.clear()
        _last[key] = (done, problems)
    return done, problems


def done_run_ids(path: Path) -> set[str]:
    """Run ids a journal holds a finished or failed record of (an interrupted attempt alone is not done); a damaged
    line holds none, so a resumed sweep measures its run again. A journal that is not a regular file is refused
    (UserError), never read as empty."""
    return set(_scan(path)[0])


def journal_problems(path: Path) -> list[JournalProblem]:
    """The damaged lines of a journal, with their numbers and why."""
    return list(_scan(path)[1])
