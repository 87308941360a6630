"""What every launcher offers: start a runner in a runtime's environment, wait for it, and say how it ended."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LaunchOutcome:
    exit_code: int | None  # None when the runner never started or was killed
    timed_out: bool
    seconds: float
    log_path: Path
    log_tail: str
    start_error: str | None = None  # the environment or engine refused to start the runner


class Launcher(ABC):
    name: str

    @abstractmethod
    def prepare(self, environment: str) -> str:
        """Make the environment ready before anything is measured; returns a description for the record."""

    @abstractmethod
    def launch(self, environment: str, argv: list[str], *, workdir: Path, timeout_s: float,
               env_vars: dict[str, str], log_path: Path) -> LaunchOutcome:
        """Run `python -m runners <argv>` in the environment and wait; never raises for a runner's failure."""


def tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 16_384))
            return "\n".join(fh.read().decode(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""
