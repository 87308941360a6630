"""A sweep's progress on the console: a bar with the time left on a terminal, and one line per finished run where
stdout is not one (a log file, CI, a pipe): its place, run id, status, seconds and the time left.

The time left starts from `greenrt plan`'s estimate of one run (planning/time_budget.py) and is corrected by the
runs that finish: the estimate counts as `PRIOR_RUNS` runs beside the measured ones, so that the first slow or quick
run does not swing it, and a shuffled plan's mean converges to the real one.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

from orchestrator.planning.planner import PlannedRun
from orchestrator.planning.time_budget import clock
from orchestrator.results.record import RunRecord

PRIOR_RUNS = 3.0


class Eta:
    """The time left of `total` runs: one run's estimate, corrected by the seconds each finished run took (from the
    previous one's end: its cooldown and any baseline recheck included)."""

    def __init__(self, total: int, run_estimate_s: float, now: Callable[[], float] = time.monotonic) -> None:
        self.total, self.prior, self.now = total, max(run_estimate_s, 0.0), now
        self.done, self.spent = 0, 0.0
        self.last = now()

    def finished(self) -> float:
        """Count a run as finished now; the seconds since the previous one finished."""
        at = self.now()
        took, self.last = at - self.last, at
        self.done += 1
        self.spent += took
        return took

    def per_run(self) -> float:
        return (self.prior * PRIOR_RUNS + self.spent) / (PRIOR_RUNS + self.done)

    def remaining(self) -> float:
        """Seconds left: the runs not finished at the corrected mean, less what the current run has already spent."""
        left = self.total - self.done
        if left <= 0:
            return 0.0
        return max(left * self.per_run() - (self.now() - self.last), 0.0)


def status_of(record: RunRecord) -> str:
    return record.status if record.ok or record.failure is None else f"{record.status} ({record.failure.kind})"


def run_line(done: int, total: int, record: RunRecord, eta_s: float) -> str:
    """The non-terminal log's line for one finished run."""
    seconds = f"{record.wall_seconds:.1f} s" if record.wall_seconds is not None else "- s"
    return f"run {done}/{total} {record.run_id}: {status_of(record)}, {seconds}; eta {clock(eta_s)}"


class _EtaColumn(ProgressColumn):
    def __init__(self, eta: Eta) -> None:
        super().__init__()
        self.eta = eta

    def render(self, task: Task) -> Text:
        return Text(f"eta {clock(self.eta.remaining())}", style="progress.remaining")


class RichSweepView:
    """A sweep's SweepView (execution/sweep.py): a bar on a terminal, else a line per finished run (its failures'
    reasons come through the logger either way)."""

    def __init__(self, console: Console, run_estimate_s: float, now: Callable[[], float] = time.monotonic) -> None:
        self.console, self.run_estimate_s, self.now = console, run_estimate_s, now

    @contextmanager
    def runs(self, total: int) -> Iterator["_RunProgress"]:
        eta = Eta(total, self.run_estimate_s, self.now)
        if not self.console.is_terminal:
            yield _RunProgress(eta, None, None, self.console)
            return
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   _EtaColumn(eta))
        with Progress(*columns, console=self.console) as progress:
            yield _RunProgress(eta, progress, progress.add_task("runs", total=total), self.console)


class _RunProgress:
    def __init__(self, eta: Eta, progress: Optional[Progress], task: Optional[int], console: Console) -> None:
        self.eta, self.progress, self.task, self.console = eta, progress, task, console

    def starting(self, run: PlannedRun) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, description=f"{run.cell.model} bs{run.cell.batch_size} {run.cell.runtime}")

    def finished(self, run: PlannedRun, record: RunRecord) -> None:
        self.eta.finished()
        if not record.ok and record.failure:
            self.console.print(f"[red]failed[/red] {run.run_id}: {record.failure.kind}: "
                               f"{record.failure.message[:300]}")
        if self.progress is None or self.task is None:
            self.console.print(run_line(self.eta.done, self.eta.total, record, self.eta.remaining()),
                               highlight=False, soft_wrap=True, markup=False)
        else:
            self.progress.advance(self.task)
