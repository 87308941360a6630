"""The index of a journal's validated lines (runs.jsonl.index beside runs.jsonl), so that resume and `greenrt status`
validate only what was appended since they last read it: validating every record (pydantic) costs minutes at
200,000 runs on a busy host, hashing them a second or two.

The index holds how many bytes of the journal were read (whole lines only), the SHA-256 of those bytes, and what
they said: the done run ids and each damaged line's number and reason. It is trusted only for a journal that still
starts with exactly those bytes (hashed again on every read; editing, truncating or replacing the journal changes
them), read by this very reader (a digest of the modules that judge a line and of the libraries they use), and only
when the index itself is a regular file of the expected shape; anything else and the whole journal is validated
again, as if there were no index. A line not yet ended by a newline (cut short, or being written) is judged on each
read, never indexed. The index is a cache, never data: writing it is skipped where it cannot be written (a
read-only folder, a full disk), and it is not kept for small journals, which validate in well under a second.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import sys
from functools import lru_cache
from pathlib import Path
from typing import Literal

import pydantic
import pydantic_core
from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.errors import UserError
from orchestrator.results.journal import JournalProblem, problem, read_line, reason_of
from orchestrator.results.record import INTERRUPTED
from orchestrator.results.results_files import open_results_file

VERSION = 1
MIN_LINES = 1000  # journals shorter than this are validated whole each time and get no index
_CHUNK = 1 << 20
# The modules whose code decides whether a line is a valid record: a change to any of them voids every index.
_JUDGES = ("orchestrator.results.journal", "orchestrator.results.record", "orchestrator.results.payloads",
           "orchestrator.results.interference_payload", "orchestrator.results.runner_result", "runners.protocol",
           __name__)


class _Index(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    format: Literal["greenrt journal index"]
    version: Literal[1]
    reader: str
    journal: str
    size: int
    lines: int
    sha256: str
    done: list[str]
    damaged: list[tuple[int, str]]


Scan = tuple[frozenset[str], tuple[JournalProblem, ...]]


def index_path(journal: Path) -> Path:
    return journal.with_name(journal.name + ".index")


@lru_cache(maxsize=1)
def reader_digest() -> str:
    """What an index is valid for: the code of the modules that judge a line, the libraries they call, Python."""
    h = hashlib.sha256(f"{VERSION}|{sys.version}|{pydantic.VERSION}|{pydantic_core.__version__}".encode())
    for name in _JUDGES:
        h.update(Path(sys.modules[name].__file__ or "").read_bytes())
    return h.hexdigest()


def scan(path: Path) -> Scan:
    """The run ids the journal holds a finished or failed record of, and its damaged lines (each with its number
    and why), exactly as validating every line would say; a UserError when the journal is a link, a FIFO, a
    folder (never read)."""
    fh = open_results_file(path.parent, path, "the journal")
    if fh is None:
        return frozenset(), ()
    with fh:
        index = _load(path, os.fstat(fh.fileno()).st_size)
        hasher = hashlib.sha256()
        if index is not None and not _starts_with(fh, index, hasher):
            fh.seek(0)
            hasher, index = hashlib.sha256(), None
        done = set(index.done) if index else set()
        problems = [problem(path, line, reason) for line, reason in index.damaged] if index else []
        size, lines = (index.size, index.lines) if index else (0, 0)
        cut_short: Scan = (frozenset(), ())
        for number, raw in enumerate(fh, start=lines + 1):
            found: list[JournalProblem] = []
            read = read_line(path, number, raw, found)
            ok = read is not None and read[1].status != INTERRUPTED
            if not raw.endswith(b"\n"):  # the last line, not ended yet: judged, never indexed
                cut_short = (frozenset([read[1].run_id]) if ok and read else frozenset(), tuple(found))
                break
            hasher.update(raw)
            size, lines = size + len(raw), number
            problems += found
            if ok and read:
                done.add(read[1].run_id)
    if index is None or size != index.size:
        _save(path, _Index(format="greenrt journal index", version=VERSION, reader=reader_digest(),
                           journal=path.name, size=size, lines=lines, sha256=hasher.hexdigest(),
                           done=sorted(done), damaged=[(p.line, reason_of(path, p)) for p in problems]))
    return frozenset(done) | cut_short[0], (*problems, *cut_short[1])


def _starts_with(fh, index: _Index, hasher) -> bool:
    """Whether the journal's first index.size bytes are the ones indexed (hashed into hasher, read from fh)."""
    buffer = memoryview(bytearray(_CHUNK))
    left = index.size
    while left:
        got = fh.readinto(buffer[:min(_CHUNK, left)])
        if not got:
            return False  # shorter than the indexed part: cut back
        hasher.update(buffer[:got])
        left -= got
    return hasher.hexdigest() == index.sha256


def _load(path: Path, journal_size: int) -> _Index | None:
    """The index, when it is a regular file describing this journal for this reader; None for anything else."""
    target = index_path(path)
    try:
        fh = open_results_file(path.parent, target, "the journal index")
        if fh is None:
            return None
        with fh:
            # An index is a few bytes per line of the journal; a larger one is not an index (never read whole).
            raw = fh.read(4 * journal_size + (1 << 20) + 1)
        if len(raw) > 4 * journal_size + (1 << 20):
            return None
        index = _Index.model_validate_json(raw)
    except (UserError, OSError, ValidationError, ValueError):
        return None
    damaged = [line for line, _ in index.damaged]
    fits = (index.reader == reader_digest() and index.journal == path.name and 0 <= index.size <= journal_size
            and 0 <= index.lines and damaged == sorted(set(damaged)) and all(0 < d <= index.lines for d in damaged))
    return index if fits else None


def _save(path: Path, index: _Index) -> None:
    """Write the index atomically (a reader sees the old one or the new one, never half); skipped for a small
    journal, and where it cannot be written: it is a cache, and a read-only command must not fail for want of it."""
    target = index_path(path)
    if index.lines < MIN_LINES:
        return
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:  # 0o644 less the umask, as the journal beside it (mkstemp's 0600 would keep the folder's readers out)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError:
        return  # a read-only folder or file system, no space, no permission
    try:
        with os.fdopen(fd, "w") as fh:
            # No fsync: an index lost or cut short by a crash is one that does not parse, and is ignored.
            fh.write(json.dumps(index.model_dump(), separators=(",", ":")))
        os.replace(tmp, target)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
