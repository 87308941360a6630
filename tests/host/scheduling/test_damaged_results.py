"""Damaged results directories: every command answers in one line naming the damaged file and what to do, stops
(non-zero) where it cannot go on, and never rewrites or deletes what the user has.

One real sharded sweep is measured per test session (ONNX Runtime, MobileNetV2 batch 1, two repetitions as two
shards through the local launcher, on a synthetic powercap tree so that sample files exist), merged by `greenrt
merge`; each case copies it, damages one file, runs one command and compares every file's bytes before and after.
docs/faults.md's "Damaged results" table lists these cases.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from testkit.faults_helpers import ORT, fault_config, sweep_env
from orchestrator.scheduling.sharded import write_manifest
from testkit.powercap import make_powercap_tree
from testkit.sweep_helpers import GREENRT

pytestmark = pytest.mark.process

DERIVED = ("tables", "report", "compare")  # what the commands write from the user's files, and may write again


@pytest.fixture(scope="session")
def pristine(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("damaged")
    config = fault_config(base / "sweep.toml", runtimes=[ORT], repetitions=2, min_seconds=0.3)
    tree = make_powercap_tree(base / "powercap", packages=1, dram=False)
    out = base / "sweep"
    lock = base / "lock"
    for shard in ("1/2", "2/2"):
        done = subprocess.run([GREENRT, "sweep", "--config", str(config), "--out", str(out), "--launcher", "local",
                               "--powercap-root", str(tree.root), "--shard", shard],
                              capture_output=True, text=True, timeout=300, env=sweep_env(lock))
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    write_manifest(out, 2, "by-repetition", [1, 2], config)  # what a Slurm submission records
    merged = subprocess.run([GREENRT, "merge", str(out)], capture_output=True, text=True, timeout=300,
                            env=sweep_env(lock))
    assert merged.returncode == 0, merged.stdout[-3000:] + merged.stderr[-3000:]
    assert len((out / "runs.jsonl").read_text().splitlines()) == 2 and (out / "tables").is_dir()
    return {"out": out, "config": config, "powercap": tree.root, "lock": lock}


def _first_run(root: Path) -> str:
    import json

    return json.loads((root / "runs.jsonl").read_text().splitlines()[0])["run_id"]


def _insert_line(junk: bytes) -> Callable[[Path], str]:
    def damage(root: Path) -> str:
        lines = (root / "runs.jsonl").read_bytes().splitlines(keepends=True)
        (root / "runs.jsonl").write_bytes(lines[0] + junk + b"\n" + b"".join(lines[1:]))
        return "runs.jsonl: 1 unreadable line(s) (2"
    return damage


def _garbage(name: str, marker: str) -> Callable[[Path], str]:
    def damage(root: Path) -> str:
        path = root / name
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # cut short, as a crash or a full disk
        return marker
    return damage


def _cut_last_line(root: Path) -> str:
    with open(root / "runs.jsonl", "ab") as fh:
        fh.write(b'{"run_id": "r009-mobilenet_v2", "sta')
    return "runs.jsonl: 1 unreadable line(s) (3"


def _result_json(root: Path) -> str:
    path = root / "runs" / _first_run(root) / "result.json"
    path.write_bytes(path.read_bytes()[:40])
    return "result.json: unreadable"


def _samples(root: Path) -> str:
    path = root / "samples" / f"{_first_run(root)}.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return f"samples/{_first_run(root)}.parquet: "


def _tables(root: Path) -> str:
    shutil.rmtree(root / "tables")
    return "tables: missing"


DAMAGES: dict[str, Callable[[Path], str]] = {
    "plan.json": _garbage("plan.json", "plan.json: unreadable"),
    "host.json": _garbage("host.json", "host.json: unreadable"),
    "baseline.json": _garbage("baseline.json", "baseline.json: unreadable"),
    "runs.jsonl garbage line": _insert_line(b"this line is not JSON"),
    "runs.jsonl binary junk": _insert_line(b"\x00\xff\xfe\x89PNG\x1a\x00\xc3\x28"),
    "runs.jsonl cut-short last line": _cut_last_line,
    "runs/<id>/result.json": _result_json,
    "samples/<id>.parquet truncated": _samples,
    "tables/ deleted": _tables,
}
COMMANDS = ("sweep", "report", "merge", "compare", "advise", "status")
# (exit status, whether the command names the damaged file) per damage and command; None: every other command.
# 0 with a line: it went on without the file and said so; 2: it cannot go on and wrote nothing.
EXPECTED: dict[str, dict[str, tuple[int, bool]]] = {
    "plan.json": {c: (2, True) for c in COMMANDS},
    "host.json": {"sweep": (0, True), "report": (0, True), "merge": (2, True), "compare": (0, True),
                  "advise": (0, True), "status": (0, True)},
    "baseline.json": {"sweep": (0, True), "report": (0, True), "merge": (2, True), "compare": (0, False),
                      "advise": (0, False), "status": (0, True)},
    **{name: {"sweep": (0, True), "report": (0, True), "merge": (2, True), "compare": (0, True), "advise": (0, True),
              "status": (0, True)} for name in DAMAGES if name.startswith("runs.jsonl")},
    # The journal holds each run's result: the runner's own file is read by no command but status.
    "runs/<id>/result.json": {**{c: (0, False) for c in COMMANDS}, "status": (0, True)},
    # The power trace (the report's, also at the end of sweep and merge) reads the first run's samples.
    "samples/<id>.parquet truncated": {"sweep": (0, True), "report": (0, True), "merge": (0, True),
                                       "compare": (0, False), "advise": (0, False), "status": (0, True)},
    "tables/ deleted": {**{c: (0, False) for c in COMMANDS}, "status": (0, True)},
}


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root).parts[0] not in DERIVED}


def _command(name: str, root: Path, pristine: dict[str, Path], scratch: Path) -> list[str]:
    return {"sweep": ["sweep", "--config", str(pristine["config"]), "--out", str(root), "--launcher", "local",
                      "--powercap-root", str(pristine["powercap"])],
            "report": ["report", str(root)], "merge": ["merge", str(root)],
            "compare": ["compare", str(root), str(pristine["out"]), "--out", str(scratch / "comparison")],
            "advise": ["advise", str(root)], "status": ["status", str(root)]}[name]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_file_is_named_in_one_line_and_nothing_the_user_has_changes(pristine, tmp_path, damage, command):
    root = tmp_path / "sweep"
    shutil.copytree(pristine["out"], root, symlinks=True)
    marker = DAMAGES[damage](root)
    before = _snapshot(root)
    done = subprocess.run([GREENRT, *_command(command, root, pristine, tmp_path)], capture_output=True, text=True,
                          timeout=300, env=sweep_env(pristine["lock"]))
    output = (done.stdout + done.stderr).splitlines()
    code, named = EXPECTED[damage][command]
    assert done.returncode == code, "\n".join(output[-30:])
    naming = [line for line in output if marker in line]
    if named:
        assert len(naming) == 1, (marker, "\n".join(output[-30:]))
        if code != 0:  # it stopped: that line is all it says
            assert len([line for line in done.stderr.splitlines() if line.strip()]) == 1, done.stderr
    else:
        assert naming == [], naming
    after = _snapshot(root)
    assert after == before, {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
