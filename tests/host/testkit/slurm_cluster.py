"""A real Slurm cluster on this one machine: munged, slurmctld and one slurmd per node name (`slurmd -N nodeX`).

Debian 12's Slurm 22.05 is built with multiple-slurmd support, so several slurmd daemons on one host, each with its
own port, spool folder, pid and log file, make a cluster of that many nodes. Nothing is mocked: greenrt's sbatch,
squeue and scontrol calls reach these daemons through SLURM_CONF. Every daemon started here is stopped by its PID;
a munged that already answered is left alone.

Usable from a shell as well: `python tests/host/testkit/slurm_cluster.py up --nodes 4 --dir /tmp/c` prints the
environment to export, `... down --dir /tmp/c` stops it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")


def install_packages() -> None:
    """Debian's packages, only where a binary is missing (apt takes about 10 s)."""
    if all(shutil.which(b) for b in ("slurmctld", "slurmd", "sbatch", "munged")):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *PACKAGES], check=True, env=env)


def _free_ports(count: int) -> list[int]:
    # A system Slurm may hold the default ports: take ports the kernel hands out as free right now.
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def render_conf(folder: Path, nodes: list[str], ctld_port: int, node_ports: list[int], cpus: int) -> str:
    lines = [
        "ClusterName=greenrt-test",
        "SlurmctldHost=localhost",
        f"SlurmctldPort={ctld_port}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        f"StateSaveLocation={folder}/state",
        f"SlurmdSpoolDir={folder}/spool/%n",
        f"SlurmctldPidFile={folder}/slurmctld.pid",
        f"SlurmdPidFile={folder}/slurmd-%n.pid",
        f"SlurmctldLogFile={folder}/slurmctld.log",
        f"SlurmdLogFile={folder}/slurmd-%n.log",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "AccountingStorageType=accounting_storage/none",
        "JobAcctGatherType=jobacct_gather/none",
        "MpiDefault=none",
        "ReturnToService=2",
        # Finished jobs stay visible to `scontrol show job` long enough for the merge job and the tests to read
        # their state and exit code (there is no slurmdbd, so sacct cannot).
        "MinJobAge=3600",
        "SchedulerParameters=sched_interval=1",
    ]
    for name, port in zip(nodes, node_ports):
        # CPUs as many as the host has: without --exclusive, two tasks would then share a node.
        lines.append(f"NodeName={name} NodeHostname=localhost NodeAddr=127.0.0.1 Port={port} CPUs={cpus} "
                     f"RealMemory=1000 State=UNKNOWN")
    lines.append(f"PartitionName=debug Nodes={','.join(nodes)} Default=YES MaxTime=INFINITE State=UP")
    return "\n".join(lines) + "\n"


def munge_answers() -> bool:
    try:
        token = subprocess.run(["munge", "-n"], capture_output=True, timeout=10)
        if token.returncode != 0:
            return False
        return subprocess.run(["unmunge"], input=token.stdout, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class SlurmCluster:
    def __init__(self, folder: Path, nodes: int = 3) -> None:
        self.folder = Path(folder).absolute()
        self.nodes = [f"node{i}" for i in range(1, nodes + 1)]
        self.conf = self.folder / "slurm.conf"
        self.pids: dict[str, int] = {}
        self._procs: list[subprocess.Popen] = []

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self, timeout_s: float = 60) -> SlurmCluster:
        install_packages()
        for sub in ("state", *(f"spool/{n}" for n in self.nodes)):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        ports = _free_ports(1 + len(self.nodes))
        self.conf.write_text(render_conf(self.folder, self.nodes, ports[0], ports[1:], os.cpu_count() or 1))
        (self.folder / "cgroup.conf").write_text("CgroupPlugin=autodetect\nIgnoreSystemd=yes\n")
        if not munge_answers():
            self._start_munged()
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        for node in self.nodes:
            self._spawn(f"slurmd-{node}", ["slurmd", "-D", "-N", node, "-f", str(self.conf)])
        try:
            self.wait_idle(timeout_s)
        except Exception:
            self.stop()
            raise
        (self.folder / "pids.json").write_text(json.dumps(self.pids))
        return self

    def _start_munged(self) -> None:
        # munged refuses to run as root over /var/lib/munge's ownership: it runs as the munge user, and its socket
        # folder must exist first.
        run_dir = Path("/run/munge")
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(run_dir, "munge", "munge")
        self._spawn("munged", ["munged", "-F"], user="munge")
        deadline = time.monotonic() + 20
        while not munge_answers():
            if time.monotonic() > deadline:
                raise RuntimeError("munged did not answer within 20 s")
            time.sleep(0.2)

    def _spawn(self, name: str, argv: list[str], user: str | None = None) -> None:
        log = open(self.folder / f"{name}.out", "wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, user=user,
                                start_new_session=True)
        log.close()
        self._procs.append(proc)
        self.pids[name] = proc.pid

    def wait_idle(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            for name, pid in self.pids.items():
                if not _alive(pid):
                    raise RuntimeError(f"{name} (pid {pid}) exited: {self._tail(name)}")
            done = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], capture_output=True, text=True,
                                  env=self.env, timeout=20)
            last = done.stdout.strip() or done.stderr.strip()
            states = dict(line.split() for line in done.stdout.splitlines() if line.strip())
            if done.returncode == 0 and all(states.get(n) == "idle" for n in self.nodes):
                return
            time.sleep(0.5)
        raise RuntimeError(f"nodes not idle after {timeout_s:.0f} s: {last}")

    def _tail(self, name: str) -> str:
        path = self.folder / f"{name}.out"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        stop_pids(self.pids)
        for proc in self._procs:
            try:
                proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def stop_pids(pids: dict[str, int], timeout_s: float = 15) -> None:
    """SIGTERM each daemon by its PID (slurmd first, munged last), then SIGKILL what is left."""
    order = sorted(pids, key=lambda n: (n == "munged", n == "slurmctld"))
    for name in order:
        try:
            os.kill(pids[name], signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout_s
    while any(_alive(pids[n]) for n in order) and time.monotonic() < deadline:
        time.sleep(0.2)
    for name in order:
        if _alive(pids[name]):
            try:
                os.kill(pids[name], signal.SIGKILL)
            except ProcessLookupError:
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--nodes", type=int, default=4)
    args = parser.parse_args()
    if args.action == "up":
        cluster = SlurmCluster(args.dir, args.nodes).start()
        print(f"export SLURM_CONF={cluster.conf}")
    else:
        stop_pids(json.loads((args.dir.absolute() / "pids.json").read_text()))


if __name__ == "__main__":
    sys.exit(main())
