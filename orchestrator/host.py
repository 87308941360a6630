"""What this host is, for host.json and `greenrt doctor`: machine, interpreter, sensors, container engine, revision."""
from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

from orchestrator import paths

from orchestrator.measurement.sensors.base import SensorStatus
from runners.hostinfo import cpu_flags, memory_bytes


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(paths.PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(paths.PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout.strip() + ("+dirty" if dirty else "")) if out.returncode == 0 else None


def container_engine() -> dict[str, Any]:
    try:
        import docker

        client = docker.from_env(timeout=3)
        version = client.version()
        return {"available": True, "reason": f"Docker {version.get('Version')} (API {version.get('ApiVersion')})",
                "runtimes": sorted(client.info().get("Runtimes", {}))}
    except Exception as exc:  # the SDK raises several unrelated types for "no engine"
        return {"available": False, "reason": f"no Docker engine reachable ({type(exc).__name__}: {str(exc)[:160]})"}


def describe(statuses: list[SensorStatus], engine: dict[str, Any] | None = None) -> dict[str, Any]:
    uname = platform.uname()
    return {
        "hostname": uname.node,
        "os": f"{uname.system} {uname.release}",
        "machine": uname.machine,
        "cpu_model": cpu_model(),
        "cpu_flags": list(cpu_flags() or []),  # what the planner reads (HostCapabilities.cpu_flags): int8, bf16
        "logical_cpus": os.cpu_count(),
        "memory_bytes": memory_bytes(),
        "python": platform.python_version(),
        "greenrt_revision": git_revision(),
        "sensors": [asdict(s) for s in statuses],
        "container_engine": engine if engine is not None else container_engine(),
    }
