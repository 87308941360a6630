"""Does this Python environment hold a CUDA build of its runtime? Read from installed distributions' metadata and
build-info files, without importing any framework (a doctor must stay fast, and an import can need the driver).

Run by the environment's own interpreter: `python -m runners.cuda_build` (or this file as a script) prints one JSON
object, environment name -> {"cuda": bool, "detail": "..."}. Standard library only.
"""
from __future__ import annotations

import json
import re
import sys
from importlib import metadata


def _dist(name: str) -> metadata.Distribution | None:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None


def _file_text(dist: metadata.Distribution, suffix: str) -> str | None:
    for file in dist.files or ():
        if str(file).replace("\\", "/").endswith(suffix):
            try:
                return file.read_text()
            except OSError:
                return None
    return None


def _any_dist(pattern: str) -> list[metadata.Distribution]:
    found = {}
    for dist in metadata.distributions():
        name = (dist.metadata.get("Name") or "").lower()
        if re.fullmatch(pattern, name):
            found[name] = dist
    return [found[k] for k in sorted(found)]


def torch_build() -> tuple[bool, str]:
    dist = _dist("torch")
    if dist is None:
        return False, "torch is not installed"
    text = _file_text(dist, "torch/version.py") or ""
    match = re.search(r"^cuda(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
    if match:
        return True, f"torch {dist.version} (CUDA {match.group(1)})"
    return False, f"torch {dist.version} is a CPU build (torch.version.cuda is None)"


def _cuda_distribution(gpu_pattern: str, cpu_name: str, gpu_label: str) -> tuple[bool, str]:
    """A framework shipped as two distributions, a CUDA one (named by `gpu_pattern`) and a CPU one (`cpu_name`)."""
    gpu = _any_dist(gpu_pattern)
    if gpu:
        return True, f"{gpu[0].metadata['Name']} {gpu[0].version}"
    cpu = _dist(cpu_name)
    if cpu is not None:
        return False, f"{cpu_name} {cpu.version} is the CPU build (the CUDA one is {gpu_label})"
    return False, f"neither {gpu_label} nor {cpu_name} is installed"


def mxnet_build() -> tuple[bool, str]:
    return _cuda_distribution(r"mxnet-cu\d+", "mxnet", "mxnet-cuXYZ")


def onnxruntime_build() -> tuple[bool, str]:
    return _cuda_distribution(r"onnxruntime-gpu", "onnxruntime", "onnxruntime-gpu")


def tensorflow_build() -> tuple[bool, str]:
    dist = _dist("tensorflow")
    if dist is None:
        return False, "tensorflow is not installed"
    info = _file_text(dist, "tensorflow/python/platform/build_info.py") or ""
    if "('is_cuda_build', True)" not in info:
        return False, f"tensorflow {dist.version} is not a CUDA build"
    # TensorFlow's wheel is a CUDA build without CUDA's libraries: tensorflow[and-cuda] (or the CUDA image's base)
    # brings them; without them it runs every op on the CPU.
    libs = _any_dist(r"nvidia-cudnn-cu\d+")
    if not libs:
        return False, (f"tensorflow {dist.version} is built for CUDA but this environment has no CUDA libraries "
                       f"(no nvidia-cudnn-cu12: install tensorflow's and-cuda extra, or use the CUDA image)")
    return True, f"tensorflow {dist.version} with {libs[0].metadata['Name']} {libs[0].version}"


# images/<environment> -> how to read its build
PROBES = {"torch": torch_build, "mxnet": mxnet_build, "tensorflow": tensorflow_build,
          "onnxruntime-cuda": onnxruntime_build, "onnxruntime-tensorrt": onnxruntime_build}


def main(argv: list[str]) -> int:
    names = argv or sorted(PROBES)
    unknown = [n for n in names if n not in PROBES]
    if unknown:
        print(f"unknown environment {', '.join(unknown)}; valid: {', '.join(sorted(PROBES))}", file=sys.stderr)
        return 2
    out = {}
    for name in names:
        cuda, detail = PROBES[name]()
        out[name] = {"cuda": cuda, "detail": detail}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
