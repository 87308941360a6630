"""Runtime environments for the local launcher: one virtual environment per images/<env>/requirements.txt.

A venv is built on first use under the ignored cache and rebuilt when its requirements file changes, so a venv
and the runtime's Docker image install the same pinned versions. An environment folder that also holds a
package.json (a Node.js client's, e.g. images/onnxruntime-node/) gets its package-lock.json installed by `npm ci`
into the venv's folder (node_modules/ beside bin/), and its lockfile is part of the venv's identity. An existing
interpreter can stand in for a venv (a cluster's module-provided framework, a machine with no package index): it is
used as is.
"""
from __future__ import annotations

import hashlib
import logging
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from orchestrator import paths
from orchestrator.errors import UserError

logger = logging.getLogger(__name__)

# The venv's bundled pip (23.x on Python 3.11) crashes resolving transformers' tree; a current pip does not.
PIP_VERSION = "26.3"
_STAMP = "greenrt-requirements.sha256"
NODE_PACKAGE_FILES = ("package.json", "package-lock.json")


class EnvironmentBuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class EnvironmentState:
    name: str
    state: str  # "ready" | "stale" | "absent" | "interpreter"
    python: Path
    detail: str


def requirements_digest(requirements: Path) -> str:
    # The interpreter's version is part of the identity: a venv is tied to the Python that made it.
    payload = requirements.read_bytes() + sys.version.encode()
    for name in NODE_PACKAGE_FILES:
        if (requirements.parent / name).is_file():
            payload += (requirements.parent / name).read_bytes()
    return hashlib.sha256(payload).hexdigest()


def npm_steps(folder: Path, venv: Path) -> list[list[str]]:
    """`npm ci` of the environment folder's lockfile into the venv's folder, where the folder has a package.json.
    Install scripts are off: they download (onnxruntime-node's fetches CUDA add-ons from a host that may be
    unreachable; its CPU binaries are in the package itself), and a build must install exactly the lockfile."""
    if not (folder / "package.json").is_file():
        return []
    if not (folder / "package-lock.json").is_file():
        raise EnvironmentBuildError(f"{folder / 'package.json'} has no package-lock.json beside it (npm ci needs one)")
    npm = shutil.which("npm")
    if npm is None:
        raise EnvironmentBuildError(f"environment {folder.name} needs npm (Debian's nodejs and npm packages: "
                                    "`make system-packages`)")
    copies = [["cp", str(folder / name), str(venv / name)] for name in NODE_PACKAGE_FILES]
    return [*copies, [npm, "ci", "--prefix", str(venv), "--ignore-scripts", "--no-audit", "--no-fund"]]


class EnvironmentManager:
    def __init__(
        self,
        interpreters: dict[str, str] | None = None,
        default_interpreter: str | None = None,
        root: Path | None = None,
    ) -> None:
        self._interpreters = dict(interpreters or {})
        self._default_interpreter = default_interpreter
        self._root = root or paths.cache_dir() / "envs"

    def _override(self, name: str) -> str | None:
        return self._interpreters.get(name) or self._default_interpreter

    def state(self, name: str) -> EnvironmentState:
        override = self._override(name)
        if override:
            python = _resolve_interpreter(override)
            return EnvironmentState(name, "interpreter", python, f"existing interpreter {python}")
        requirements = paths.requirements_file(name)
        if not requirements.is_file():
            valid = ", ".join(paths.environment_names())
            raise UserError(f"unknown environment {name!r} (no {requirements}); valid: {valid}")
        venv = self._root / name
        python = venv / "bin" / "python"
        stamp = venv / _STAMP
        if not python.exists() or not stamp.exists():
            return EnvironmentState(name, "absent", python, f"built on first use from {requirements.relative_to(paths.PROJECT_ROOT)}")
        if stamp.read_text().strip() != requirements_digest(requirements):
            return EnvironmentState(name, "stale", python, "requirements changed since it was built")
        return EnvironmentState(name, "ready", python, f"venv {venv}")

    def python_for(self, name: str) -> Path:
        """The interpreter that runs this environment's runner, building its venv first when needed."""
        state = self.state(name)
        if state.state in ("ready", "interpreter"):
            return state.python
        self.build(name)
        return self.state(name).python

    def build_seconds(self, name: str) -> float | None:
        """How long this environment's last build here took: from the constraints file a build writes first to the
        stamp it writes last (None: never built here, or interrupted)."""
        first, last = self._root / f"{name}.build-constraints.txt", self._root / name / _STAMP
        if not first.is_file() or not last.is_file():
            return None
        took = last.stat().st_mtime - first.stat().st_mtime
        return took if took >= 0 else None

    def build(self, name: str) -> Path:
        requirements = paths.requirements_file(name)
        venv = self._root / name
        # The stamp is written last: an interrupted build has none and is rebuilt from scratch next time.
        shutil.rmtree(venv, ignore_errors=True)
        venv.parent.mkdir(parents=True, exist_ok=True)
        logger.info(f"building environment {name} from {requirements.relative_to(paths.PROJECT_ROOT)} (first use)")
        log_path = self._root / f"{name}.build.log"
        python = venv / "bin" / "python"
        # The same pins constrain what sdists build with (gluonnlp needs a pinned Cython), so a retired framework's
        # environment builds the same way on every machine; as constraints, without extras and option lines.
        constraints = self._root / f"{name}.build-constraints.txt"
        constraints.write_text(build_constraints(requirements.read_text()))
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "-q", f"pip=={PIP_VERSION}"],
            [str(python), "-m", "pip", "install", "-q", "-r", str(requirements), "--build-constraint", str(constraints)],
            *npm_steps(requirements.parent, venv),
        ]
        with open(log_path, "w") as log:
            for step in steps:
                if subprocess.run(step, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                    raise EnvironmentBuildError(f"building environment {name} failed at `{' '.join(step[-3:])}`; see {log_path}")
        (venv / _STAMP).write_text(requirements_digest(requirements))
        return python


def build_constraints(requirements: str) -> str:
    """A requirements file's pins as pip constraints: no option lines, no extras (pip refuses both there:
    `onnxruntime-gpu[cuda,cudnn]==1.31.1` would fail every sdist's build with "Constraints cannot have extras")."""
    lines = []
    for line in requirements.splitlines():
        if line.strip().startswith("-"):
            continue
        lines.append(re.sub(r"\[[^]]*\]", "", line, count=1))
    return "\n".join(lines) + "\n"


def _resolve_interpreter(value: str) -> Path:
    found = shutil.which(value)
    if not found:
        raise UserError(f"interpreter {value!r} not found or not executable")
    return Path(found)
