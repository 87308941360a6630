"""Which runs a journal holds as done (resume) and which of its lines are damaged (`greenrt status`), both decided by
the record reader (journal.py): a line is data only if it is a valid record, so a line resume counts as done is one
the tables count too, and `status` names every line the report skips.

Faster readers once answered here from a few typed fields of each line (polars, or the line's sorted tail); they
accepted lines whose other fields had the wrong type, which the report then skipped (or crashed on) while resume
called the run done and status said nothing. Reading every record costs tens of seconds at 200,000 runs, once per
resume or status; agreeing with the report is worth it.
"""
from __future__ import annotations

from pathlib import Path

from orchestrator.results.journal import JournalProblem, iter_journal
from orchestrator.results.record import INTERRUPTED


def done_run_ids(path: Path) -> set[str]:
    """Run ids a journal holds a finished or failed record of (an interrupted attempt alone is not done); a damaged
    line holds none, so a resumed sweep measures its run again. A journal that is not a regular file is refused
    (UserError), never read as empty."""
    return {record.run_id for _, record in iter_journal(path, []) if record.status != INTERRUPTED}


def journal_problems(path: Path) -> list[JournalProblem]:
    """The damaged lines of a journal, with their numbers and why."""
    problems: list[JournalProblem] = []
    for _ in iter_journal(path, problems):
        pass
    return problems
