"""The sweep `make sweep` runs on a host: the study's GPU matrix where a GPU can be given to runs, else the quick CPU
sweep."""
from __future__ import annotations

from pathlib import Path

from orchestrator import paths
from orchestrator.planning.gpus import all_mig_reason
from orchestrator.planning.planner import HostCapabilities


def default_config(caps: HostCapabilities) -> tuple[Path, str]:
    mig = all_mig_reason(caps.gpus)
    if caps.gpus and mig is None:
        return paths.PROJECT_ROOT / "configs/study.toml", f"NVIDIA GPU found ({', '.join(caps.gpu_names)})"
    why = mig or f"no NVIDIA GPU ({caps.gpu_reason})"
    return paths.PROJECT_ROOT / "configs/quick.toml", f"{why}: CPU runtimes, quick budget"
