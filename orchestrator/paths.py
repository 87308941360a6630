"""Where greenrt's own files live: the project checkout, and the ignored cache for environments and artifacts."""
from __future__ import annotations

import os
from pathlib import Path

# The checkout holds images/ (requirements), runners/ and models/ (put on the runner's PYTHONPATH).
PROJECT_ROOT = Path(os.environ.get("GREENRT_HOME", Path(__file__).resolve().parents[1]))


def cache_dir() -> Path:
    return Path(os.environ.get("GREENRT_CACHE", PROJECT_ROOT / ".cache"))


def requirements_file(environment: str) -> Path:
    return PROJECT_ROOT / "images" / environment / "requirements.txt"


def environment_names() -> list[str]:
    return sorted(p.parent.name for p in (PROJECT_ROOT / "images").glob("*/requirements.txt"))
