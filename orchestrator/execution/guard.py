"""What keeps a sweep whole under faults: the host lock, SIGINT/SIGTERM, a full disk, and leftovers of killed sweeps.

    with SweepGuard(out) as guard:                 # takes the host-wide lock (or refuses, naming the holder)
        guard.end_leftovers()                      # runners and containers of sweeps killed with SIGKILL
        record = guard.execute(runs, run)          # SIGINT/SIGTERM here: the launcher cleans up (kills the
        guard.append(results, record)              #   process group / removes the container), the run is
                                                   #   journaled as interrupted, and the sweep exits 130/143
A signal arriving while a record is appended waits until the line is written, so a finished run is never recorded
twice nor lost. A full disk (ENOSPC, EDQUOT) anywhere stops the sweep with one line and exit 1; the journal is
left whole (a cut-short append is truncated back, see ResultsDir.append). Rerunning the same command resumes.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Protocol

from orchestrator.execution import hostlock
from orchestrator.execution.launchers.docker import DockerLauncher
from orchestrator.execution.launchers.local import LocalLauncher
from orchestrator.planning.planner import PlannedRun
from orchestrator.results.record import RunRecord
from orchestrator.results.store import ResultsDir, disk_full

logger = logging.getLogger(__name__)

LAUNCHER_KINDS = (LocalLauncher, DockerLauncher)
DISK_FULL_WORDS = ("No space left on device", "Disk quota exceeded")


class ExecutesRuns(Protocol):
    """What the guard runs each run through (execution/run.py's RunExecutor): it makes every record, complete."""

    results: ResultsDir

    def execute(self, run: PlannedRun) -> RunRecord: ...

    def interrupted(self, run: PlannedRun, signal_name: str, wall_seconds: float) -> RunRecord: ...


class SweepStopped(BaseException):
    """The sweep must stop now; `message` is its one line, `exit_code` the CLI's status.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` between the signal and the sweep loop
    swallows it, and launchers clean up on their way out (the local one kills the runner's process group, the
    Docker one removes the container in `finally`).
    """

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message, self.exit_code = message, exit_code


class SweepInterrupted(SweepStopped):
    def __init__(self, signum: int) -> None:
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.signal_name}", 128 + signum)


class SweepGuard:
    def __init__(self, out: Path, signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> None:
        self.out = Path(out)
        self.signals = signals
        self.lock: hostlock.HostLock | None = None
        self.results: ResultsDir | None = None
        self.runs: ExecutesRuns | None = None
        self.current: PlannedRun | None = None
        self._current_since = 0.0
        self._previous: dict[int, Any] = {}
        self._received: int | None = None
        self._deferring = 0

    # -- the lock and the signal handlers, for the whole sweep --------------------------------------------------
    def __enter__(self) -> SweepGuard:
        self.lock = hostlock.acquire(self.out)
        if self.lock.recovered:
            logger.info(f"host lock {self.lock.path}: taken over from a sweep that is no longer running "
                     f"({hostlock.describe_holder(self.lock.recovered)})")
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._received is not None:
            return  # the first one is being handled: let the cleanup finish
        self._received = signum
        if not self._deferring:
            raise SweepInterrupted(signum)

    @contextmanager
    def _deferred(self) -> Iterator[None]:
        """Signals wait until the block is done (a journal line is written whole, or not at all)."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
        if not self._deferring and self._received is not None:
            raise SweepInterrupted(self._received)

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        try:
            stop = self._stop_for(exc)
            if stop is None:
                return False
            logger.error(stop)
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
            if self.lock is not None:
                self.lock.release()
        import typer  # the CLI's way out with a status

        raise typer.Exit(exc.exit_code if isinstance(exc, SweepStopped) else 1) from None

    def _stop_for(self, exc: BaseException | None) -> str | None:
        """The one line to show for an exception that stops the sweep, recording the run in flight; None: not ours."""
        if isinstance(exc, SweepInterrupted):
            where = self._record_interrupted(exc)
            return (f"{exc.message}{where}; every finished run is in {self.out / 'runs.jsonl'}: rerun the same "
                    f"command to resume (`greenrt report {self.out}` writes the tables now)")
        if isinstance(exc, SweepStopped):
            return exc.message
        if disk_full(exc):
            return self._disk_full_message(f"{exc.strerror}: {exc.filename or 'writing'}")
        return None

    def _disk_full_message(self, what: str) -> str:
        return (f"disk full ({what}): the sweep stopped; every finished run is in {self.out / 'runs.jsonl'}: free "
                f"space and rerun the same command to resume")

    def _record_interrupted(self, exc: SweepInterrupted) -> str:
        run, results, runs = self.current, self.results, self.runs
        if run is None or results is None or runs is None:
            return " between runs"
        record = runs.interrupted(run, exc.signal_name, time.monotonic() - self._current_since)
        try:
            results.append(record)
        except OSError as write_error:
            return f" during {run.run_id} (not recorded: {write_error})"
        return f" during {run.run_id} (recorded as interrupted; its runner was stopped)"

    # -- per run ----------------------------------------------------------------------------------------------
    def end_leftovers(self) -> int:
        """Every launcher's leftovers, whichever this sweep uses (a killed Docker sweep's container must not run
        beside a local sweep's measurements)."""
        return sum(launcher.end_leftovers() for launcher in LAUNCHER_KINDS)

    def execute(self, runs: ExecutesRuns, run: PlannedRun) -> RunRecord:
        """runs.execute(run), knowing which run is in flight; a run that failed for a full disk stops the sweep."""
        self.runs, self.results = runs, runs.results
        self.current, self._current_since = run, time.monotonic()
        record = runs.execute(run)
        failure = record.failure
        text = f"{failure.message}\n{failure.log_tail}" if failure else ""
        if any(words in text for words in DISK_FULL_WORDS):
            # Not the run's fault: leave it unrecorded, so that it is measured once there is room again.
            raise SweepStopped(self._disk_full_message(f"{run.run_id}: {failure.kind}: the runner could not "
                                                       "write"), 1)
        return record

    def append(self, results: ResultsDir, record: RunRecord) -> None:
        with self._deferred():
            results.append(record)
            self.current = None
