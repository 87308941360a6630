"""The rooms log their diagnostics; the CLI's one handler shows them as greenrt always printed them."""
from __future__ import annotations

import logging

import pytest

from orchestrator.cli.app import progress_on_stderr, show_diagnostics, terminal


@pytest.fixture
def shown():
    rooms = logging.getLogger("orchestrator")
    level = rooms.level
    show_diagnostics()
    show_diagnostics()  # every verb installs it: still one handler
    assert rooms.handlers.count(terminal) == 1
    yield logging.getLogger("orchestrator.execution.sweep")
    rooms.removeHandler(terminal)
    rooms.setLevel(level)


def test_info_lines_go_to_stdout_with_their_markup_and_warnings_to_stderr_with_a_prefix(shown, capsys):
    shown.info("launcher: [bold]local[/bold] (no Docker engine)")
    shown.warning("measure.min_seconds = 0.5 [below 1 s]: short windows")
    shown.error("interrupted by SIGINT between runs")
    out, err = capsys.readouterr()
    assert out == "launcher: local (no Docker engine)\n"
    assert err == ("warning: measure.min_seconds = 0.5 [below 1 s]: short windows\n"
                   "error: interrupted by SIGINT between runs\n")


def test_a_verb_whose_stdout_is_its_answer_shows_progress_on_stderr(shown, capsys):
    with progress_on_stderr():
        shown.info("building environment torch from images/torch/requirements.txt (first use)")
    shown.info("after")
    out, err = capsys.readouterr()
    assert err == "building environment torch from images/torch/requirements.txt (first use)\n" and out == "after\n"


def test_debug_lines_are_not_shown(shown, capsys):
    shown.debug("noise")
    assert capsys.readouterr() == ("", "")
