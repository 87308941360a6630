"""`make gpu-coverage`: read which GPU architectures each CUDA image's runtime ships code for, from the real wheels.

For each CUDA environment it downloads the pinned wheel of the image's Python (no dependencies, no install; the host's
pip configuration is ignored, as in an image, so PyPI's CUDA torch is read and not a local CPU one), extracts only
its shared libraries, and runs `cuobjdump --list-elf` (machine code per sm_XY) and `--list-ptx` (PTX per
compute_XY) on each; `cuobjdump` itself comes from the nvidia-cuda-cuobjdump wheel. It also reads the CUDA version
each runtime was built for (from the wheel's own build info) and the base image's (the Dockerfile's default), and
writes runners/cuda_binaries.json, which the planner and `doctor` read. Everything downloaded lies under
.cache/gpu-coverage/ (about 2 GB of wheels; delete it when done).

    python -m orchestrator.provisioning.cuda_binaries [ENVIRONMENT ...]
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import subprocess
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from orchestrator import paths
from runners.cuda_binaries import DATA

CACHE = paths.PROJECT_ROOT / ".cache" / "gpu-coverage"
CUOBJDUMP_WHEEL = "nvidia-cuda-cuobjdump"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
# cuobjdump names each embedded file <library>.<n>.sm_XY[a].cubin / .ptx (a PTX file is named by its virtual arch).
_ENTRY = re.compile(r"^(ELF|PTX) file\s+\d+:\s+\S*?\.(sm_\d+[af]?)\.(cubin|ptx)\s*$")
_NO_CODE = ("does not contain device code", "No ELF file found", "No PTX file found", "No fatbinary")


@dataclass(frozen=True)
class WheelSpec:
    environment: str
    requirement: str  # as pinned in images/<environment>/requirements*.txt for the CUDA flavor
    python: str  # the image's Python (Ubuntu 24.04 bases: 3.12; the mxnet 22.04 base: 3.10)
    libraries: tuple[str, ...]  # globs of the wheel's members read with cuobjdump
    build_info: str  # the wheel member that says which CUDA it was built for
    not_read: str = ""
    # Libraries of features the study's models do not use: read and listed, but not required to run on a GPU.
    optional: tuple[str, ...] = ()


SPECS: tuple[WheelSpec, ...] = (
    WheelSpec("mxnet", "mxnet-cu117==1.9.1", "310", ("mxnet/*.so*",), "mxnet_cu117-*.dist-info/METADATA"),
    # torch.linalg's solvers and NVSHMEM (multi-GPU communication) carry fewer architectures than libtorch_cuda.so.
    WheelSpec("torch", "torch==2.13.0", "312", ("torch/lib/*.so*",), "torch/version.py",
              optional=("torch/lib/libtorch_cuda_linalg.so", "torch/lib/libtorch_nvshmem.so")),
    WheelSpec("tensorflow", "tensorflow==2.21.0", "312", ("*.so", "*.so.*"), "tensorflow/python/platform/build_info.py"),
    WheelSpec("onnxruntime-cuda", "onnxruntime-gpu==1.31.1", "312",
              ("onnxruntime/capi/libonnxruntime_providers_cuda.so",), "onnxruntime/capi/build_and_package_info.py"),
    # The TensorRT EP hands what TensorRT cannot take to the CUDA EP: both libraries run here. TensorRT's own
    # libnvinfer comes from NVIDIA's index (tensorrt-cu13-libs is a download stub on PyPI) and is not read.
    WheelSpec("onnxruntime-tensorrt", "onnxruntime-gpu==1.31.1", "312",
              ("onnxruntime/capi/libonnxruntime_providers_tensorrt.so",
               "onnxruntime/capi/libonnxruntime_providers_cuda.so"), "onnxruntime/capi/build_and_package_info.py",
              not_read="tensorrt-cu13-libs 10.16.1.11 (libnvinfer): PyPI has only a stub that downloads from "
                       "NVIDIA's index"),
)


def parse_listing(text: str) -> dict[str, int]:
    """`cuobjdump --list-elf` or `--list-ptx` output -> {arch: number of embedded files}; PTX entries are named by
    their virtual architecture, so "….sm_90.ptx" counts as compute_90."""
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        match = _ENTRY.match(line.strip())
        if match:
            kind, arch, _ = match.groups()
            counts[arch if kind == "ELF" else arch.replace("sm_", "compute_", 1)] += 1
    return dict(sorted(counts.items(), key=lambda kv: _arch_key(kv[0])))


def _arch_key(arch: str) -> tuple[int, str]:
    digits = re.search(r"\d+", arch)
    return (int(digits.group()) if digits else 0, arch)


def built_for_cuda(member: str, text: str) -> str:
    """The CUDA a runtime was built for, from its wheel's build info ("13.0", "12.5.1", "11.7")."""
    if member.endswith("METADATA"):  # mxnet-cuXYZ: the CUDA version is in the package name
        match = re.search(r"^Name: mxnet-cu(\d+)(\d)$", text, re.MULTILINE)
    else:  # torch: cuda = '13.0'; tensorflow: 'cuda_version': '12.5.1'; onnxruntime: cuda_version = "13.0"
        match = re.search(r"""['"]?\bcuda(?:_version)?['"]?\s*(?::\s*[\w\[\]]+\s*=|[:=,])\s*['"](\d+)\.(\d+(?:\.\d+)?)['"]""",
                          text)
    if match is None:
        raise RuntimeError(f"no CUDA version in {member}")
    return f"{match.group(1)}.{match.group(2)}"


def base_image(environment: str) -> str:
    dockerfile = (paths.PROJECT_ROOT / "images" / environment / "Dockerfile").read_text()
    match = re.search(r"^ARG BASE_IMAGE=(\S+)", dockerfile, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"images/{environment}/Dockerfile has no default BASE_IMAGE")
    return match.group(1)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


def base_cuda(image: str) -> str:
    match = re.search(r"nvidia/cuda:(\d+\.\d+(?:\.\d+)?)", image)
    return match.group(1) if match else ""


def download(requirement: str, python: str, dest: Path) -> Path:
    """The wheel of `requirement` for CPython `python`, downloaded once into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    name, _, version = requirement.partition("==")
    stem = f"{name.replace('-', '_')}-{version}-"
    found = sorted(p for p in dest.glob(f"{stem}*.whl") if f"cp{python}" in p.name or "-py3-none-" in p.name)
    if found:
        return found[0]
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}  # the host's find-links would give a CPU torch
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", python, *platforms, "-d", str(dest), requirement], check=True, env=env)
    found = sorted(p for p in dest.glob(f"{stem}*.whl") if f"cp{python}" in p.name or "-py3-none-" in p.name)
    if not found:
        raise RuntimeError(f"pip downloaded no wheel of {requirement} for cp{python} into {dest}")
    return found[0]


def cuobjdump() -> Path:
    tool = CACHE / "tools" / "cuobjdump"
    if not tool.exists():
        with zipfile.ZipFile(_tool_wheel()) as zf:
            member = next(m for m in zf.namelist() if m.endswith("/bin/cuobjdump"))
            tool.write_bytes(zf.read(member))
        tool.chmod(0o755)
    return tool


def _tool_wheel() -> Path:
    dest = CACHE / "tools"
    found = sorted(dest.glob("nvidia_cuda_cuobjdump-*.whl"))
    if not found:
        platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        *platforms, "-d", str(dest), CUOBJDUMP_WHEEL], check=True,
                       env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
        found = sorted(dest.glob("nvidia_cuda_cuobjdump-*.whl"))
    return found[-1]


def tool_version(tool: Path) -> str:
    out = subprocess.run([str(tool), "--version"], capture_output=True, text=True).stdout
    match = re.search(r"release (\S+), V(\S+)", out)
    return f"cuobjdump {match.group(2)}" if match else "cuobjdump (version unknown)"


def list_code(tool: Path, library: Path) -> tuple[dict[str, int], dict[str, int]]:
    """({sm_XY: cubins}, {compute_XY: PTX files}) of one shared library."""
    listings = []
    for flag in ("--list-elf", "--list-ptx"):
        done = subprocess.run([str(tool), flag, str(library)], capture_output=True, text=True)
        if done.returncode != 0 and not any(s in done.stdout + done.stderr for s in _NO_CODE):
            raise RuntimeError(f"cuobjdump {flag} {library.name} failed: {(done.stderr or done.stdout).strip()}")
        listings.append(parse_listing(done.stdout))
    return listings[0], listings[1]


def ptx_isa(tool: Path, library: Path) -> str | None:
    """The PTX ISA version (".version 8.5") of the library's first PTX file: what a driver must read to JIT it."""
    process = subprocess.Popen([str(tool), "-ptx", str(library)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    try:
        for line in process.stdout or ():
            if line.startswith(".version"):
                return line.split()[1]
        return None
    finally:
        process.kill()
        process.wait()


def read_environment(spec: WheelSpec, tool: Path, log=print) -> dict:
    wheel = download(spec.requirement, spec.python, CACHE / "wheels")
    out = CACHE / "libs" / spec.environment
    libraries = []
    with zipfile.ZipFile(wheel) as zf:
        members = zf.namelist()
        info = next((m for m in members if fnmatch.fnmatch(m, spec.build_info)), None)
        if info is None:
            raise RuntimeError(f"{wheel.name} has no {spec.build_info}")
        built_for = built_for_cuda(info, zf.read(info).decode(errors="replace"))
        chosen = [m for m in members if any(fnmatch.fnmatch(m, g) for g in spec.libraries)
                  and not m.endswith("/")]
        for member in sorted(chosen):
            target = out / member
            if not target.exists() or target.stat().st_size != zf.getinfo(member).file_size:
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, target.open("wb") as dst:
                    while chunk := src.read(1 << 24):
                        dst.write(chunk)
            sm, ptx = list_code(tool, target)
            isa = ptx_isa(tool, target) if ptx else None
            log(f"  {member}: machine code {', '.join(sm) or 'none'}; PTX {', '.join(ptx) or 'none'}"
                + (f" (PTX ISA {isa})" if isa else ""))
            libraries.append({"path": member, "sm": list(sm), "ptx": list(ptx), "cubins": sm, "ptx_files": ptx,
                              **({"ptx_isa": isa} if isa else {})})
    base = base_image(spec.environment)
    name, _, version = spec.requirement.partition("==")
    # The driver must support the newer of the CUDA the runtime was built with (the wheels' CUDA libraries) and the
    # base image's (its libraries are on the loader's path too).
    runtime = max(built_for, base_cuda(base), key=_version) if base_cuda(base) else built_for
    return {"package": name, "version": version, "wheel": wheel.name, "cuda_built_for": built_for,
            "base_image": base, "cuda_runtime": runtime,
            "libraries": [lib for lib in libraries if lib["sm"] or lib["ptx"]],
            "libraries_without_device_code": [lib["path"] for lib in libraries if not (lib["sm"] or lib["ptx"])],
            **({"optional": list(spec.optional)} if spec.optional else {}),
            **({"not_read": spec.not_read} if spec.not_read else {})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu-coverage", description=__doc__.split("\n\n")[0])
    names = [s.environment for s in SPECS]
    parser.add_argument("environments", nargs="*", help=f"default: all of {', '.join(names)}")
    args = parser.parse_args(argv)
    unknown = [e for e in args.environments if e not in names]
    if unknown:
        print(f"gpu-coverage: unknown environment {', '.join(unknown)}; valid: {', '.join(names)}", file=sys.stderr)
        return 2
    tool = cuobjdump()
    data = json.loads(DATA.read_text()) if DATA.is_file() else {"environments": {}}
    for spec in SPECS:
        if args.environments and spec.environment not in args.environments:
            continue
        print(f"{spec.environment}: {spec.requirement} (cp{spec.python})", flush=True)
        data["environments"][spec.environment] = read_environment(spec, tool)
    data.update({"read_on": date.today().isoformat(), "tool": f"{tool_version(tool)} ({CUOBJDUMP_WHEEL} wheel)",
                 "generated_by": "make gpu-coverage (python -m orchestrator.provisioning.cuda_binaries)"})
    data["environments"] = dict(sorted(data["environments"].items()))
    DATA.write_text(json.dumps(dict(sorted(data.items())), indent=1) + "\n")
    print(f"wrote {DATA.relative_to(paths.PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
