"""What every launcher offers: start a runner in a runtime's environment, wait for it, and say how it ended."""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from orchestrator.planning.gpus import GpuDescription


@dataclass(frozen=True)
class LaunchOutcome:
    exit_code: int | None  # None when the runner never started or was killed
    timed_out: bool
    seconds: float
    log_path: Path
    log_tail: str
    start_error: str | None = None  # the environment or engine refused to start the runner
    started_ns: int | None = None  # time.monotonic_ns() when the launch began (start-up overhead = runner start - this)
    oom_killed: bool = False  # the kernel killed the runner for memory (known where the launcher can tell)
    details: dict[str, Any] = field(default_factory=dict)  # launcher-specific facts for the record (container, image)


@dataclass(frozen=True)
class LaunchStart:
    """When one launch began, on both monotonic clocks, and its log; `outcome` says how that launch ended."""
    log_path: Path
    started_ns: int
    started: float

    @classmethod
    def now(cls, log_path: Path) -> LaunchStart:
        """Stamp the start of a launch, then make its log's folder."""
        start = cls(log_path, time.monotonic_ns(), time.monotonic())
        log_path.parent.mkdir(parents=True, exist_ok=True)
        return start

    def outcome(self, exit_code: int | None, timed_out: bool = False, start_error: str | None = None,
                oom: bool = False, log_tail: str | None = None, **details: Any) -> LaunchOutcome:
        """The outcome, timed from the start; its log tail is the log's (`log_tail` where the caller knows better)."""
        return LaunchOutcome(exit_code, timed_out, time.monotonic() - self.started, self.log_path,
                             tail(self.log_path) if log_tail is None else log_tail, start_error=start_error,
                             started_ns=self.started_ns, oom_killed=oom, details=details)


class Launcher(ABC):
    name: str

    @abstractmethod
    def prepare(self, environment: str) -> str:
        """Make the environment ready before anything is measured; returns a description for the record."""

    @classmethod
    @abstractmethod
    def end_leftovers(cls) -> int:
        """End what this kind of launcher's runs left behind when their sweep was killed with SIGKILL (processes,
        containers) and whose owner is gone; log each; return how many. Called before any sweep measures."""

    def prepare_client(self, environment: str, client: str) -> str:
        """Make the runner of `client` (a runtime id's suffix) ready in the environment, before anything is
        measured; returns a description for the log, or raises EnvironmentBuildError / ImageBuildError with why it
        cannot run there. Most clients need nothing beyond their environment."""
        return "nothing to prepare"

    @abstractmethod
    def launch(self, environment: str, argv: list[str], *, workdir: Path, timeout_s: float,
               env_vars: dict[str, str], log_path: Path, writable: Sequence[Path] = (),
               readonly: Sequence[Path] = (), gpus: Sequence[GpuDescription] | None = None,
               client: str | None = None) -> LaunchOutcome:
        """Run `python -m runners <argv>` in the environment and wait, or the runner of `client` (a runtime id's
        suffix: launchers/commands.py) with the same arguments; never raises for a runner's failure.

        `workdir` and `writable` are the only paths the runner may write, `readonly` the others it reads (a
        container sees nothing else of the host). `gpus`: this launch's own GPUs, and only those are visible to it
        (by UUID); None: no GPU at all (a CPU run); () : a GPU run on a host whose GPUs NVML does not describe, which
        sees whatever CUDA or the engine sees.
        """


def tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 16_384))
            return "\n".join(fh.read().decode(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""
