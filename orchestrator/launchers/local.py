"""The local launcher: the runner as a child process of the host, in the runtime's venv or a given interpreter."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Sequence

from orchestrator import paths
from orchestrator.environments import EnvironmentBuildError, EnvironmentManager
from orchestrator.launchers.base import LaunchOutcome, Launcher, tail

OWNER_ENV = "GREENRT_OWNER_PID"  # in every runner's environment: the greenrt process that started it


class LocalLauncher(Launcher):
    name = "local"

    def __init__(self, environments: EnvironmentManager) -> None:
        self.environments = environments

    def prepare(self, environment: str) -> str:
        return str(self.environments.python_for(environment))

    def launch(self, environment: str, argv: list[str], *, workdir: Path, timeout_s: float,
               env_vars: dict[str, str], log_path: Path, writable: Sequence[Path] = (),
               readonly: Sequence[Path] = (), gpu: bool = False) -> LaunchOutcome:
        # A child process sees the whole host: the mounts and the GPU request only matter to containers.
        started_ns = time.monotonic_ns()
        started = time.monotonic()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            python = self.environments.python_for(environment)
        except EnvironmentBuildError as exc:
            return LaunchOutcome(None, False, time.monotonic() - started, log_path, "", start_error=str(exc),
                                 started_ns=started_ns)
        env = {**os.environ, **env_vars}
        # runners/ and models/ come from the checkout, never from whatever the interpreter has installed.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(paths.PROJECT_ROOT), env_vars.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        # Like the Docker launcher's owner-pid label: a runner whose greenrt was killed (-9) is found and ended by
        # the next sweep on this host (orchestrator/hostlock.py).
        env[OWNER_ENV] = str(os.getpid())
        with open(log_path, "wb") as log:
            # A session of its own, so a time-out kills the runner and every process it started.
            process = subprocess.Popen([str(python), "-m", "runners", *argv], cwd=workdir, env=env,
                                       stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
            try:
                exit_code, timed_out = process.wait(timeout=timeout_s), False
            except subprocess.TimeoutExpired:
                _kill_group(process)
                exit_code, timed_out = None, True
            except BaseException:  # Ctrl-C: leave no runner behind
                _kill_group(process)
                raise
        return LaunchOutcome(exit_code, timed_out, time.monotonic() - started, log_path, tail(log_path),
                             started_ns=started_ns, details={"python": str(python)})


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
