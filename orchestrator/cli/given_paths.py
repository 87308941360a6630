"""The verbs' path arguments, each looked at by orchestrator/safe_paths.py before the verb probes, plans or writes
anything: one line per way a path fails, as a UserError that `user_errors()` ends with exit 2.

The options are declared as plain strings, not Path: Typer turns `--out ""` into Path("."), which would make an
empty argument mean the current folder."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

from models.registry import BUILT_IN_MODELS
from orchestrator import safe_paths
from orchestrator.errors import UserError
from orchestrator.planning.user_models import ADHOC


def config_file(value: Optional[str]) -> Optional[Path]:
    return None if value is None else safe_paths.readable_file(value, "--config")


def out_folder(value: Optional[str], what: str = "--out") -> Optional[Path]:
    """A folder the verb will make or write in (absent is fine: it is made later, after every check)."""
    return None if value is None else safe_paths.writable_folder(value, what)


def results_folder(value: str, *, writes: bool) -> Path:
    """A sweep's results folder given as an argument: it must exist; `report` and `merge` also write in it."""
    if writes:
        return safe_paths.writable_folder(value, "results folder", must_exist=True)
    return safe_paths.existing_folder(value, "results folder")


def powercap_root(value: Optional[str]) -> Optional[str]:
    """An absent root is allowed (it means no RAPL here, and the probe says so); anything else in its place is not."""
    if value is not None:
        safe_paths.existing_folder(value, "--powercap-root", missing_ok=True)
    return value


def python(value: Optional[str]) -> Optional[str]:
    """--python as given (a path or a command on PATH), once it names a program; whether it starts as a Python 3
    is asked later, by the same probe as the config's interpreters."""
    if value is not None:
        safe_paths.executable(value, "--python")
    return value


def model_file(value: str) -> str:
    """`run --model`: a value that names a file (a model-file suffix, a folder in it, or something there) must be a
    readable regular file, or a folder greenrt can read (a checkpoint); a built-in model's name passes as it is."""
    if value in BUILT_IN_MODELS:
        return value
    if os.path.isdir(value):  # a Hugging Face checkpoint folder: its contents are the config's checks
        safe_paths.existing_folder(value, "--model")
        return value
    if not value.strip() or "\0" in value or os.sep in value or Path(value).suffix.lower() in ADHOC \
            or os.path.lexists(value):
        safe_paths.readable_file(value, "--model")
    return value


def folders(values: Optional[list[str]], what: str) -> list[Path]:
    return [safe_paths.existing_folder(value, what) for value in values or []]


# The shape of every run id (the planner's, as results/store.py's run_dir holds them): a folder name under runs/.
RUN_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}")


def run_id(value: Optional[str], what: str) -> Optional[str]:
    """A run id given on the command line (`report --trace-run`): refused before anything is read or written when it
    cannot be one, such as a path that would lead out of the results folder."""
    if value is not None and not RUN_ID.fullmatch(value):
        raise UserError(f"{what} {safe_paths.shown(value)}: not a run id (letters, digits, '.', '_', '-', "
                        f"not starting with '.'); valid: a run id of the sweep, as its runs.jsonl names it")
    return value
