"""One sweep per host, and what a killed sweep left behind.

Two sweeps measuring at once on one host would corrupt each other's energy (the sensors are host-wide), so a
sweep holds an exclusive lock on a host-wide file while it prepares and measures: `flock(2)` on
`$GREENRT_LOCK_DIR/greenrt-sweep.lock` (default /run/lock, else the temporary folder). The file names its holder
(pid, host, sweep directory, start time) so that a second sweep can say who holds it. The kernel drops the lock
when its process dies, even by SIGKILL: a stale lock is taken over, and the takeover is reported.

Under Slurm the lock is per node (SLURMD_NODENAME joins the file name): several slurmd daemons on one machine are
several nodes to Slurm, and a real cluster's nodes each have their own /run/lock anyway.

A sweep killed with SIGKILL leaves its runner running; whoever holds the lock next asks every launcher to end
what it left whose owner is gone (`Launcher.end_leftovers`, with `alive` below), before measuring anything.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import UserError

LOCK_ENV = "GREENRT_LOCK_DIR"


def lock_dir() -> Path:
    configured = os.environ.get(LOCK_ENV)
    if configured:
        return Path(configured)
    run_lock = Path("/run/lock")
    return run_lock if run_lock.is_dir() and os.access(run_lock, os.W_OK) else Path(tempfile.gettempdir())


def lock_path() -> Path:
    node = os.environ.get("SLURMD_NODENAME")
    suffix = "-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", node) if node else ""
    return lock_dir() / f"greenrt-sweep{suffix}.lock"


def alive(pid: int) -> bool:
    """Running: a zombie (dead, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def describe_holder(facts: dict[str, Any] | None) -> str:
    if not facts or "pid" not in facts:
        return "holder unknown"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(facts.get("started", 0)))
    return f"pid {facts['pid']} on {facts.get('host', '?')}, sweep {facts.get('sweep', '?')}, since {since}"


def _read_facts(fd: int) -> dict[str, Any] | None:
    try:
        raw = os.pread(fd, 65_536, 0)
        facts = json.loads(raw) if raw.strip() else None
    except (OSError, ValueError):
        return None
    return facts if isinstance(facts, dict) else None


@dataclass
class HostLock:
    path: Path
    fd: int
    # The previous holder's facts when the lock was left behind by a process that is gone (killed): reported.
    recovered: dict[str, Any] | None = None

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            os.ftruncate(self.fd, 0)  # a lock file without facts: nobody holds it
        except OSError:
            pass
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = -1


def acquire(sweep_dir: Path, path: Path | None = None) -> HostLock:
    """The host-wide sweep lock, or a UserError naming its holder. Never waits."""
    path = path or lock_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise UserError(f"cannot open the host's sweep lock {path}: {exc.strerror}; set {LOCK_ENV} to a writable "
                        "folder shared by every greenrt on this host") from None
    try:
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, 0o666)  # other users' sweeps must be able to take it too (umask narrowed it)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_facts(fd)
        os.close(fd)
        raise UserError(f"another greenrt sweep is measuring on this host ({describe_holder(holder)}): two at once "
                        f"would corrupt each other's energy; wait for it to finish or stop it (lock {path})") from None
    except OSError as exc:
        os.close(fd)
        raise UserError(f"cannot lock {path}: {exc.strerror}") from None
    previous = _read_facts(fd)
    facts = {"pid": os.getpid(), "host": socket.gethostname(), "sweep": str(sweep_dir), "started": time.time()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(facts).encode(), 0)
    os.fsync(fd)
    # The kernel freed the lock of a process that died holding it; its facts are still in the file.
    recovered = previous if previous and previous.get("pid") != os.getpid() else None
    return HostLock(path, fd, recovered)
