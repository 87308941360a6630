"""Which GPU architectures each CUDA environment's shipped binaries carry, as read from the real wheels.

The data is runners/cuda_binaries.json, written by `make gpu-coverage` (orchestrator.provisioning.cuda_binaries,
which runs `cuobjdump --list-elf/--list-ptx` on the wheels' shared libraries) and committed beside the runtimes
table. This module only reads it: standard library only, so the planner and the runner side can both use it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).with_name("cuda_binaries.json")


@dataclass(frozen=True)
class LibraryCode:
    """One shared library's device code: the SM architectures it has machine code (cubins) for, and the virtual
    architectures it has PTX for ("sm_90" / "compute_90"; "sm_90a" is Hopper-only machine code)."""

    path: str  # inside the wheel, e.g. "mxnet/libmxnet.so"
    sm: tuple[str, ...]
    ptx: tuple[str, ...]
    ptx_isa: str | None = None  # the PTX's ISA version ("8.3"): a driver JIT-compiles only PTX no newer than itself


@dataclass(frozen=True)
class EnvironmentBinaries:
    """What a CUDA image's runtime ships, and what it needs of the host's driver."""

    environment: str  # images/<environment>/
    package: str  # the wheel read: "mxnet-cu117"
    version: str
    cuda_built_for: str  # the CUDA toolkit the runtime was built with ("11.7"): what its PTX needs of the driver
    base_image: str  # the CUDA flavor's Dockerfile default, e.g. "nvidia/cuda:11.7.1-cudnn8-runtime-ubuntu22.04"
    cuda_runtime: str  # the CUDA runtime the image loads (the wheels' or the base's): what the driver must support
    libraries: tuple[LibraryCode, ...]  # the kernels every model needs: all must run on a GPU for the image to
    optional: tuple[LibraryCode, ...] = ()  # kernels of features the study does not use (torch.linalg, NVSHMEM)
    not_read: str = ""  # binaries of this environment that could not be read, and why

    @property
    def label(self) -> str:
        return f"{self.package} {self.version}"


@lru_cache(maxsize=None)
def load(path: Path = DATA) -> dict[str, EnvironmentBinaries]:
    """environment -> its binaries; {} where the data file is missing (then nothing is known, nothing refused)."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    out = {}
    for name, env in data.get("environments", {}).items():
        libraries = [LibraryCode(lib["path"], tuple(lib["sm"]), tuple(lib["ptx"]), lib.get("ptx_isa"))
                     for lib in env["libraries"]]
        optional = set(env.get("optional", ()))
        out[name] = EnvironmentBinaries(name, env["package"], env["version"], env["cuda_built_for"],
                                        env["base_image"], env["cuda_runtime"],
                                        tuple(lib for lib in libraries if lib.path not in optional),
                                        tuple(lib for lib in libraries if lib.path in optional),
                                        env.get("not_read", ""))
    return out


def read_on(path: Path = DATA) -> str | None:
    """The date the data was read from the wheels."""
    return json.loads(path.read_text()).get("read_on") if path.is_file() else None
