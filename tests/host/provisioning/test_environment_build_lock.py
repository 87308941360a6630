"""Two processes that need the same environment build it once: the second waits for the first's build and takes it,
instead of removing a venv being installed (what happened when a sweep and a test run shared one cache)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from orchestrator import paths
from orchestrator.provisioning import environments
from orchestrator.provisioning.environments import _STAMP, EnvironmentManager, requirements_digest

pytestmark = pytest.mark.process

# Another process holding the environment's build lock while it "builds" (writes the venv's python and stamp),
# for `seconds`, then releasing it.
BUILDER = textwrap.dedent("""
    import fcntl, sys, time
    from pathlib import Path
    root, name, digest, seconds = Path(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
    with open(root / f"{name}.lock", "a") as fh:
        fcntl.lockf(fh, fcntl.LOCK_EX)
        print("locked", flush=True)
        time.sleep(seconds)
        (root / name / "bin").mkdir(parents=True)
        (root / name / "bin" / "python").write_text("")
        (root / name / sys.argv[5]).write_text(digest)
""")


def test_a_process_waiting_for_anothers_build_takes_it_and_builds_nothing(tmp_path, monkeypatch):
    name = "onnxruntime"
    digest = requirements_digest(paths.requirements_file(name))
    builder = subprocess.Popen([sys.executable, "-c", BUILDER, str(tmp_path), name, digest, "1.5", _STAMP],
                               stdout=subprocess.PIPE, text=True)
    assert builder.stdout.readline().strip() == "locked"
    manager = EnvironmentManager(root=tmp_path)
    assert manager.state(name).state == "absent"
    built = []
    monkeypatch.setattr(manager, "_build", lambda env: built.append(env))
    started = time.monotonic()
    python = manager.python_for(name)
    assert time.monotonic() - started >= 1.0  # it waited for the other build
    assert built == [] and python == tmp_path / name / "bin" / "python"
    assert builder.wait(timeout=30) == 0


def test_an_absent_environment_is_built_under_its_lock(tmp_path, monkeypatch):
    manager = EnvironmentManager(root=tmp_path)
    held = []

    def build(env):
        # the lock is held: another process cannot take it now
        probe = subprocess.run([sys.executable, "-c", "import fcntl, sys; fh = open(sys.argv[1], 'a'); "
                                "fcntl.lockf(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)", str(tmp_path / f"{env}.lock")],
                               capture_output=True)
        held.append(probe.returncode != 0)

    monkeypatch.setattr(manager, "_build", build)
    monkeypatch.setattr(environments.EnvironmentManager, "state",
                        lambda self, env: environments.EnvironmentState(env, "absent", tmp_path / "python", ""))
    manager.python_for("onnxruntime")
    assert held == [True]
