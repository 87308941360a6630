"""What every launcher offers: start a runner in a runtime's environment, wait for it, and say how it ended."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence


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


class Launcher(ABC):
    name: str

    @abstractmethod
    def prepare(self, environment: str) -> str:
        """Make the environment ready before anything is measured; returns a description for the record."""

    @classmethod
    @abstractmethod
    def end_leftovers(cls, log: Callable[[str], None]) -> int:
        """End what this kind of launcher's runs left behind when their sweep was killed with SIGKILL (processes,
        containers) and whose owner is gone; say each; return how many. Called before any sweep measures."""

    @abstractmethod
    def launch(self, environment: str, argv: list[str], *, workdir: Path, timeout_s: float,
               env_vars: dict[str, str], log_path: Path, writable: Sequence[Path] = (),
               readonly: Sequence[Path] = (), gpu: bool = False) -> LaunchOutcome:
        """Run `python -m runners <argv>` in the environment and wait; never raises for a runner's failure.

        `workdir` and `writable` are the only paths the runner may write, `readonly` the others it reads (a
        container sees nothing else of the host); `gpu` asks for the host's GPUs.
        """


def tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 16_384))
            return "\n".join(fh.read().decode(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""
