"""The local launcher: the runner as a child process of the host, in the runtime's venv or a given interpreter."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
from pathlib import Path
from typing import Sequence

from orchestrator import paths
from orchestrator.provisioning.environments import EnvironmentBuildError, EnvironmentManager
from orchestrator.planning.gpus import GpuDescription, cuda_visible_devices
from orchestrator.execution.hostlock import alive
from orchestrator.execution.launchers.base import LaunchOutcome, Launcher, LaunchStart, tail
from orchestrator.execution.launchers.commands import CPP_RUNNER, RunnerPlace, runner_command

logger = logging.getLogger(__name__)

OWNER_ENV = "GREENRT_OWNER_PID"  # in every runner's environment: the greenrt process that started it
# Builds greenrt-torch-runner against an environment's torch into its bin/ (`make cpp-runner` runs the same).
CPP_BUILD_SCRIPT = paths.PROJECT_ROOT / "runners" / "cpp" / "build.sh"
CPP_BUILD_TIMEOUT_S = 3600  # a full build: ~2 CPU-minutes, 8 minutes wall on a loaded 2-core host


def runner_place(python: Path) -> RunnerPlace:
    """Where a venv's runners are: its interpreter, its bin/ (greenrt-torch-runner), the node_modules/ that npm ci
    put beside bin/ (orchestrator/provisioning/environments.py), and this checkout's runners/."""
    return RunnerPlace(str(python), paths.PROJECT_ROOT, python.parent, python.parent.parent / "node_modules")


class LocalLauncher(Launcher):
    name = "local"

    def __init__(self, environments: EnvironmentManager, cpp_build_script: Path = CPP_BUILD_SCRIPT) -> None:
        self.environments = environments
        self.cpp_build_script = cpp_build_script

    def prepare(self, environment: str) -> str:
        return str(self.environments.python_for(environment))

    def prepare_client(self, environment: str, client: str) -> str:
        """The C++ runner, built into the environment's bin/ where it is missing (runners/cpp/build.sh, as `make
        cpp-runner`); a built one is used as it is: rebuilding it after runners/cpp/ changed is `make cpp-runner`'s
        job (an incremental CMake build), since a rebuild here would replace the program under other sweeps sharing
        the environment."""
        if client != "cpp":
            return "nothing to prepare"
        python = self.environments.python_for(environment)
        program = runner_place(python).bin_dir / CPP_RUNNER
        if program.is_file():
            return f"{program} (built)"
        log = paths.cache_dir() / "envs" / f"{environment}.{CPP_RUNNER}.build.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        logger.info(f"building {CPP_RUNNER} into {program.parent} (first use; log: {log})")
        with open(log, "wb") as out:
            try:
                done = subprocess.run(["sh", str(self.cpp_build_script), str(python)], stdout=out,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=CPP_BUILD_TIMEOUT_S)
                failed = f"exit {done.returncode}" if done.returncode != 0 else None
            except subprocess.TimeoutExpired:
                failed = f"not done after {CPP_BUILD_TIMEOUT_S} s"
        if failed or not program.is_file():
            last = (tail(log, 1) or "no output").strip()[:300]
            raise EnvironmentBuildError(f"building {CPP_RUNNER} ({self.cpp_build_script.name} "
                                        f"{python}) failed ({failed or 'no program installed'}): {last}; see {log}")
        return f"{program} (built now)"

    def launch(self, environment: str, argv: list[str], *, workdir: Path, timeout_s: float,
               env_vars: dict[str, str], log_path: Path, writable: Sequence[Path] = (),
               readonly: Sequence[Path] = (), gpus: Sequence[GpuDescription] | None = None,
               client: str | None = None) -> LaunchOutcome:
        # A child process sees the whole host: the mounts only matter to containers; GPUs are narrowed by CUDA's
        # own variable, by UUID, so that CUDA's device order (fastest first) cannot pick another GPU than NVML's.
        start = LaunchStart.now(log_path)
        try:
            python = self.environments.python_for(environment)
        except EnvironmentBuildError as exc:
            return start.outcome(None, start_error=str(exc), log_tail="")  # no runner, nothing of it in the log
        command, client_vars = runner_command(client, runner_place(python))
        env = {**os.environ, **client_vars, **env_vars}
        # runners/ and models/ come from the checkout, never from whatever the interpreter has installed.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(paths.PROJECT_ROOT), env_vars.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        # Like the Docker launcher's owner-pid label: a runner whose greenrt was killed (-9) is found and ended by
        # the next sweep on this host (orchestrator/execution/hostlock.py).
        env[OWNER_ENV] = str(os.getpid())
        visible = _visible_devices(gpus)
        if visible is not None:
            env["CUDA_VISIBLE_DEVICES"] = visible
            env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # indices, where no UUID is known, then mean NVML's
        counters_before = oom_kill_counters()
        with open(log_path, "wb") as log:
            # A session of its own, so a time-out kills the runner and every process it started.
            try:
                process = subprocess.Popen([*command, *argv], cwd=workdir, env=env,
                                           stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                           start_new_session=True)
            except OSError as exc:  # no such program (node not installed, the C++ runner not built), not runnable
                return start.outcome(None, start_error=f"cannot start {command[0]}: {exc.strerror or exc}",
                                     log_tail="")
            try:
                exit_code, timed_out = process.wait(timeout=timeout_s), False
            except subprocess.TimeoutExpired:
                _kill_group(process)
                exit_code, timed_out = None, True
            except BaseException:  # Ctrl-C: leave no runner behind
                _kill_group(process)
                raise
        oom, evidence = (False, None)
        if exit_code == -signal.SIGKILL and not timed_out:  # what the OOM killer's end looks like, and others'
            oom, evidence = oom_kill_verdict(process.pid, counters_before, oom_kill_counters())
        return start.outcome(exit_code, timed_out, oom=oom, python=str(python),
                             **({"command": command[0]} if client else {}),
                             **({"cuda_visible_devices": visible} if visible is not None else {}),
                             **({"oom_evidence": evidence} if evidence else {}))

    @classmethod
    def end_leftovers(cls) -> int:
        """End the runner processes of local sweeps killed with SIGKILL (their environment names a dead owner)."""
        ended = 0
        for pid, owner in leftover_runner_processes():
            try:
                os.killpg(os.getpgid(pid), signal.SIGKILL)  # its own session: the runner and anything it started
            except (ProcessLookupError, PermissionError):
                continue
            ended += 1
            logger.info(f"ended runner process {pid} left by greenrt {owner}, which is no longer running")
        return ended



def _visible_devices(gpus: Sequence[GpuDescription] | None) -> str | None:
    """CUDA_VISIBLE_DEVICES for the runner: its GPUs' UUIDs, "" for a CPU runtime (so that a framework with CUDA
    cannot quietly use a GPU in a CPU cell), None to leave the variable as the host has it (no NVML description)."""
    if gpus is None:
        return ""
    return cuda_visible_devices(gpus) if gpus else None
def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def leftover_runner_processes(proc: Path = Path("/proc")) -> list[tuple[int, int]]:
    """(pid, owner pid) of runner processes whose greenrt is gone: they would load the host while it measures."""
    marker = f"{OWNER_ENV}=".encode()
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or another user's
            continue
        for var in environ.split(b"\0"):
            if var.startswith(marker):
                owner = var[len(marker):].decode(errors="replace")
                if owner.isdigit() and int(owner) != os.getpid() and not alive(int(owner)) and alive(int(entry.name)):
                    found.append((int(entry.name), int(owner)))
                break
    return found


# The kernel's evidence of an OOM kill, read around each launch: a child's SIGKILL alone does not say who killed it.
_VMSTAT = Path("/proc/vmstat")
_KMSG = Path("/dev/kmsg")


def _own_memory_cgroup_events(proc_cgroup: Path = Path("/proc/self/cgroup"),
                              root: Path = Path("/sys/fs/cgroup")) -> Path | None:
    """This process's memory cgroup file that counts OOM kills (the runner starts in it): cgroup v2's
    memory.events, or v1's memory.oom_control (its oom_kill line, Linux 4.13+)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2: one unified hierarchy
            candidate = root / path.lstrip("/") / "memory.events"
        elif "memory" in controllers.split(","):
            candidate = root / "memory" / path.lstrip("/") / "memory.oom_control"
        else:
            continue
        if candidate.is_file():
            return candidate
    return None


def _counter(path: Path | None, key: str = "oom_kill") -> int | None:
    try:
        for line in path.read_text().splitlines() if path else ():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return None


def oom_kill_counters() -> dict[str, int]:
    """The OOM-kill counters readable here: this process's memory cgroup's ("cgroup") and the system's ("system")."""
    found = {"cgroup": _counter(_own_memory_cgroup_events()), "system": _counter(_VMSTAT)}
    return {name: value for name, value in found.items() if value is not None}


def _kernel_log_names(pid: int, kmsg: Path = _KMSG) -> str | None:
    """The kernel log's OOM-kill line for `pid`, where the log is readable (root, or kernel.dmesg_restrict = 0)."""
    try:
        fd = os.open(kmsg, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    found = None
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        while True:
            try:
                record = os.read(fd, 8192).decode(errors="replace")
            except BlockingIOError:
                break
            except OSError:  # a record overwritten while reading: go on with the next
                continue
            if f"Killed process {pid} " in record:
                found = record.split(";", 1)[-1].strip()
    finally:
        os.close(fd)
    return found


def oom_kill_verdict(pid: int, before: dict[str, int], after: dict[str, int]) -> tuple[bool, str]:
    """(killed by the OOM killer, the evidence in words) for a runner that ended by SIGKILL."""
    logged = _kernel_log_names(pid)
    if logged:
        return True, f"kernel log: {logged[:300]}"
    moved = {name: (before[name], after[name]) for name in before.keys() & after.keys() if after[name] > before[name]}
    if "cgroup" in moved:
        return True, f"the memory cgroup's oom_kill counter rose from {moved['cgroup'][0]} to {moved['cgroup'][1]}"
    if "system" in moved:
        return False, (f"the system's oom_kill counter rose from {moved['system'][0]} to {moved['system'][1]} during "
                       f"the run, but neither the kernel log nor this cgroup's counter names the runner: cannot tell "
                       f"whether it was the victim")
    if not after:
        return False, "cannot tell: no OOM-kill counter is readable here (no memory cgroup file, no /proc/vmstat)"
    return False, "not the OOM killer: no OOM-kill counter moved during the run (another process sent SIGKILL)"
