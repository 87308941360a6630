"""Every path the user gives (a config, --out, --python, --powercap-root, a model file, a results folder) is looked at
here before greenrt opens it: one line for each way a path can fail, as a UserError. A named pipe or a device is
refused, never opened: opening a FIFO for reading blocks until some writer comes, so `--config fifo` would hang.

Pure apart from stat/lstat/access/statvfs and the one open of `read_bytes`; imports nothing of greenrt but its errors.
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

from orchestrator.errors import UserError

PATH_MAX = 4096  # Linux's limit on a whole path, in bytes
SHOWN = 120  # a path longer than this is shown by its two ends: the line stays one readable line

FILE = "a readable regular file"
FOLDER = "an existing folder greenrt can read"
NEW_FOLDER = "a folder greenrt can write, or a new one inside such a folder"
PROGRAM = "an executable file, or a command found on PATH"


def shown(text: str) -> str:
    """The path as the error line shows it: quoted and escaped (a newline in a name stays on the line), shortened."""
    if len(text) > SHOWN:
        text = f"{text[:70]}...{text[-40:]} ({len(text)} characters)"
    return repr(text)


def _refused(what: str, text: str, reason: str, valid: str) -> UserError:
    return UserError(f"{what} {shown(text)}: {reason}; valid: {valid}")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _too_long(path: Path) -> str:
    name = max(path.parts, key=lambda part: len(os.fsencode(part)), default="")
    limit = _name_max(path)
    if len(os.fsencode(name)) > limit:
        return f"a name too long ({len(os.fsencode(name))} bytes in one name; the file system allows {limit})"
    return f"a path too long ({len(os.fsencode(str(path)))} bytes; the limit is {PATH_MAX})"


def _name_max(path: Path) -> int:
    for folder in (path, *path.parents):
        try:
            return os.pathconf(folder, "PC_NAME_MAX")
        except (OSError, ValueError):
            continue
    return 255


def _through_file(path: Path) -> str:
    """Which leading part of the path is a file ("a/file/b"; "file/" names the file itself as a folder), for ENOTDIR."""
    for part in (*reversed(path.parents), path):
        try:
            mode = os.stat(part).st_mode
        except OSError:
            break
        if not stat.S_ISDIR(mode):
            return f"a path through a file ({str(part)!r} is {_kind(mode)}, not a folder)"
    return "a path through a file (one of its leading parts is not a folder)"


def _os_reason(exc: OSError, path: Path) -> str:
    """One reason per errno that stat, access or open give for a path."""
    if exc.errno == errno.ENOTDIR:
        return _through_file(path)
    if exc.errno == errno.ELOOP:
        return "a symbolic link loop (too many levels of symbolic links)"
    if exc.errno == errno.ENAMETOOLONG:
        return _too_long(path)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "on a read-only file system"
    return f"cannot be used ({exc.strerror or exc})"


def _plain(raw: str, what: str, valid: str) -> None:
    if not raw.strip():
        raise _refused(what, raw, "an empty path", valid)
    if "\0" in raw:
        raise _refused(what, raw, "a NUL character in the path", valid)


def _look(text: str | os.PathLike[str] | None, what: str, valid: str) -> tuple[Path, os.stat_result | None]:
    """The path and what is there (None: nothing at all), or the one line for an empty string, a NUL character, a
    path through a file, a loop, a name too long, a folder that cannot be searched, and a dangling symbolic link."""
    raw = "" if text is None else os.fspath(text)
    _plain(raw, what, valid)
    path = Path(raw)
    try:
        return path, os.stat(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise _refused(what, raw, _os_reason(exc, path), valid) from None
    try:
        target = os.readlink(path)
    except OSError:
        return path, None
    raise _refused(what, raw, f"a symbolic link to nothing ({target!r} does not exist)", valid)


def _denied(path: Path, mode: int, denied: str) -> str | None:
    """Why the process cannot use `path` as `mode` asks (None: it can). access() answers False for W_OK on a
    read-only mount even for root, so that case is named apart."""
    if os.access(path, mode):
        return None
    if mode & os.W_OK and _read_only(path):
        return "on a read-only file system"
    return denied


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def readable_file(text: str | os.PathLike[str] | None, what: str) -> Path:
    """A regular file the process can read (a symbolic link to one is fine), else one line saying why not."""
    path, st = _look(text, what, FILE)
    if st is None:
        raise _refused(what, str(path), "no such file", FILE)
    if not stat.S_ISREG(st.st_mode):
        kind = _kind(st.st_mode)
        raise _refused(what, str(path), f"{kind}, not a file" if kind == "a folder" else
                       f"{kind}, not a regular file: refused, never read", FILE)
    problem = _denied(path, os.R_OK, "not readable (permission denied)")
    if problem:
        raise _refused(what, str(path), problem, FILE)
    return path


def file_if_any(text: str | os.PathLike[str], what: str) -> Path | None:
    """A file that may not exist yet (a journal before the first run): None only when nothing at all is there, not
    even a link; anything else must pass readable_file, so a loop, a link to nothing, a folder or a FIFO in its place
    is refused instead of being read as "no file"."""
    try:
        os.lstat(text)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        pass  # a loop or a file on the way, a name too long, a NUL: readable_file names it
    return readable_file(text, what)


def read_bytes(text: str | os.PathLike[str] | None, what: str) -> bytes:
    """The bytes of a file the user named, after readable_file's checks. Opened without blocking and checked again
    on the open descriptor: a FIFO swapped in between the look and the open is still refused, not waited on."""
    path = readable_file(text, what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _refused(what, str(path), _os_reason(exc, path), FILE) from None
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _refused(what, str(path), f"{_kind(mode)}, not a regular file: refused, never read", FILE)
        os.set_blocking(fd, True)
        try:
            return fh.read()
        except OSError as exc:  # EISDIR cannot happen here; EIO from a failing disk can
            raise _refused(what, str(path), _os_reason(exc, path), FILE) from None


def existing_folder(text: str | os.PathLike[str] | None, what: str, *, missing_ok: bool = False) -> Path:
    """A folder the process can list and enter. missing_ok: nothing there is fine too (a powercap root that is
    absent means "no RAPL on this host", which the probe says), but anything else in its place is refused."""
    path, st = _look(text, what, FOLDER)
    if st is None:
        if missing_ok:
            return path
        raise _refused(what, str(path), "no such folder", FOLDER)
    if not stat.S_ISDIR(st.st_mode):
        raise _refused(what, str(path), f"{_kind(st.st_mode)}, not a folder", FOLDER)
    problem = _denied(path, os.R_OK | os.X_OK, "cannot be listed or entered (permission denied)")
    if problem:
        raise _refused(what, str(path), problem, FOLDER)
    return path


def writable_folder(text: str | os.PathLike[str] | None, what: str, *, must_exist: bool = False) -> Path:
    """A folder greenrt may write in: an existing one it can write, or (unless must_exist) a path whose nearest
    existing ancestor is a folder it can write, on a file system mounted read-write. Nothing is created here."""
    path, st = _look(text, what, NEW_FOLDER)
    if st is not None:
        if not stat.S_ISDIR(st.st_mode):
            raise _refused(what, str(path), f"{_kind(st.st_mode)}, not a folder", NEW_FOLDER)
        problem = _denied(path, os.R_OK | os.W_OK | os.X_OK, "not writable (permission denied)")
        if problem:
            raise _refused(what, str(path), problem, NEW_FOLDER)
        return path
    if must_exist:
        raise _refused(what, str(path), "no such folder", NEW_FOLDER)
    ancestor = next((p for p in path.absolute().parents if p.exists()), Path("/"))
    if not ancestor.is_dir():  # pragma: no cover - stat() said ENOTDIR above for a path through a file
        raise _refused(what, str(path), _through_file(path), NEW_FOLDER)
    problem = _denied(ancestor, os.W_OK | os.X_OK, "not writable (permission denied)")
    if problem:
        raise _refused(what, str(path), f"cannot be made: {str(ancestor)!r} is {problem}", NEW_FOLDER)
    return path


def executable(text: str | os.PathLike[str] | None, what: str) -> Path:
    """A program the process can run: a path to an executable regular file, or a bare command name found on PATH
    (as `--python python3.11` is meant)."""
    raw = "" if text is None else os.fspath(text)
    _plain(raw, what, PROGRAM)
    if os.sep not in raw:
        found = shutil.which(raw)
        if found is None:
            raise _refused(what, raw, "no such command on PATH", PROGRAM)
        raw = found
    path, st = _look(raw, what, PROGRAM)
    if st is None:
        raise _refused(what, raw, "no such file", PROGRAM)
    if not stat.S_ISREG(st.st_mode):
        raise _refused(what, raw, f"{_kind(st.st_mode)}, not a program", PROGRAM)
    problem = _denied(path, os.X_OK, "not executable (permission denied)")
    if problem:
        raise _refused(what, raw, problem, PROGRAM)
    return path


def inside(root: Path, candidate: str | os.PathLike[str], what: str) -> Path:
    """`candidate` (a record's path, a run id made a path) resolved, refused unless it stays inside `root`: no file
    outside a results folder is read or written because something in it, or an argument, names it."""
    try:
        resolved = (root / candidate).resolve()
        base = root.resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # RuntimeError: a loop on Python < 3.13's strict=False
        raise _refused(what, os.fspath(candidate), f"cannot be resolved ({exc})", f"a path inside {str(root)!r}")
    if resolved != base and base not in resolved.parents:
        raise _refused(what, os.fspath(candidate), f"leads outside {str(root)!r}", f"a path inside {str(root)!r}")
    return resolved


__all__ = ["existing_folder", "executable", "file_if_any", "inside", "read_bytes", "readable_file", "shown", "writable_folder"]
