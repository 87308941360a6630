"""A sweep's results directory: plan, host, the append-only journal, raw samples, tables.

The journal is the source of truth: one JSON line per finished or failed run, appended and fsynced, so a crash
loses at most the run in flight. Everything else is written atomically (temporary file, then rename).
"""
from __future__ import annotations

import errno
import io
import json
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import polars as pl
from pydantic_core import from_json

from orchestrator.errors import UserError
from orchestrator.planning.planner import Plan, repetitions_change
from orchestrator.results.record import FAILED, INTERRUPTED, OK, READABLE_SCHEMAS, RunRecord, as_record, from_journal  # noqa: F401 - INTERRUPTED: the store says what is done
from runners.protocol import write_json_atomic

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}")


def disk_full(exc: BaseException) -> bool:
    """Writing failed for want of space (or quota): the sweep stops, it is not the run's fault."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


@dataclass(frozen=True)
class JournalProblem:
    line: int
    message: str


class ResultsDir:
    def __init__(self, root: str | Path, shard: int | None = None) -> None:
        # Absolute: runners (in containers too) get paths under it and run in another working directory.
        self.root = Path(root).absolute()
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"{self.root}: exists and is not a directory")
        # A shard of a sweep spread over hosts keeps its journal, host and idle baseline (they belong to the node
        # that measured them) under shards/<i>/; the plan, run folders and samples stay shared.
        self.shard = shard
        self.own = self.root / "shards" / str(shard) if shard is not None else self.root

    plan_path = property(lambda self: self.root / "plan.json")
    host_path = property(lambda self: self.own / "host.json")
    baseline_path = property(lambda self: self.own / "baseline.json")
    journal_path = property(lambda self: self.own / "runs.jsonl")
    samples_dir = property(lambda self: self.root / "samples")
    tables_dir = property(lambda self: self.root / "tables")

    def run_dir(self, run_id: str) -> Path:
        # Run ids come from the planner (sanitised) or from a plan.json on disk: never a path out of runs/.
        if not _SAFE_NAME.fullmatch(run_id):
            raise UserError(f"run id {run_id!r} is not a safe folder name (letters, digits, '.', '_', '-')")
        return self.root / "runs" / run_id

    def read_plan(self) -> dict[str, Any]:
        """plan.json, or one line naming it and what to do: without it, which runs were planned is unknown."""
        if not self.plan_path.exists():
            raise UserError(f"{self.root}: not a greenrt results directory (no plan.json)")
        data, problem = read_json_object(self.plan_path)
        if problem is None and not isinstance(data.get("runs"), list):
            problem = "no list of runs"
        if problem is not None:
            raise UserError(f"{self.plan_path}: unreadable ({problem}); restore it from a copy of this folder "
                            f"(greenrt rewrites it only to add repetitions), or sweep again with --fresh, which moves the folder "
                            f"aside (nothing is deleted) and starts over")
        return data

    def read_facts(self, path: Path, say: Callable[[str], None]) -> dict[str, Any]:
        """host.json or baseline.json: {} when missing; when damaged, {} and one line (via say) naming the file."""
        if not path.exists():
            return {}
        data, problem = read_json_object(path)
        if problem is not None:
            say(f"{path}: unreadable ({problem}); left as it is: the report's provenance goes without it; "
                f"restore it from a copy of this folder")
            return {}
        return data

    def baseline_history(self) -> list[dict[str, Any]]:
        """The idle baselines measured so far; the sweep appends to them, so a damaged file stops it here."""
        if not self.baseline_path.exists():
            return []
        data, problem = read_json_object(self.baseline_path)
        if problem is not None:
            raise UserError(f"{self.baseline_path}: unreadable ({problem}); the sweep adds each idle baseline to it "
                            f"and would replace what it holds: restore it from a copy (or move it aside), then resume")
        return list(data.get("history", []))

    def open_for(self, plan: Plan) -> str | None:
        """Start a new sweep here, resume the same one, or add repetitions to it (the line saying so is returned);
        refuse to mix two different sweeps in one directory, and to drop repetitions already planned."""
        said = None
        if self.plan_path.exists():
            existing = self.read_plan()
            if existing.get("config_digest") != plan.config_digest:
                said = self._extend(Plan.from_dict(existing), plan)
        elif self.root.is_dir() and any(self.root.iterdir()):
            # Never write a sweep into (or, with --fresh, move away) a folder that is not one of greenrt's.
            raise UserError(f"{self.root}: not empty and not a greenrt results directory (no plan.json); "
                            f"choose another --out")
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            self.write_json(self.plan_path, plan.to_dict())
        self.own.mkdir(parents=True, exist_ok=True)
        return said

    def _extend(self, recorded: Plan, plan: Plan) -> str:
        change = repetitions_change(recorded, plan)
        if change is None:
            raise UserError(
                f"{self.root} holds another sweep ({recorded.config_name}, digest {recorded.config_digest}); this "
                f"config's digest is {plan.config_digest}: use another --out, or --fresh to set the old results "
                f"aside and start over")
        before, after = change
        if after < before:
            raise UserError(f"{self.root} holds this sweep with repetitions = {before}; this config asks for {after}: "
                            f"valid: repetitions = {before} or more (repetitions are added to a sweep, never taken "
                            f"from it), or another --out")
        # The one rewrite of plan.json: every recorded run stays where it was, the new repetitions follow them.
        extended = replace(plan, extended=(*recorded.extended, {"from": before, "to": after, "at": time.time()}))
        self.write_json(self.plan_path, extended.to_dict())
        return (f"{self.root}: repetitions {before} -> {after}: {len(plan.runs) - len(recorded.runs)} runs added "
                f"after the {len(recorded.runs)} planned before")

    def write_json(self, path: Path, data: dict[str, Any]) -> None:
        write_json_atomic(path, data)

    def append(self, record: RunRecord | dict[str, Any]) -> None:
        """One line, fsynced. A write that fails (a full disk) is cut back off, so the journal stays whole."""
        line = (json.dumps(as_record(record).to_journal(), sort_keys=True, allow_nan=False) + "\n").encode()
        with open(self.journal_path, "ab") as fh:
            size = fh.seek(0, os.SEEK_END)
            try:
                if size and _last_byte(self.journal_path) != b"\n":
                    line = b"\n" + line  # a line cut short by a crash stays one unreadable line, not two
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            except BaseException:
                fh.truncate(size)
                raise

    def records(self) -> tuple[list[RunRecord], list[JournalProblem]]:
        """Every readable record, and each unreadable line with its number (the rest stays usable)."""
        return read_journal(self.journal_path)

    def recorded_run_ids(self) -> set[str]:
        """Runs that are done: finished or failed. A run whose latest record says it was interrupted is not."""
        paths = [self.journal_path]
        if self.shard is not None:
            # What the merge or another shard recorded is done too, so resubmitting with another shard count
            # measures nothing twice.
            paths += [self.root / "runs.jsonl", *sorted((self.root / "shards").glob("*/runs.jsonl"))]
        return set().union(*(done_run_ids(path) for path in paths))

    def set_aside(self) -> Path:
        """Move this directory's sweep to a new sibling folder (never deleted) and return where it went."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.root.with_name(f"{self.root.name}.old-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.root.with_name(f"{self.root.name}.old-{stamp}-{n}")
        self.root.rename(target)
        return target


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
    their objects, without dumping every record again)."""
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                data = loads_line(raw)
                record = from_journal(data)
            except (ValueError, UnicodeDecodeError) as exc:  # UnreadableRecord is a ValueError
                problems.append(JournalProblem(number, f"{path}:{number}: unreadable record ({exc})"))
                continue
            yield number, data, record


def loads_line(raw: bytes) -> Any:
    """One journal line's JSON. pydantic-core's parser (Rust) reads a record in about half the time of the json
    module, which dominates reading 200,000 records; whatever it refuses (a BOM, a lone surrogate, damage) goes
    through json.loads, the reference, so what is readable and each error's words stay the same."""
    try:
        return from_json(raw, cache_strings="keys")
    except ValueError:
        return json.loads(raw)


def describe_problems(path: Path, problems: list[JournalProblem]) -> str:
    """One line for every unreadable line of a journal: which, why (the first), and what happens to them."""
    numbers = ", ".join(str(p.line) for p in problems[:10]) + (" ..." if len(problems) > 10 else "")
    first = problems[0].message.split(": unreadable record ", 1)[-1]
    return (f"{path}: {len(problems)} unreadable line(s) ({numbers}; {first}); left as they are and skipped: "
            f"their runs are missing from the tables and a resumed sweep measures them again; repair or delete "
            f"those lines by hand to silence this")


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


def read_json_object(path: Path) -> tuple[dict[str, Any], str | None]:
    """A JSON object file, or {} and why it cannot be read."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return {}, f"{type(exc).__name__}: {exc}"
    if not isinstance(data, dict):
        return {}, f"not a JSON object but {type(data).__name__}"
    return data, None


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1)


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
        if journal.exists():
            problems = journal_problems(journal)
            if problems:
                lines.append(describe_problems(journal, problems))
    for result in sorted((results.root / "runs").glob("*/result.json")):
        _, problem = read_json_object(result)
        if problem is not None:
            lines.append(f"{result}: unreadable ({problem}); left as it is: the journal holds the run's result, "
                         "so nothing is lost; delete it or restore it from a copy to silence this")
    for samples in sorted(results.samples_dir.glob("*.parquet")):
        if not _parquet_whole(samples):
            lines.append(f"{samples}: cut short (no parquet footer); left as it is: the run's energy is in the "
                         "journal, but its power trace cannot be drawn and it cannot be accounted again; restore "
                         "it from a copy")
    if results.journal_path.exists() and not results.tables_dir.is_dir():
        lines.append(f"{results.tables_dir}: missing; `greenrt report {results.root}` writes the tables again "
                     "from the journal")
    return lines


def journal_problems(path: Path) -> list[JournalProblem]:
    """The unreadable lines of a journal; polars answers for a whole journal, the record reader only if it must."""
    return [] if _typed_ids(path.read_bytes()) is not None else read_journal(path)[1]


def _parquet_whole(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
            fh.seek(-4, os.SEEK_END)
            return head == b"PAR1" and fh.read(4) == b"PAR1"
    except OSError:
        return False
