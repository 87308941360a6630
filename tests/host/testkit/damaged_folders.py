"""Damaged copies of a recorded results folder (tests/host/fixtures/journal-schema2), and the in-process verbs that
must answer them: each either succeeds or ends in at most 3 lines, non-zero, without a traceback."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from typer.testing import CliRunner

from orchestrator.cli import app

FIXTURE = Path(__file__).parents[1] / "fixtures" / "journal-schema2"
DERIVED = ("tables", "report", "compare")  # what the verbs write on success


def recorded_folder(target: Path) -> Path:
    shutil.copytree(FIXTURE, target)
    (target / "crashed.jsonl").unlink()
    return target


def journal_lines(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "runs.jsonl").read_text().splitlines()]


def write_lines(root: Path, objects: list) -> None:
    (root / "runs.jsonl").write_text("".join(json.dumps(o, sort_keys=True) + "\n" for o in objects))


def digest(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every entry's kind and bytes (links by their target), without following links or opening FIFOs."""
    seen: dict[str, str] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        rel_folder = Path(folder).relative_to(root)
        if rel_folder.parts and rel_folder.parts[0] in skip:
            continue
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(rel_folder / name)
            if rel.split(os.sep)[0] in skip:
                continue
            if path.is_symlink():
                seen[rel] = "link:" + os.readlink(path)
            elif path.is_file() and not path.is_fifo():
                seen[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                seen[rel] = "dir" if path.is_dir() else "other"
    return seen


def invoke(*args: str):
    return CliRunner(env={"COLUMNS": "2000"}).invoke(app, list(args), catch_exceptions=True)


def answered(result) -> str | None:
    """Why a verb's answer breaks the promise (None: it keeps it)."""
    text = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return f"raised {type(result.exception).__name__}: {result.exception}"
    if "Traceback" in text or "internal error" in text:
        return f"traceback or internal error: {text[-800:]}"
    if result.exit_code != 0 and len([line for line in text.splitlines() if line.strip()]) > 3:
        return f"refusal longer than 3 lines: {text[-800:]}"
    return None
