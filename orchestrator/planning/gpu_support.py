"""Can a CUDA environment's binaries run on this GPU and this driver? Pure rules over runners/cuda_binaries.json.

Machine code (a cubin for sm_XY) runs on a GPU of compute capability X.Y' with the same major X and Y <= Y'
(binary compatibility within a major version); arch-specific code (sm_90a) only on exactly 9.0. PTX for
compute_XY runs on any GPU of compute capability >= X.Y: the driver JIT-compiles it at first use, which costs a
slower first warm-up, and only if the driver is at least as new as the toolkit that wrote the PTX.

The driver must support the CUDA runtime the image loads: its major version (CUDA minor-version compatibility
covers the minors), from the minimum driver NVIDIA documents for that major.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from orchestrator.planning.gpus import GpuDescription, sm_architecture
from runners.cuda_binaries import EnvironmentBinaries, LibraryCode

# The oldest driver of each CUDA major under minor-version compatibility (NVIDIA's CUDA Compatibility guide).
MINOR_COMPAT_DRIVER: dict[int, str] = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}
# The driver each toolkit release shipped with (CUDA release notes, Linux): what JIT-compiling PTX written by that
# toolkit needs, since a driver cannot read PTX newer than itself.
TOOLKIT_DRIVER: dict[str, str] = {
    "11.7": "515.43.04", "11.8": "520.61.05", "12.0": "525.60.13", "12.1": "530.30.02", "12.2": "535.54.03",
    "12.3": "545.23.06", "12.4": "550.54.14", "12.5": "555.42.02", "12.6": "560.28.03", "12.8": "570.26",
    "12.9": "575.51.03", "13.0": "580.65.06",
}
# PTX ISA version -> the CUDA toolkit (and so the driver) that introduced it (NVIDIA's PTX ISA release notes).
PTX_ISA_CUDA: dict[str, str] = {
    "7.7": "11.7", "7.8": "11.8", "8.0": "12.0", "8.1": "12.1", "8.2": "12.2", "8.3": "12.3", "8.4": "12.4",
    "8.5": "12.5", "8.7": "12.8", "8.8": "12.9", "9.0": "13.0",
}
_ARCH = re.compile(r"^(sm|compute)_(\d+?)(\d)([af]?)$")


@dataclass(frozen=True)
class Arch:
    kind: str  # "sm" (machine code) or "compute" (PTX)
    major: int
    minor: int
    suffix: str  # "a": this exact GPU only; "f": this family (same major); "": portable

    @staticmethod
    def parse(name: str) -> Arch:
        match = _ARCH.match(name)
        if match is None:
            raise ValueError(f"not a CUDA architecture: {name!r}; valid: sm_XY[a|f] or compute_XY[a|f]")
        kind, major, minor, suffix = match.groups()
        return Arch(kind, int(major), int(minor), suffix)


def _cc(compute_capability: str) -> tuple[int, int]:
    major, _, minor = compute_capability.partition(".")
    return int(major), int(minor or 0)


def machine_code_runs(arch: str, compute_capability: str) -> bool:
    a, (major, minor) = Arch.parse(arch), _cc(compute_capability)
    if a.suffix == "a":
        return (a.major, a.minor) == (major, minor)
    return a.major == major and a.minor <= minor


def ptx_runs(arch: str, compute_capability: str) -> bool:
    a, cc = Arch.parse(arch), _cc(compute_capability)
    if a.suffix == "a":
        return (a.major, a.minor) == cc
    if a.suffix == "f":
        return a.major == cc[0] and a.minor <= cc[1]
    return (a.major, a.minor) <= cc


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


def _names(archs: Sequence[str]) -> str:
    return ", ".join(archs) if archs else "none"


@dataclass(frozen=True)
class Fit:
    """How one environment's binaries meet one GPU: not at all (refusal), from PTX (jit), or from machine code."""

    refusal: str | None = None
    jit: tuple[str, ...] = ()  # the PTX architectures the driver will JIT-compile, where machine code is missing


def _library_fit(lib: LibraryCode, compute_capability: str) -> str:
    """"sm" where machine code runs, else the best PTX arch that runs ("compute_90"), else ""."""
    if any(machine_code_runs(a, compute_capability) for a in lib.sm):
        return "sm"
    runnable = [a for a in lib.ptx if ptx_runs(a, compute_capability)]
    return max(runnable, key=lambda a: (Arch.parse(a).major, Arch.parse(a).minor)) if runnable else ""


def _describe(binaries: EnvironmentBinaries, lib: LibraryCode) -> str:
    where = f" ({lib.path})" if len(binaries.libraries) > 1 else ""
    ptx = f"PTX for {', '.join(lib.ptx)}" if lib.ptx else "no PTX"
    return f"{binaries.label}{where} has machine code for {_names(lib.sm)} and {ptx}"


def fit(binaries: EnvironmentBinaries, gpu: GpuDescription, driver_cuda: str | None) -> Fit:
    """Whether `binaries` run on `gpu` (None refusal), and which PTX the driver must JIT-compile for it."""
    if not gpu.compute_capability:
        return Fit()  # NVML did not say: nothing is known to be missing
    this = f"this GPU ({gpu.label()}) is {sm_architecture(gpu.compute_capability)}"
    jit: list[str] = []
    ptx_cuda = "0"  # the newest CUDA that wrote PTX this GPU needs
    for lib in binaries.libraries:
        how = _library_fit(lib, gpu.compute_capability)
        if not how:
            return Fit(f"{_describe(binaries, lib)}; {this}")
        if how != "sm":
            jit.append(how)
            ptx_cuda = max(ptx_cuda, PTX_ISA_CUDA.get(lib.ptx_isa or "", binaries.cuda_built_for), key=_version)
    if jit and driver_cuda and _version(driver_cuda) < _version(ptx_cuda):
        needed = TOOLKIT_DRIVER.get(ptx_cuda)
        return Fit(f"{binaries.label} has no machine code for {sm_architecture(gpu.compute_capability)} and runs "
                   f"there only from {', '.join(sorted(set(jit)))} PTX of CUDA {ptx_cuda}, which this driver (CUDA "
                   f"{driver_cuda}) cannot JIT-compile: upgrade the driver to one of CUDA {ptx_cuda} or newer"
                   f"{f' ({needed} or newer)' if needed else ''}")
    return Fit(jit=tuple(sorted(set(jit))))


def driver_refusal(binaries: EnvironmentBinaries, driver_version: str | None, driver_cuda: str | None) -> str | None:
    """Why this host's driver cannot run the CUDA runtime the image loads; None where it can (or nothing is known)."""
    major = _version(binaries.cuda_runtime)[0]
    minimum = MINOR_COMPAT_DRIVER.get(major)
    too_old_cuda = driver_cuda is not None and _version(driver_cuda)[:1] < (major,)
    too_old_driver = (minimum is not None and driver_version is not None and _version(driver_version)
                      and _version(driver_version) < _version(minimum))
    if not (too_old_cuda or too_old_driver):
        return None
    branch = minimum.split(".")[0] if minimum else "?"
    return (f"the {binaries.environment} image runs CUDA {binaries.cuda_runtime} ({binaries.label}, built for CUDA "
            f"{binaries.cuda_built_for}; base {binaries.base_image}), which needs a driver of the {branch} branch or "
            f"newer (>= {minimum}); this host's driver {driver_version or '?'} supports CUDA {driver_cuda or '?'}: "
            f"upgrade the driver to {branch} or newer, or install CUDA {major}'s forward-compatibility package "
            f"(cuda-compat-{major}-*, data-centre GPUs only) in the image")


def gpu_refusal(binaries: EnvironmentBinaries | None, gpus: Iterable[GpuDescription], driver_version: str | None,
                driver_cuda: str | None) -> str | None:
    """Why the environment cannot run on this host's GPUs and driver (the first reason), or None."""
    if binaries is None:
        return None
    refusal = driver_refusal(binaries, driver_version, driver_cuda)
    if refusal:
        return refusal
    for gpu in gpus:
        verdict = fit(binaries, gpu, driver_cuda)
        if verdict.refusal:
            return verdict.refusal
    return None


def jit_note(binaries: EnvironmentBinaries | None, gpus: Iterable[GpuDescription], driver_cuda: str | None
             ) -> str | None:
    """The note for an environment that runs here only from JIT-compiled PTX (None where machine code runs)."""
    if binaries is None:
        return None
    for gpu in gpus:
        verdict = fit(binaries, gpu, driver_cuda)
        if verdict.jit and not verdict.refusal:
            return (f"{binaries.label} has no machine code for {sm_architecture(gpu.compute_capability)} "
                    f"({gpu.label()}): the driver JIT-compiles its {', '.join(verdict.jit)} PTX at first use, so "
                    f"the first warm-up is slower, and every run repeats it unless CUDA's JIT cache "
                    f"(CUDA_CACHE_PATH) persists between runs")
    return None
