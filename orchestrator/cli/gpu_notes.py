"""What `doctor` and `plan` say about the GPU side: each CUDA image against this driver, the runtimes that will run
from JIT-compiled PTX (once per runtime), and whether a runtime's environment really holds a CUDA build."""
from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from orchestrator import paths
from orchestrator.planning.gpus import all_mig_reason
from orchestrator.planning.gpu_support import MINOR_COMPAT_DRIVER, driver_refusal, gpu_refusal, jit_note
from orchestrator.planning.planner import HostCapabilities, cuda_refusal
from orchestrator.planning.runtimes import all_runtime_names, parse_runtime
from orchestrator.provisioning.environments import EnvironmentManager, EnvironmentState
from orchestrator.provisioning.images import ImageState
from runners import cuda_binaries

CUDA_BUILD_PROBE = paths.PROJECT_ROOT / "runners" / "cuda_build.py"
PROBE_TIMEOUT_S = 60


def driver_table(caps: HostCapabilities) -> Table | None:
    """Each CUDA image's needs against this host's driver, with the remedy where it falls short."""
    envs = cuda_binaries.load()
    if not caps.gpus or not envs:
        return None
    table = Table(title=f"driver {caps.driver_version or '?'} (CUDA {caps.cuda_driver_version or '?'}) against the "
                        f"CUDA images", title_justify="left")
    for column in ("image", "runtime", "CUDA it runs", "needs driver", "verdict"):
        table.add_column(column)
    for name, env in envs.items():
        major = int(env.cuda_runtime.split(".")[0])
        refusal = driver_refusal(env, caps.driver_version, caps.cuda_driver_version)
        table.add_row(name, env.label, f"{env.cuda_runtime} ({env.base_image})",
                      f">= {MINOR_COMPAT_DRIVER.get(major, '?')}", f"[red]no[/red]: {escape(refusal)}" if refusal else "ok")
    return table


def jit_notes(runtimes: Iterable[str], caps: HostCapabilities) -> list[str]:
    """One line per environment whose runtimes (of `runtimes`) run here only from JIT-compiled PTX."""
    by_env: dict[str, list[str]] = {}
    if all_mig_reason(caps.gpus):  # no GPU run goes ahead: none will JIT-compile anything
        return []
    for name in dict.fromkeys(runtimes):
        runtime = parse_runtime(name)
        if runtime.needs_gpu and cuda_refusal(name, caps) is None:
            by_env.setdefault(runtime.environment, []).append(name)
    notes = []
    for env, names in by_env.items():
        note = jit_note(cuda_binaries.load().get(env), caps.gpus, caps.cuda_driver_version)
        if note:
            notes.append(f"{', '.join(names)}: {note}")
    return notes


def cuda_builds(states: dict[str, EnvironmentState]) -> dict[str, tuple[bool, str]]:
    """environment -> (holds a CUDA build, why), read by runners/cuda_build.py in each built environment's own
    interpreter (installed distributions' metadata; no framework is imported). Environments not built are left out."""
    by_python: dict[Path, list[str]] = {}
    for name, state in states.items():
        if state.state in ("ready", "interpreter"):
            by_python.setdefault(state.python, []).append(name)
    out: dict[str, tuple[bool, str]] = {}
    for python, names in by_python.items():
        try:
            done = subprocess.run([str(python), str(CUDA_BUILD_PROBE), *names], capture_output=True, text=True,
                                  timeout=PROBE_TIMEOUT_S)
            found = json.loads(done.stdout) if done.returncode == 0 else {}
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
            found, done = {}, None
            reason = f"could not read its packages: {type(exc).__name__}: {exc}"
        else:
            reason = f"could not read its packages: {(done.stderr or done.stdout).strip()[-200:]}"
        for name in names:
            entry = found.get(name)
            out[name] = (bool(entry["cuda"]), str(entry["detail"])) if entry else (False, reason)
    return out


def cuda_build_refusal(environment: str, builds: dict[str, tuple[bool, str]], image: ImageState | None) -> str | None:
    """Why a GPU runtime would not really run on the GPU here: neither a ready CUDA-flavor image nor a local
    environment holding a CUDA build. None where one does (or where the environment is not built yet)."""
    if image is not None and image.state == "ready" and image.flavor == "cuda":
        return None
    if environment not in builds:
        return None
    cuda, detail = builds[environment]
    return None if cuda else f"its environment has no CUDA build: {detail}"


class GpuSide:
    """doctor's view of the GPU runtimes: the driver against each image, and per runtime why it cannot run here."""

    def __init__(self, caps: HostCapabilities, envs: EnvironmentManager, images: dict[str, ImageState]) -> None:
        self.caps, self.images = caps, images
        self.driver_table = driver_table(caps)
        gpu_envs = {parse_runtime(n).environment for n in all_runtime_names()
                    if parse_runtime(n).needs_gpu and parse_runtime(n).not_implemented_reason() is None}
        self.builds = cuda_builds({e: envs.state(e) for e in sorted(gpu_envs)}) if caps.gpus else {}

    def refusal(self, name: str) -> str | None:
        runtime = parse_runtime(name)
        if not runtime.needs_gpu or not self.caps.gpus:
            return None
        mig = all_mig_reason(self.caps.gpus)  # as the planner skips such cells (planner.skip_reason)
        if mig:
            return escape(f"needs an NVIDIA GPU: {mig}")
        binaries = cuda_binaries.load().get(runtime.environment)
        why = (gpu_refusal(binaries, self.caps.gpus, self.caps.driver_version, self.caps.cuda_driver_version)
               or cuda_build_refusal(runtime.environment, self.builds, self.images.get(runtime.environment)))
        return escape(why) if why else None  # printed inside rich markup
