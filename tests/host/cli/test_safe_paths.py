"""orchestrator/safe_paths.py, the one place that looks at a path the user gives: each way a path can fail is refused
in one line that names the path and what is wrong, and a FIFO or a device is refused without being opened."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from orchestrator import safe_paths
from orchestrator.errors import UserError

ROOT_READS_ALL = "root reads and writes whatever the mode bits say (EACCES cannot be produced for root)"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """One of each thing a user may name by mistake, under tmp_path."""
    (tmp_path / "file.toml").write_text("name = 'x'\n")
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "loop-a").symlink_to("loop-b")
    (tmp_path / "loop-b").symlink_to("loop-a")
    (tmp_path / "dangling").symlink_to("nothing-here")
    (tmp_path / "link-to-file").symlink_to("file.toml")
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)  # no execute bit at all: access(X_OK) is False even for root
    return tmp_path


def refusal(call, *args, **kwargs) -> str:
    with pytest.raises(UserError) as caught:
        call(*args, **kwargs)
    line = str(caught.value)
    assert "\n" not in line and "Traceback" not in line
    return line


# (what is given, relative to the tree; the reason each opener must give). "{tree}" is the tree's own path.
FAILURES = [
    ("", "an empty path"),
    ("   ", "an empty path"),
    ("a\0b", "a NUL character in the path"),
    ("absent", "no such"),
    ("fifo", "a named pipe (FIFO)"),
    ("/dev/null", "a device"),
    ("loop-a", "a symbolic link loop"),
    ("dangling", "a symbolic link to nothing ('nothing-here' does not exist)"),
    ("file.toml/inside", "a path through a file ('{tree}/file.toml' is a file, not a folder)"),
    ("n" * 300, "a name too long (300 bytes in one name; the file system allows 255)"),
    ("/".join(["d"] * 2100), "a path too long ("),
]


def _given(tree: Path, text: str) -> str:
    return text if not text.strip() or text.startswith("/") or "\0" in text else str(tree / text)


@pytest.mark.parametrize("text,reason", FAILURES)
def test_each_way_a_file_fails_is_one_line(tree, text, reason):
    line = refusal(safe_paths.readable_file, _given(tree, text), "--config")
    assert line.startswith("--config ") and reason.format(tree=tree) in line
    assert line.endswith("; valid: a readable regular file")


@pytest.mark.parametrize("text,reason", FAILURES)
def test_each_way_a_folder_fails_is_one_line(tree, text, reason):
    line = refusal(safe_paths.existing_folder, _given(tree, text), "results folder")
    assert line.startswith("results folder ") and reason.format(tree=tree) in line


@pytest.mark.parametrize("text,reason", [f for f in FAILURES if f[0] != "absent"])
def test_each_way_a_folder_to_write_fails_is_one_line(tree, text, reason):
    line = refusal(safe_paths.writable_folder, _given(tree, text), "--out")
    assert line.startswith("--out ") and reason.format(tree=tree) in line


@pytest.mark.parametrize("text,reason", [f for f in FAILURES if f[0] not in ("absent", "n" * 300)])
def test_each_way_a_program_fails_is_one_line(tree, text, reason):
    line = refusal(safe_paths.executable, _given(tree, text), "--python")
    assert line.startswith("--python ") and reason.format(tree=tree) in line


def test_a_folder_is_not_a_file_and_a_file_is_not_a_folder(tree):
    assert "a folder, not a file" in refusal(safe_paths.readable_file, tree / "folder", "--config")
    assert "a file, not a folder" in refusal(safe_paths.existing_folder, tree / "file.toml", "results folder")
    assert "a file, not a folder" in refusal(safe_paths.writable_folder, tree / "file.toml", "--out")
    assert "a folder, not a program" in refusal(safe_paths.executable, tree / "folder", "--python")


@pytest.mark.timeout(20)
def test_a_fifo_is_refused_without_being_opened(tree):
    """Opening a FIFO for reading blocks until a writer comes: the refusal must come at once, and the FIFO is still
    there, untouched, with nobody having opened it (a reader would have blocked this test until the timeout)."""
    line = refusal(safe_paths.read_bytes, tree / "fifo", "config file")
    assert "a named pipe (FIFO), not a regular file: refused, never read" in line
    assert stat.S_ISFIFO(os.lstat(tree / "fifo").st_mode)


def test_devices_are_refused_for_every_use(tree):
    assert "a device, not a regular file" in refusal(safe_paths.read_bytes, "/dev/zero", "config file")
    assert "a device, not a folder" in refusal(safe_paths.writable_folder, "/dev/null", "--out")
    assert "a device, not a program" in refusal(safe_paths.executable, "/dev/null", "--python")


def test_what_is_usable_is_given_back(tree):
    assert safe_paths.readable_file(tree / "link-to-file", "--config") == tree / "link-to-file"
    assert safe_paths.read_bytes(tree / "file.toml", "config file") == b"name = 'x'\n"
    assert safe_paths.existing_folder(tree / "folder", "results folder") == tree / "folder"
    assert safe_paths.existing_folder(tree / "absent", "--powercap-root", missing_ok=True) == tree / "absent"
    new = tree / "folder" / "new" / "deeper"
    assert safe_paths.writable_folder(new, "--out") == new and not (tree / "folder" / "new").exists()
    assert safe_paths.executable("sh", "--python").name == "sh"  # a command name, found on PATH


def test_missing_ok_still_refuses_what_is_in_the_way(tree):
    for name, reason in (("file.toml", "a file, not a folder"), ("fifo", "a named pipe"), ("loop-a", "loop")):
        assert reason in refusal(safe_paths.existing_folder, tree / name, "--powercap-root", missing_ok=True)


def test_a_results_folder_that_must_exist(tree):
    assert "no such folder" in refusal(safe_paths.writable_folder, tree / "absent", "results folder", must_exist=True)


def test_a_program_without_its_execute_bit_or_not_on_path(tree):
    assert "not executable (permission denied)" in refusal(safe_paths.executable, tree / "script.sh", "--python")
    assert "no such command on PATH" in refusal(safe_paths.executable, "no-such-python-3.99", "--python")


@pytest.mark.skipif(os.geteuid() == 0, reason=ROOT_READS_ALL)
def test_unreadable_and_unwritable_for_real(tree):
    (tree / "file.toml").chmod(0)
    (tree / "folder").chmod(0o500)
    try:
        assert "not readable (permission denied)" in refusal(safe_paths.read_bytes, tree / "file.toml", "config file")
        assert "not writable (permission denied)" in refusal(safe_paths.writable_folder, tree / "folder", "--out")
        assert "'{}' is not writable".format(tree / "folder") in refusal(
            safe_paths.writable_folder, tree / "folder" / "new", "--out")
    finally:
        (tree / "file.toml").chmod(0o644)
        (tree / "folder").chmod(0o755)


def test_permission_denied_and_a_read_only_file_system_as_the_kernel_reports_them(tree, monkeypatch):
    """What access() and statvfs() answer for a file the process may not read and a folder on a read-only mount
    (neither can be made here without root's mount or a non-root user), each turned into its own line."""
    monkeypatch.setattr(safe_paths.os, "access", lambda path, mode: False)
    assert "not readable (permission denied)" in refusal(safe_paths.readable_file, tree / "file.toml", "--config")
    assert "cannot be listed or entered (permission denied)" in refusal(
        safe_paths.existing_folder, tree / "folder", "results folder")
    assert "not writable (permission denied)" in refusal(safe_paths.writable_folder, tree / "folder", "--out")

    class ReadOnly:
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(safe_paths.os, "statvfs", lambda path: ReadOnly())
    assert "on a read-only file system" in refusal(safe_paths.writable_folder, tree / "folder", "--out")
    line = refusal(safe_paths.writable_folder, tree / "folder" / "new", "--out")
    assert f"cannot be made: '{tree / 'folder'}' is on a read-only file system" in line


def test_a_long_path_is_shown_by_its_ends_on_one_line(tree):
    line = refusal(safe_paths.readable_file, str(tree / ("n" * 300)), "--config")
    assert len(line) < 400 and f"({len(str(tree / ('n' * 300)))} characters)" in line
    assert "'\\n'" not in line and "\\n" in refusal(safe_paths.readable_file, str(tree / "a\nb"), "--config")


def test_inside_keeps_a_named_path_in_its_folder(tree):
    (tree / "folder" / "escape").symlink_to(tree / "file.toml")
    assert safe_paths.inside(tree / "folder", "a/../b", "--trace-run") == (tree / "folder" / "b").resolve()
    assert "leads outside" in refusal(safe_paths.inside, tree / "folder", "../file.toml", "--trace-run")
    assert "leads outside" in refusal(safe_paths.inside, tree / "folder", "/etc/passwd", "samples_path")
    assert "leads outside" in refusal(safe_paths.inside, tree / "folder", "escape", "samples_path")


def test_a_file_that_may_be_absent_is_absent_only_when_nothing_is_there(tree):
    """A journal that is a loop, a link to nothing or a folder must not read as "no journal yet" (a resume would then
    measure again into a folder whose journal it cannot read)."""
    assert safe_paths.file_if_any(tree / "runs.jsonl", "journal") is None
    assert safe_paths.file_if_any(tree / "file.toml", "journal") == tree / "file.toml"
    for name, reason in (("loop-a", "a symbolic link loop"), ("dangling", "a symbolic link to nothing"),
                         ("folder", "a folder, not a file"), ("fifo", "a named pipe (FIFO)"),
                         ("file.toml/runs.jsonl", "a path through a file")):
        assert reason in refusal(safe_paths.file_if_any, tree / name, "journal")
