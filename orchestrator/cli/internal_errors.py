"""What ends a verb that fails in a way nobody planned: one line saying it is an internal error of greenrt and where its
traceback was written, and exit code 70 (EX_SOFTWARE of sysexits.h: distinct from 2, a user error). The Typer
application's group class wraps the invocation of every verb, so no verb has to remember it. Click's usage errors
(an unknown option, a missing argument) end here too, in one line and exit 2 like every other mistake.

Exits, aborts and a closed stdout (EPIPE) keep their own handling; KeyboardInterrupt and SystemExit are not
Exceptions and pass untouched."""
from __future__ import annotations

import errno
import os
import sys
import tempfile
import traceback
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Optional

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from orchestrator import paths

INTERNAL_ERROR_EXIT = 70
# The verbs' parameters that name a results folder: the traceback goes beside the results it was working on.
RESULTS_PARAMS = ("out", "directory")


def _usage_mistake(exc: Exception) -> bool:
    """A usage error (unknown option, missing or badly typed argument): click's own, which carry the context they
    were raised in. The help that `greenrt` alone or a group alone prints is one too, and is kept."""
    return (isinstance(exc, TyperException) and getattr(exc, "ctx", None) is not None
            and type(exc).__name__ != "NoArgsIsHelpError")


def usage_line(exc: Exception) -> str:
    """Click's usage error in one line, with where to read the usage (instead of a boxed panel of five)."""
    message = " ".join(str(getattr(exc, "format_message", exc.__str__)()).split())
    ctx = getattr(exc, "ctx", None)
    command = " ".join(["greenrt", *ctx.command_path.split()[1:]]) if ctx is not None else "greenrt"
    return f"{message} (usage: `{command} --help`)"


def _passes_through(exc: Exception) -> bool:
    return isinstance(exc, (typer.Exit, typer.Abort, TyperException)) or (
        isinstance(exc, OSError) and exc.errno == errno.EPIPE)  # the caller closed our stdout (`greenrt plan | head`)


def _verb_params(tb: Optional[TracebackType]) -> tuple[str, dict[str, Any]]:
    """The innermost command's name and parsed parameters, from the click contexts on the traceback's frames."""
    name, params = "", {}
    while tb is not None:
        for local in ("ctx", "self"):
            ctx = tb.tb_frame.f_locals.get(local)
            if ctx is not None and hasattr(ctx, "command_path") and isinstance(getattr(ctx, "params", None), dict):
                name, params = ctx.command_path, ctx.params
        tb = tb.tb_next
    return name, params


def _results_folder(params: dict[str, Any]) -> Optional[Path]:
    """The greenrt results folder the verb was given, when there is one (plan.json in it) that can be written."""
    for key in RESULTS_PARAMS:
        value = params.get(key)
        if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
            continue
        folder = Path(value)
        try:
            if (folder / "plan.json").is_file() and os.access(folder, os.W_OK | os.X_OK):
                return folder
        except (OSError, ValueError):
            continue
    return None


def _candidates(params: dict[str, Any]) -> list[Path]:
    folder = _results_folder(params)
    return ([folder] if folder else []) + [paths.cache_dir() / "internal-errors",
                                           Path(tempfile.gettempdir()) / "greenrt-internal-errors"]


def write_traceback(exc: BaseException, params: dict[str, Any], verb: str) -> Optional[Path]:
    """The traceback in a new file: the results folder if known, else greenrt's cache, else the temp folder."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    text = (f"greenrt internal error in `{verb}` at {stamp}\ncommand line: {sys.argv!r}\n\n"
            + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    for folder in _candidates(params):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"internal-error-{stamp}.txt"
            with open(target, "x", encoding="utf-8") as fh:
                fh.write(text)
            return target.absolute()
        except (OSError, ValueError):
            continue
    return None


def internal_error_line(exc: Exception, where: Optional[Path], verb: str) -> str:
    said = " ".join(str(exc).split())[:200]
    what = f"{type(exc).__name__}: {said}" if said else type(exc).__name__
    place = (f"the traceback is in {where}" if where is not None
             else "its traceback could not be written anywhere (results folder, cache and temp folder refused)")
    return f"internal error in greenrt `{verb}` ({what}); {place}: please report it with that file"


class InternalErrors(TyperGroup):
    """The application's group: every verb (and sub-group's verb) is invoked inside this one handler."""

    def make_context(self, info_name: Optional[str], args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:  # the options of `greenrt` itself, parsed before any verb
            return super().make_context(info_name, args, parent=parent, **extra)
        except Exception as exc:
            if not _usage_mistake(exc):
                raise
            print(f"error: {usage_line(exc)}", file=sys.stderr, flush=True)
            raise typer.Exit(2) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:  # noqa: BLE001 - the one place that turns a bug into a line and a file
            if _usage_mistake(exc):
                print(f"error: {usage_line(exc)}", file=sys.stderr, flush=True)
                raise typer.Exit(2) from None
            if _passes_through(exc):
                raise
            verb, params = _verb_params(exc.__traceback__)
            verb = " ".join(["greenrt", *(verb or ctx.command_path).split()[1:]])
            where = write_traceback(exc, params, verb)
            print(f"error: {internal_error_line(exc, where, verb)}", file=sys.stderr, flush=True)
            raise typer.Exit(INTERNAL_ERROR_EXIT) from None
