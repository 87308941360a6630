"""Reading a sweep's journal (runs.jsonl) record by record: the reference reader, which says which lines it cannot read
and why, and leaves them as they are (the rest stays usable)."""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic_core import from_json

from orchestrator.results.record import RunRecord, from_journal
from orchestrator.results.results_files import open_results_file


@dataclass(frozen=True)
class JournalProblem:
    line: int
    message: str


def read_journal(path: Path) -> tuple[list[RunRecord], list[JournalProblem]]:
    problems: list[JournalProblem] = []
    records = [record for _, record in iter_journal(path, problems)]
    return records, problems


def iter_journal(path: Path, problems: list[JournalProblem]) -> Iterator[tuple[int, RunRecord]]:
    """(line number, record) for each readable line, in order; each unreadable line is added to problems."""
    for number, _, record in iter_journal_objects(path, problems):
        yield number, record


def iter_journal_objects(path: Path, problems: list[JournalProblem]) -> Iterator[tuple[int, dict, RunRecord]]:
    """(line number, the line's JSON object, its record) for each readable line (the merge rewrites lines from
    their objects, without dumping every record again). A journal that is a link, a loop, a FIFO or a folder is
    refused in one line (UserError), never read as empty."""
    fh = open_results_file(path.parent, path, "the journal")
    if fh is None:
        return
    with fh:
        for number, raw in enumerate(fh, start=1):
            read = read_line(path, number, raw, problems)
            if read is not None:
                yield number, *read


def read_line(path: Path, number: int, raw: bytes, problems: list[JournalProblem]) -> tuple[dict, RunRecord] | None:
    """One line's JSON object and record, or None with the line added to problems: the one judge of a line, for
    every reader (the index of validated lines, journal_index.py, included)."""
    try:
        data = loads_line(raw)
        return data, from_journal(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # UnreadableRecord is a ValueError
        problems.append(problem(path, number, str(exc)))
        return None


def problem(path: Path, number: int, reason: str) -> JournalProblem:
    return JournalProblem(number, f"{path}:{number}: {UNREADABLE} ({reason})")


UNREADABLE = "unreadable record"


def reason_of(path: Path, found: JournalProblem) -> str:
    """Why a line is damaged, without the journal's path and line number (what the index keeps: the folder may
    be moved)."""
    return found.message[len(problem(path, found.line, "").message) - 1:-1]


def loads_line(raw: bytes) -> Any:
    """One journal line's JSON. pydantic-core's parser (Rust) reads a record in about half the time of the json
    module, which dominates reading 200,000 records; whatever it refuses (a BOM, a lone surrogate, damage) goes
    through json.loads, the reference, so what is readable and each error's words stay the same."""
    try:
        return from_json(raw, cache_strings="keys")
    except ValueError:
        return json.loads(raw)  # deep nesting raises RecursionError here: a damaged line too


def describe_problems(path: Path, problems: list[JournalProblem]) -> str:
    """One line for every unreadable line of a journal: which, why (the first), and what happens to them."""
    numbers = ", ".join(str(p.line) for p in problems[:10]) + (" ..." if len(problems) > 10 else "")
    first = problems[0].message.split(": unreadable record ", 1)[-1]
    return (f"{path}: {len(problems)} unreadable line(s) ({numbers}; {first}); left as they are and skipped: "
            f"their runs are missing from the tables and a resumed sweep measures them again; repair or delete "
            f"those lines by hand to silence this")
