"""Opening the files of a results folder (journal, plan, host, baseline, run results, samples): each must be a regular
file inside the folder. A symbolic link (a loop, or one leading out), a FIFO, a device or a folder in a file's place
is refused in one line (a UserError), never read: `exists()` says False for a link loop, which once made a resume
read a journal as empty and measure the baseline again; opening a FIFO blocks until a writer comes.

A path a record names (samples_path) is resolved inside the folder first: no file outside a results folder is read
because something in it names it.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from orchestrator.errors import UserError
from orchestrator.safe_paths import file_if_any, inside, shown

VALID = "a regular file inside the results folder"


def _refuse(path: Path, reason: str) -> UserError:
    return UserError(f"{shown(str(path))}: {reason}; refused, never read; valid: {VALID}")


def results_file(root: Path, path: Path, what: str) -> Path | None:
    """`path` (a file of the results folder `root`) when it is a regular file there; None when nothing is there at
    all; otherwise one line saying what is in its place."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        st = None  # a file on the way, a name too long: file_if_any names it
    if st is not None and stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        raise _refuse(path, f"{what} is a symbolic link (to {target!r})")
    inside(root, path, what)
    return file_if_any(path, what)


def open_results_file(root: Path, path: Path, what: str) -> BinaryIO | None:
    """The file opened for reading (None when absent), checked again on the open descriptor: a FIFO swapped in
    after the look is refused, not waited on."""
    if results_file(root, path, what) is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise _refuse(path, f"{what} cannot be opened ({exc.strerror or exc})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _refuse(path, f"{what} is not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_results_bytes(root: Path, path: Path, what: str) -> bytes | None:
    """The bytes of a results file, None when absent; a UserError for anything else in its place."""
    fh = open_results_file(root, path, what)
    if fh is None:
        return None
    with fh:
        try:
            return fh.read()
        except OSError as exc:
            raise _refuse(path, f"{what} cannot be read ({exc.strerror or exc})") from None


def named_inside(root: Path, named: str, what: str) -> Path:
    """A path a record names (relative to the results folder), resolved and refused unless it stays inside it."""
    if not isinstance(named, str) or not named or os.path.isabs(named):
        raise UserError(f"{what} {shown(str(named))}: not a relative path inside {shown(str(root))}; refused, "
                        f"never read; valid: {VALID}")
    return inside(root, named, what)


def samples_file(root: Path, samples_path: str | None) -> tuple[Path | None, str | None]:
    """A record's samples file: (its path, None) when it is a regular file inside the results folder, (None, None)
    when the record names none or it is not there, (None, why) when what it names is refused (outside the folder,
    a link, a FIFO, a folder): that file is never read."""
    if not samples_path:
        return None, None
    try:
        path = named_inside(root, samples_path, "samples_path")
        return (path if results_file(root, root / samples_path, "samples_path") else None), None
    except UserError as exc:
        return None, str(exc)
