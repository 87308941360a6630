"""The sweep `make sweep` runs on a host: the study's GPU matrix where NVML sees a GPU, else the quick CPU sweep."""
from __future__ import annotations

from pathlib import Path

from orchestrator import paths
from orchestrator.planning.planner import HostCapabilities


def default_config(caps: HostCapabilities) -> tuple[Path, str]:
    if caps.gpus:
        return paths.PROJECT_ROOT / "configs/study.toml", f"NVIDIA GPU found ({', '.join(caps.gpu_names)})"
    return paths.PROJECT_ROOT / "configs/quick.toml", f"no NVIDIA GPU ({caps.gpu_reason}): CPU runtimes, quick budget"
