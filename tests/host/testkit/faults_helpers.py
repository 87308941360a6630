"""Fault-injection helpers: sweeps started in the background, signalled, killed and resumed; journals read back.

Every sweep here gets its own host-lock folder (GREENRT_LOCK_DIR), so these tests neither wait on nor block a
sweep that happens to be measuring on the machine; the lock itself is tested in test_hostlock.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Callable

from testkit.paths import FAULT_SITE
from testkit.sweep_helpers import GREENRT

ORT = "onnxruntime/onnx-from-torch/cpu"  # fast to start; its ONNX export and references are cached


def fault_config(path: Path, *, runtimes: list[str], batch_sizes: str = "[1]", min_seconds: float = 0.5,
                 timeout_seconds: float = 60, cooldown_s: float = 0.0, faults: dict[str, dict[str, str]] | None = None,
                 repetitions: int = 1) -> Path:
    """A tiny sweep of MobileNetV2; `faults` maps a runtime to the GREENRT_TEST_FAULT env of fault_site/."""
    lines = ['name = "faults"', 'models = ["mobilenet_v2"]', f"batch_sizes = {batch_sizes}",
             f"runtimes = {json.dumps(runtimes)}", f"repetitions = {repetitions}",
             f"timeout_seconds = {timeout_seconds}",
             "[warmup]", "iterations = 1", "[measure]", "min_iterations = 3", f"min_seconds = {min_seconds}",
             "[baseline]", "seconds = 0.5", "[cooldown]", f"seconds = {cooldown_s}"]
    for runtime, env in (faults or {}).items():
        lines.append(f'[environment."{runtime}"]')
        lines.append(f'PYTHONPATH = "{FAULT_SITE}"')
        lines += [f'{key} = "{value}"' for key, value in env.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def sweep_env(lock_dir: Path) -> dict[str, str]:
    return {**os.environ, "GREENRT_LOCK_DIR": str(lock_dir)}


def sweep_args(config: Path, out: Path, launcher: str = "local", *extra: str) -> list[str]:
    return [GREENRT, "sweep", "--config", str(config), "--out", str(out), "--launcher", launcher,
            "--powercap-root", str(out.parent / "no-powercap"), *extra]


def run_sweep(config: Path, out: Path, lock_dir: Path, launcher: str = "local", *extra: str,
              timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(sweep_args(config, out, launcher, *extra), capture_output=True, text=True,
                          timeout=timeout, env=sweep_env(lock_dir))


def start_sweep(config: Path, out: Path, lock_dir: Path, launcher: str = "local") -> subprocess.Popen:
    log_path = out.parent / f"{out.name}-{time.monotonic_ns()}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(sweep_args(config, out, launcher), stdout=log, stderr=subprocess.STDOUT,
                                   env=sweep_env(lock_dir))
    process.log_path = log_path
    return process


def output_of(process: subprocess.Popen) -> str:
    return process.log_path.read_text()


def wait_for(condition: Callable[[], object], timeout: float = 120, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def journal(out: Path) -> list[dict]:
    path = out / "runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def planned_run_ids(out: Path) -> list[str]:
    return [run["run_id"] for run in json.loads((out / "plan.json").read_text())["runs"]]


def assert_every_run_once(out: Path, status: str | None = "ok") -> list[dict]:
    """Every planned run has exactly one finished (not interrupted) record in the journal; none is lost."""
    finished = [r for r in journal(out) if r["status"] != "interrupted"]
    ids = [r["run_id"] for r in finished]
    assert sorted(ids) == sorted(planned_run_ids(out)), (ids, planned_run_ids(out))
    if status:
        assert {r["status"] for r in finished} == {status}, [(r["run_id"], r["failure"]) for r in finished]
    return finished


def runner_processes(owner_pid: int, under: Path | None = None) -> list[int]:
    """Live runner processes a greenrt with this pid started (the local launcher marks their environment); with
    `under`, only those whose command line names a path below it."""
    found = []
    marker = f"GREENRT_OWNER_PID={owner_pid}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                if under is not None and str(under).encode() not in (entry / "cmdline").read_bytes():
                    continue
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state not in ("Z", "X"):
                    found.append(int(entry.name))
        except OSError:
            continue
    return found
