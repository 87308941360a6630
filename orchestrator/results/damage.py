"""What `greenrt status` says is damaged in a results directory, one line per file; nothing is changed."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from orchestrator.errors import UserError
from orchestrator.results.journal import describe_problems
from orchestrator.results.journal_scan import journal_problems
from orchestrator.results.results_files import results_file
from orchestrator.results.store import ResultsDir, read_json_object


def damage(results: ResultsDir) -> list[str]:
    """One line per damaged file of a results directory (what `greenrt status` shows); nothing is changed.

    Cheap checks only, so that it stays usable at 200,000 runs: JSON files parse, journal lines read as records,
    sample files end with parquet's footer magic; tables/ is there once a report was written.
    """
    lines: list[str] = []
    try:
        results.read_plan()
    except UserError as exc:
        lines.append(str(exc))
    owners = [results.root, *sorted(p for p in (results.root / "shards").glob("*") if p.is_dir())]
    for folder in owners:
        for name in ("host.json", "baseline.json"):
            results.read_facts(folder / name, lines.append)
        journal = folder / "runs.jsonl"
        if os.path.lexists(journal):
            try:
                problems = journal_problems(journal)
            except UserError as exc:  # a link, a loop, a FIFO or a folder: never read
                lines.append(str(exc))
                continue
            if problems:
                lines.append(describe_problems(journal, problems))
    for result in sorted((results.root / "runs").glob("*/result.json")):
        _, problem = read_json_object(result)
        if problem is not None:
            lines.append(f"{result}: unreadable ({problem}); left as it is: the journal holds the run's result, "
                         "so nothing is lost; delete it or restore it from a copy to silence this")
    for samples, plain in _sample_files(results):
        refused = None if plain else _not_a_file(results.root, samples)
        if refused:
            lines.append(refused)
        elif not _parquet_whole(samples):
            lines.append(f"{samples}: cut short (no parquet footer); left as it is: the run's energy is in the "
                         "journal, but its power trace cannot be drawn and it cannot be accounted again; restore "
                         "it from a copy")
    if results.journal_path.is_file() and not results.tables_dir.is_dir():
        lines.append(f"{results.tables_dir}: missing; `greenrt report {results.root}` writes the tables again "
                     "from the journal")
    return lines


def _sample_files(results: ResultsDir) -> list[tuple[Path, bool]]:
    """Each samples/*.parquet, and whether it is plainly a regular file inside the folder: an entry the listing says
    is a regular file, in a samples folder that is a real folder inside the results folder. Only the others go
    through the full check (resolving each path costs milliseconds, minutes at 200,000 runs)."""
    folder = results.samples_dir
    try:
        real = stat.S_ISDIR(os.lstat(folder).st_mode) and folder.resolve().parent == results.root.resolve()
        entries = sorted(os.scandir(folder), key=lambda e: e.name) if real else []
    except OSError:
        real, entries = False, []
    if not real:  # missing, or a link, a loop or a file in its place: as before, each file on its own
        return [(path, False) for path in sorted(folder.glob("*.parquet"))]
    return [(Path(e.path), e.is_file(follow_symlinks=False)) for e in entries if e.name.endswith(".parquet")]


def _not_a_file(root: Path, path: Path) -> str | None:
    """Why a samples file is refused (a link, a FIFO, a folder in its place), never opened; None when it is a file."""
    try:
        results_file(root, path, "a samples file")
    except UserError as exc:
        return str(exc)
    return None


def _parquet_whole(path: Path) -> bool:
    try:  # never following a link, never waiting on a FIFO swapped in since the listing
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    with os.fdopen(fd, "rb") as fh:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return False
            head = fh.read(4)
            fh.seek(-4, os.SEEK_END)
            return head == b"PAR1" and fh.read(4) == b"PAR1"
        except OSError:
            return False
