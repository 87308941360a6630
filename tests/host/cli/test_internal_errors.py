"""An unplanned exception in any verb ends in one line that says it is an internal error and names the file holding
its traceback, with exit code 70; exits, user errors and Ctrl-C keep their own endings. In-process (CliRunner)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import orchestrator.cli.provision as provision_cli
from orchestrator.cli import app
from orchestrator.cli.internal_errors import INTERNAL_ERROR_EXIT
from orchestrator.errors import UserError
from orchestrator.scheduling import commands as sharded

runner = CliRunner()


class Bug(Exception):
    pass


def explode(*args, **kwargs):
    raise Bug("a value nobody expected\nsecond line of the message")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GREENRT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _one_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def _written(line: str) -> Path:
    return Path(line.split("the traceback is in ", 1)[1].split(": please report it", 1)[0])


def test_a_bug_in_a_verb_given_a_results_folder_leaves_its_traceback_there(tmp_path, cache, monkeypatch):
    results = tmp_path / "results"
    results.mkdir()
    (results / "plan.json").write_text(json.dumps({"runs": []}))
    monkeypatch.setattr(sharded, "status", explode)
    result = runner.invoke(app, ["status", str(results)])
    assert result.exit_code == INTERNAL_ERROR_EXIT == 70
    line = _one_line(result)
    assert line.startswith("error: internal error in greenrt `greenrt status` (Bug: a value nobody expected second "
                           "line of the message); the traceback is in ")
    written = _written(line)
    assert written.parent == results.absolute() and written.name.startswith("internal-error-")
    text = written.read_text()
    assert "Traceback (most recent call last)" in text and "def explode" not in text and "in explode" in text
    assert "Bug: a value nobody expected" in text
    assert not cache.exists()


def test_without_a_results_folder_the_traceback_goes_to_the_cache(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(provision_cli, "EnvironmentManager", explode)  # a verb of a sub-group: env list
    result = runner.invoke(app, ["env", "list"])
    assert result.exit_code == 70
    written = _written(_one_line(result))
    assert written.parent == cache / "internal-errors" and "in explode" in written.read_text()
    assert "greenrt `greenrt env list`" in result.output


def test_an_unwritable_cache_falls_back_to_the_temp_folder(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("GREENRT_CACHE", str(blocker / "cache"))  # a path through a file: mkdir fails
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    monkeypatch.setattr(provision_cli, "EnvironmentManager", explode)
    result = runner.invoke(app, ["env", "list"])
    assert result.exit_code == 70
    assert _written(_one_line(result)).parent == tmp_path / "tmp" / "greenrt-internal-errors"


@pytest.mark.parametrize("raised,code", [(typer.Exit(3), 3), (UserError("--x: a mistake; valid: y"), 2),
                                         (KeyboardInterrupt(), 130)])
def test_exits_user_errors_and_ctrl_c_keep_their_own_endings(cache, monkeypatch, raised, code):
    def raise_it(*args, **kwargs):
        raise raised

    monkeypatch.setattr(provision_cli, "EnvironmentManager", raise_it)
    result = runner.invoke(app, ["env", "list"])
    assert result.exit_code == code, result.output
    assert "internal error" not in result.output and not cache.exists()
