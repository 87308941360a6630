"""Generated paths of every way a path can fail, given to every verb and option that takes a path, in-process through
the Typer application: each must end in exit 2 (a user error, not an internal one), at most 3 lines naming the option,
no traceback, and nothing written or rewritten (the folder the paths live in is hashed before and after).

The classes come from what a path can be (missing, a folder for a file and the reverse, a FIFO, a device, a loop, a
link to nothing, a path through a file, a name or a path too long, empty, a NUL character, not executable, not a
command), not from a list of known cases; hypothesis varies the names, the spelling (absolute, relative, ./, //) and
the lengths. 1,380 examples (23 uses x 60); a FIFO that were opened would hang the test instead of failing it."""
from __future__ import annotations

import hashlib
import os
import string
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import typer
from hypothesis import given, settings, strategies as st
from typer.testing import CliRunner

from orchestrator.cli import app

runner = CliRunner()
COMMAND = typer.main.get_command(app)  # built once: building it per call is 9/10 of a CliRunner.invoke
# A name that starts with "-" is read as an option by any command line (a user writes ./-x): not a path class.
NAMES = st.text(alphabet=string.ascii_letters + string.digits + "-_.é ü", min_size=1, max_size=12).filter(
    lambda n: n.strip(".") and n.strip() and not n.startswith("-"))
SPELLINGS = ("absolute", "relative", "dot", "doubled")
MODEL = ["--model", "resnet50", "--runtime", "torch/native/cpu"]


@dataclass(frozen=True)
class Use:
    """One place a verb takes a path: its arguments with P for the fuzzed path, the kind of path it wants, and the
    label its error line names. CONFIG, RESULTS and NEW are a valid config, results folder and absent folder."""
    args: tuple[str, ...]
    kind: str  # file, model, folder, new-folder, folder-or-absent, program, run-id
    label: str


USES = [
    Use(("plan", "--config", "P"), "file", "--config"),
    Use(("sweep", "--config", "P", "--out", "NEW"), "file", "--config"),
    Use(("run", "--model", "P", "--out", "NEW"), "model", "--model"),
    Use(("sweep", "--config", "CONFIG", "--out", "P"), "new-folder", "--out"),
    Use(("run", *MODEL, "--out", "P"), "new-folder", "--out"),
    Use(("compare", "RESULTS", "RESULTS", "--out", "P"), "new-folder", "--out"),
    Use(("status", "P"), "folder", "results folder"),
    Use(("report", "P"), "folder", "results folder"),
    Use(("merge", "P"), "folder", "results folder"),
    Use(("advise", "RESULTS", "P"), "folder", "results folder"),
    Use(("compare", "P", "RESULTS"), "folder", "results folder"),
    Use(("compare", "RESULTS", "P"), "folder", "results folder"),
    Use(("images", "build", "--wheelhouse", "P"), "folder", "--wheelhouse"),
    Use(("doctor", "--powercap-root", "P"), "folder-or-absent", "--powercap-root"),
    Use(("plan", "--config", "CONFIG", "--powercap-root", "P"), "folder-or-absent", "--powercap-root"),
    Use(("sweep", "--config", "CONFIG", "--out", "NEW", "--powercap-root", "P"), "folder-or-absent",
        "--powercap-root"),
    Use(("run", *MODEL, "--out", "NEW", "--powercap-root", "P"), "folder-or-absent", "--powercap-root"),
    Use(("report", "RESULTS", "--trace-run", "P"), "run-id", "--trace-run"),
    Use(("doctor", "--python", "P"), "program", "--python"),
    Use(("plan", "--config", "CONFIG", "--python", "P"), "program", "--python"),
    Use(("sweep", "--config", "CONFIG", "--out", "NEW", "--python", "P"), "program", "--python"),
    Use(("run", *MODEL, "--out", "NEW", "--python", "P"), "program", "--python"),
    Use(("env", "list", "--python", "P"), "program", "--python"),
]

COMMON = ["empty", "nul", "fifo", "device", "loop", "dangling", "through-file", "long-name", "long-path"]
CLASSES = {
    "file": [*COMMON, "missing", "a-folder"],
    "model": [*COMMON, "missing", "a-folder"],
    "folder": [*COMMON, "missing", "a-file"],
    "new-folder": [*COMMON, "a-file"],  # missing is fine: the sweep makes it
    "folder-or-absent": [*COMMON, "a-file"],  # missing is fine: no powercap tree, said by the probe
    "program": [*COMMON, "missing", "a-folder", "not-executable", "not-a-command"],
    "run-id": ["empty", "nul", "escape", "dotted", "through-file", "long-name", "long-path"],  # a path, not an id
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Iterator[Path]:
    """The folder every generated path lives in, and the working directory while the verbs run."""
    root = tmp_path_factory.mktemp("paths")
    (root / "config.toml").write_text('name = "fuzz"\nmodels = ["mobilenet_v2"]\nbatch_sizes = [1]\n'
                                      'runtimes = ["torch/native/cpu"]\n')
    (root / "results").mkdir()
    (root / "results" / "plan.json").write_text("{}")
    (root / "folder").mkdir()
    (root / "a-file").write_text("x")
    os.mkfifo(root / "fifo")
    (root / "loop-a").symlink_to("loop-b")
    (root / "loop-b").symlink_to("loop-a")
    (root / "dangling").symlink_to("nothing-here")
    (root / "script.sh").write_text("#!/bin/sh\n")
    before = os.getcwd()
    os.chdir(root)
    try:
        yield root
    finally:
        os.chdir(before)


def _spelled(root: Path, relative: str, spelling: str) -> str:
    return {"absolute": str(root / relative), "relative": relative, "dot": f"./{relative}",
            "doubled": f"{root}//{relative}"}[spelling]


@st.composite
def bad_paths(draw, root: Path, kind: str) -> tuple[str, str]:
    """(class, path) for a path of `kind` that must be refused."""
    cls = draw(st.sampled_from(CLASSES[kind]))
    name = draw(NAMES)
    # A model's or a program's bare name means "a built-in model" / "a command on PATH": give those a folder part.
    spelling = draw(st.sampled_from(SPELLINGS[:1] + SPELLINGS[2:] if kind in ("model", "program") else SPELLINGS))
    if cls == "empty":
        return cls, draw(st.sampled_from(["", " ", "   ", "\t"]))
    if cls == "nul":
        return cls, f"{name}\0{draw(NAMES)}"
    if cls == "device":
        return cls, draw(st.sampled_from(["/dev/null", "/dev/zero", "/dev/full"]))
    if cls == "escape":
        return cls, draw(st.sampled_from(["..", f"../{name}", f"runs/../../{name}", f"{root}/{name}"]))
    if cls == "dotted":
        return cls, f".{name}"
    if cls == "not-a-command":
        return cls, f"no-such-command-{name}"
    if cls == "long-name":
        return cls, _spelled(root, (name * 600)[:draw(st.integers(256, 600))], spelling)
    if cls == "long-path":
        parts = [name] * (4200 // (len(name.encode()) + 1) + 2)
        return cls, _spelled(root, "/".join(parts), spelling)
    relative = {"missing": f"absent-{name}", "a-folder": "folder", "a-file": "a-file", "fifo": "fifo",
                "loop": draw(st.sampled_from(["loop-a", f"loop-b/{name}"])), "dangling": "dangling",
                "through-file": f"a-file/{name}" + draw(st.sampled_from(["", f"/{name}"])),
                "not-executable": "script.sh"}[cls]
    return cls, _spelled(root, relative, spelling)


def invoke(args: list[str]) -> tuple[int, str]:
    """`greenrt ARGS` in-process: its exit code and its stdout and stderr as the terminal would interleave them."""
    with runner.isolation() as streams:
        try:
            COMMAND.main(args=args, prog_name="greenrt")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception:  # escaped the application: shown as the traceback a user would see
            print(traceback.format_exc(), file=sys.stderr)
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        return code, streams[2].getvalue().decode(errors="replace")


def _fingerprint(root: Path) -> dict[str, tuple]:
    """Every entry under root as lstat sees it, with a regular file's bytes hashed (a FIFO is never opened)."""
    seen = {}
    for entry in sorted(root.rglob("*")):
        st_ = entry.lstat()
        digest = hashlib.sha256(entry.read_bytes()).hexdigest() if entry.is_file() and not entry.is_symlink() \
            else os.readlink(entry) if entry.is_symlink() else ""
        seen[str(entry.relative_to(root))] = (st_.st_mode, st_.st_size, st_.st_mtime_ns, digest)
    return seen


@pytest.mark.parametrize("use", USES, ids=lambda u: f"{'-'.join(a for a in u.args if a != 'P')}:{u.kind}")
@settings(max_examples=60)
@given(data=st.data())
def test_every_bad_path_is_refused_in_one_line_with_nothing_written(tree, use, data):
    cls, path = data.draw(bad_paths(tree, use.kind), label="class and path")
    before = _fingerprint(tree)
    named = {"P": path, "CONFIG": str(tree / "config.toml"), "RESULTS": str(tree / "results"),
             "NEW": str(tree / "new-results")}
    code, output = invoke([named.get(arg, arg) for arg in use.args])
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 2, (cls, path[:200], output[-2000:])
    assert "Traceback" not in output and 1 <= len(lines) <= 3, (cls, output[-2000:])
    assert lines[0].startswith(f"error: {use.label} "), (cls, lines)
    assert _fingerprint(tree) == before, (cls, path[:200])
    assert not (tree / "new-results").exists()
