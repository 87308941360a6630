"""The Typer application, its consoles, the shared option help texts and the way user errors end a command (exit 2;
an internal error ends in exit 70: internal_errors.py)."""
from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from orchestrator.cli.internal_errors import InternalErrors
from orchestrator.errors import UserError
from orchestrator.execution.launchers.choice import LAUNCHERS
from orchestrator.provisioning.environments import EnvironmentBuildError
from orchestrator.provisioning.images import ImageBuildError
from orchestrator.scheduling.shards import POLICIES

# InternalErrors: every verb's unplanned exception ends in one line naming the file that holds its traceback, exit 70.
app = typer.Typer(help="Energy and latency of DL inference across runtime infrastructures.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False, cls=InternalErrors)
env_app = typer.Typer(help="The runtimes' environments (venvs built from images/<env>/requirements.txt).",
                      no_args_is_help=True)
app.add_typer(env_app, name="env")
images_app = typer.Typer(help="The runtimes' Docker images (images/<env>/Dockerfile), built from this checkout.",
                         no_args_is_help=True)
app.add_typer(images_app, name="images")
# Logs of a sweep are read in files and CI output: don't fold them at 80 columns when not on a terminal.
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)



class TerminalLines(logging.Handler):
    """The rooms' diagnostics (the `orchestrator` loggers) as greenrt has always printed them: progress lines on
    stdout with their rich markup, warnings and errors on stderr after their yellow or red prefix."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines = console  # where progress lines go: stderr while stdout carries a command's answer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.levelno >= logging.ERROR:
                err.print(Text.assemble(("error:", "red"), " ", text), highlight=False, soft_wrap=True)
            elif record.levelno >= logging.WARNING:
                err.print(Text.assemble(("warning:", "yellow"), " ", text), highlight=False, soft_wrap=True)
            else:
                self.lines.print(text)
        except Exception:  # a line that cannot be shown never stops a sweep
            self.handleError(record)


terminal = TerminalLines()


@app.callback()
def show_diagnostics() -> None:
    """Every verb shows the rooms' log lines on the terminal (installed once, whichever verb runs first)."""
    rooms = logging.getLogger("orchestrator")
    if terminal not in rooms.handlers:
        rooms.addHandler(terminal)
    rooms.setLevel(logging.INFO)


@contextmanager
def progress_on_stderr() -> Iterator[None]:
    """Progress lines on stderr for the while: the verb's stdout is its answer (`$(greenrt env python torch)`)."""
    terminal.lines = err
    try:
        yield
    finally:
        terminal.lines = console


POWERCAP_HELP = "Root of the powercap sysfs tree (default: $GREENRT_POWERCAP_ROOT, else /sys/class/powercap)."
PYTHON_HELP = "Run every runtime in this existing interpreter instead of building venvs (e.g. a cluster module)."
LAUNCHER_HELP = ("docker: each run in a container of its runtime's image; local: a process in the runtime's venv "
                 "(or --python); auto: docker where the engine and every needed image are ready, else local.")
GPUS_HELP = ("GPUs given to each run of a GPU runtime (both launchers): all, or comma-separated NVML indices (as "
             "nvidia-smi numbers them), UUIDs or PCI bus ids. Energy per inference counts these GPUs; the node's "
             "others are kept in their own column.")
SHARD_POLICY_HELP = (f"How runs split into shards: {POLICIES[0]} (every shard runs every cell and the repetitions "
                     f"are divided, so comparisons stay paired within a host), {POLICIES[1]}, or {POLICIES[2]} (whole "
                     f"model x batch x precision groups, every repetition). Default: {POLICIES[0]}; {POLICIES[2]} for "
                     f"an adaptive sweep, whose shards run their own rounds.")
SCHEDULERS = ("none", "slurm")
BASE_IMAGE_HELP = "Base image to build FROM (default: each Dockerfile's pinned NVIDIA CUDA image)."


@contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except (UserError, EnvironmentBuildError, ImageBuildError) as exc:
        for line in str(exc).splitlines() or [""]:  # one line per mistake (a config lists all of its mistakes)
            err.print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def check_launcher(name: str) -> None:
    if name not in LAUNCHERS:
        raise UserError(f"unknown launcher {name!r}; valid: {', '.join(LAUNCHERS)}")


def fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3g}" if value < 100 else f"{value:.0f}"
