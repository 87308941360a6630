"""Names of the devices a runner measures on, from the standard library only (cheap, best effort)."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
from functools import lru_cache


@lru_cache(maxsize=None)
def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


@lru_cache(maxsize=None)
def cpu_flags() -> tuple[str, ...] | None:
    """The CPU's feature flags as Linux lists them (/proc/cpuinfo "flags", Arm's "Features"), sorted; None where
    they cannot be read (another OS)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key = line.split(":", 1)[0].strip().lower()
                if key in ("flags", "features"):
                    return tuple(sorted(set(line.split(":", 1)[1].split())))
    except OSError:
        pass
    return None


def memory_bytes() -> int | None:
    """The host's physical memory; None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


def cpu_device() -> str:
    return f"cpu: {cpu_name()} ({os.cpu_count()} logical CPUs)"


@lru_cache(maxsize=None)
def nvidia_gpu_name(device_id: int = 0) -> str:
    """The name of CUDA device `device_id` through nvidia-smi, honouring a numeric CUDA_VISIBLE_DEVICES."""
    index = str(device_id)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        ids = [v.strip() for v in visible.split(",") if v.strip()]
        if device_id < len(ids):
            index = ids[device_id]
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run(
                [smi, "--query-gpu=name", "--format=csv,noheader", "-i", index],
                capture_output=True, text=True, timeout=10, check=False,
            )
            name = out.stdout.strip().splitlines()
            if out.returncode == 0 and name:
                return f"cuda:{device_id}: {name[0].strip()}"
        except (OSError, subprocess.SubprocessError):
            pass
    return f"cuda:{device_id}"
