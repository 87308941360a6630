"""Reading a whole journal fast, for resume and `greenrt status` at 200,000 runs: which runs are done, and whether
any line is unreadable; whatever these fast readers cannot vouch for goes through the record reader (journal.py)."""
from __future__ import annotations

import io
import json
from pathlib import Path

import polars as pl

from orchestrator.results.journal import JournalProblem, read_journal
from orchestrator.results.record import FAILED, INTERRUPTED, OK, READABLE_SCHEMAS

# The top-level fields resume needs, typed: a line polars reads with these is one from_journal reads too, unless
# a nested payload is malformed (then the report calls it unreadable and a later resume measures it again).
_DONE_SCHEMA = {"run_id": pl.String, "status": pl.String, "schema": pl.Int64, "model": pl.String,
                "batch_size": pl.Int64, "runtime": pl.String}


def done_run_ids(path: Path) -> set[str]:
    """Run ids a journal holds a finished or failed record of (an interrupted attempt alone is not done).

    Resuming 200,000 runs reads a gigabyte of journal; polars reads just these fields of every line in a second or
    two, where parsing every record would take tens. Any line it cannot read the same way (damage, an old or
    unusual record) sends the whole journal through the record-by-record reader, which is the reference.
    """
    if not path.exists():
        return set()
    data = path.read_bytes()
    done = _done_ids_from_line_ends(data)
    if done is not None:
        return done
    frame = _typed_ids(data)
    if frame is not None:
        return set(frame.filter(pl.col("status") != INTERRUPTED)["run_id"].to_list())
    return {r.run_id for r in read_journal(path)[0] if r.status != INTERRUPTED}


_TAIL = b'"run_id": "'
# RunRecord's fields that sort after run_id: all scalars (tests/host/results/test_store.py keeps it so).
TAIL_KEYS = frozenset({"run_id", "runtime", "samples_path", "schema", "shard", "started_at", "status", "wall_seconds"})


def _done_ids_from_line_ends(data: bytes) -> set[str] | None:
    """The done run ids of a journal greenrt wrote, from the end of each line alone; None when any line is not of
    that shape (damage, a hand-written or older line), which the readers below then handle.

    A journal line is its record's JSON with sorted keys, so it ends with the top-level run_id and the few scalar
    fields after it (status among them): the last '"run_id": "' of a line begins that tail, as a JSON string can
    hold the sequence only escaped. Parsing those ~150 bytes a line is what makes resuming 200,000 runs fast.
    """
    done: set[str] = set()
    begin, size = 0, len(data)
    while begin < size:  # line by line without copying the lines: only each tail is sliced out
        end = data.find(b"\n", begin)
        end = size if end < 0 else end
        start = data.rfind(_TAIL, begin, end)
        try:
            tail = json.loads(b"{" + data[start:end]) if start > begin and data[begin] == ord("{") else None
        except ValueError:
            return None
        begin = end + 1
        if not isinstance(tail, dict) or not {"run_id", "status"} <= set(tail) <= TAIL_KEYS \
                or tail.get("schema", 1) not in READABLE_SCHEMAS \
                or not isinstance(tail["run_id"], str) or tail["status"] not in (OK, FAILED, INTERRUPTED):
            return None
        if tail["status"] != INTERRUPTED:
            done.add(tail["run_id"])
    return done


def _typed_ids(data: bytes) -> pl.DataFrame | None:
    """Every line's typed top-level fields, or None when any line is not plainly a readable record."""
    lines = data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)
    if not data:
        return pl.DataFrame(schema=_DONE_SCHEMA)
    try:
        frame = pl.read_ndjson(io.BytesIO(data), schema=_DONE_SCHEMA)
    except (pl.exceptions.PolarsError, ValueError):
        return None
    broken = frame.select(pl.any_horizontal(pl.col("run_id", "status", "model", "batch_size", "runtime").is_null())
                          .any() | (~pl.col("schema").fill_null(1).is_in(READABLE_SCHEMAS)).any()).item()
    return None if frame.height != lines or broken else frame


def journal_problems(path: Path) -> list[JournalProblem]:
    """The unreadable lines of a journal; polars answers for a whole journal, the record reader only if it must."""
    return [] if _typed_ids(path.read_bytes()) is not None else read_journal(path)[1]
