"""The wheels `make gpu-wheels` downloads for `make gpu-check`: `name==version`, one per line.

The lent GPU machine has python3 3.12 with torch, nvidia-ml-py, numpy, scipy, matplotlib, pyarrow, typer and rich,
but no polars, pydantic, docker SDK or pyRAPL, and no network. What greenrt's host side imports beyond that travels
as wheels: HOST_NEEDS and everything they require, at the versions this host venv resolved from pyproject.toml (so
the GPU host runs the versions the tests ran with). typer and rich are shipped too although the machine has them: a
different version there would make the GPU check test another CLI stack than the one CI tests.

Left out on purpose: PROVIDED (the machine's own builds, torch's ABI partners), and docker with requests, urllib3,
... (the orchestrator imports the docker SDK only inside the Docker launcher and the image and engine probes, each
behind `import docker` in a function; `--launcher local` never reaches them).

    python bench/gpu_check_wheels.py          # run with the host venv's python (.venv/bin/python)
"""
from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST_NEEDS = ("polars", "pydantic", "typer", "rich", "pyRAPL")
PROVIDED = {"numpy", "scipy", "matplotlib", "nvidia-ml-py", "pyarrow", "docker"}
# The GPU machine's interpreter, for environment markers in Requires-Dist.
TARGET = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
          "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
          "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_pins(path: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """{canonical name: version} of pyproject.toml's `name==version` dependencies."""
    pins = {}
    for spec in tomllib.loads(path.read_text())["project"]["dependencies"]:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s;]+)\s*", spec)
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def _applies(marker: str | None) -> bool:
    if not marker:
        return True
    try:
        from packaging.markers import Marker
    except ImportError:  # without packaging: keep what is not an extra
        return "extra" not in marker
    return Marker(marker).evaluate(TARGET)


def _requirements(dist: metadata.Distribution) -> list[str]:
    names = []
    for requirement in dist.requires or []:
        spec, _, marker = requirement.partition(";")
        if not _applies(marker.strip() or None):
            continue
        names.append(canonical(re.match(r"\s*([A-Za-z0-9_.-]+)", spec).group(1)))
    return names


def wheel_pins(needs: tuple[str, ...] = HOST_NEEDS, provided: set[str] = PROVIDED) -> dict[str, str]:
    """{canonical name: installed version} of `needs` and what they require, minus what the machine provides."""
    skip = {canonical(p) for p in provided}
    pins: dict[str, str] = {}
    todo = [canonical(n) for n in needs]
    while todo:
        name = todo.pop()
        if name in pins or name in skip:
            continue
        dist = metadata.distribution(name)
        pins[name] = dist.version
        todo += _requirements(dist)
    return dict(sorted(pins.items()))


def check_against_pyproject(pins: dict[str, str]) -> list[str]:
    declared = pyproject_pins()
    return [f"{name}: installed {version}, pyproject.toml pins {declared[name]}"
            for name, version in pins.items() if name in declared and declared[name] != version]


def main() -> int:
    pins = wheel_pins()
    mismatches = check_against_pyproject(pins)
    if mismatches:
        print("gpu-wheels: the host venv is not what pyproject.toml pins (run `make setup`): " + "; ".join(mismatches),
              file=sys.stderr)
        return 1
    print("\n".join(f"{name}=={version}" for name, version in pins.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
