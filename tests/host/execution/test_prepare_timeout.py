"""A conversion or a reference run slower than a run's time limit is not killed by it: preparation steps have their
own limit (prepare_timeout_seconds), and a tight timeout_seconds still stops a run.

The slow preparation is real: the torch environment's interpreter is a wrapper that sleeps before an export or a
reference run, then runs it; the artifact cache is a fresh folder, so the export happens in this test.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from testkit.faults_helpers import ORT, journal
from testkit.sweep_helpers import GREENRT
from testkit.paths import REPO

pytestmark = [pytest.mark.process]

ENVS = REPO / ".cache" / "envs"
SLOW_S, RUN_LIMIT_S = 6, 5


def slow_preparing_python(tmp_path: Path) -> Path:
    real = ENVS / "torch" / "bin" / "python"
    assert real.exists(), "the torch environment is built by make test (make envs) before this tier"
    wrapper = tmp_path / "slow-torch-python"
    wrapper.write_text("#!/bin/sh\n"
                       'case "$*" in *" export "*|*/references/*) echo "preparing slowly" >&2; '
                       f"sleep {SLOW_S};; esac\n"
                       f'exec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def config(tmp_path: Path, interpreter: Path, prepare_limit: float | None) -> Path:
    lines = ['name = "prepare"', 'models = ["mobilenet_v2"]', "batch_sizes = [1]", f"runtimes = {json.dumps([ORT])}",
             f"timeout_seconds = {RUN_LIMIT_S}",
             *([f"prepare_timeout_seconds = {prepare_limit}"] if prepare_limit else []),
             "[warmup]", "iterations = 1", "[measure]", "min_iterations = 3", "min_seconds = 0.5",
             "[baseline]", "seconds = 0.5", "[cooldown]", "seconds = 0.0",
             "[interpreters]", f'torch = "{interpreter}"', f'onnxruntime = "{ENVS / "onnxruntime" / "bin" / "python"}"']
    path = tmp_path / f"prepare-{prepare_limit}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def sweep(tmp_path: Path, config_path: Path, name: str) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / name
    env = {**os.environ, "GREENRT_CACHE": str(tmp_path / f"cache-{name}"), "GREENRT_LOCK_DIR": str(tmp_path / "lock")}
    done = subprocess.run([GREENRT, "sweep", "--config", str(config_path), "--out", str(out), "--launcher", "local",
                           "--powercap-root", str(tmp_path / "no-powercap")],
                          capture_output=True, text=True, timeout=600, env=env)
    return done, out


def test_an_export_slower_than_the_run_limit_is_not_killed_by_it(tmp_path):
    done, out = sweep(tmp_path, config(tmp_path, slow_preparing_python(tmp_path), None), "default")
    assert done.returncode == 0, done.stdout + done.stderr
    [record] = journal(out)
    assert record["status"] == "ok", record.get("failure")
    assert record["fidelity"]["faithful"] is True
    # Both preparation steps were slower than the run limit, and were let finish.
    cache = tmp_path / "cache-default"
    [export_log] = (cache / "artifacts").glob("torch-mobilenet_v2-*/export.log")
    [reference_log] = (cache / "references").glob("torch-mobilenet_v2-*/*.log")
    assert "preparing slowly" in export_log.read_text() and "preparing slowly" in reference_log.read_text()


def test_the_preparation_limit_is_the_users_and_its_failure_is_recorded_with_the_reason(tmp_path):
    done, out = sweep(tmp_path, config(tmp_path, slow_preparing_python(tmp_path), 2), "tight")
    assert done.returncode == 0, done.stdout + done.stderr
    [record] = journal(out)
    assert record["status"] == "failed" and record["failure"]["kind"] == "export"
    assert "timed out" in record["failure"]["message"]
