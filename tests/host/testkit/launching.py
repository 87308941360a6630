"""The local launcher driving a fake interpreter: a shell script standing in for a runtime's python."""
from __future__ import annotations

import stat
from pathlib import Path

from orchestrator.execution.launchers.local import LocalLauncher
from orchestrator.provisioning.environments import EnvironmentManager


def fake_interpreter(tmp_path: Path, body: str) -> str:
    """An 'interpreter' that ignores `-m runners ...` and does what the test needs a runner to do."""
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def launch(tmp_path: Path, body: str, timeout_s: float = 30):
    launcher = LocalLauncher(EnvironmentManager(default_interpreter=fake_interpreter(tmp_path, body)))
    return launcher.launch("torch", ["run", "--request", "x.json"], workdir=tmp_path, timeout_s=timeout_s,
                           env_vars={"GREENRT_TEST_VAR": "set"}, log_path=tmp_path / "runner.log")
