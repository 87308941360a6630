#!/usr/bin/env python3
"""The CUDA images' Python layers, installed once without a GPU, and checked as far as no driver is needed.

`make cuda-layers` (not part of `make test`). For each CUDA image (torch, tensorflow, mxnet, onnxruntime-cuda,
onnxruntime-tensorrt) it runs the image's own install step, images/common/install-requirements.sh with FLAVOR=cuda
(requirements-cuda.txt where there is one, pip 26.3, `pip check`), into a plain venv of the Python that the image's
NVIDIA base ships (Ubuntu 24.04: 3.12, Ubuntu 22.04: 3.10), found on this host (PATH, pyenv). NVIDIA's bases
cannot be pulled here and the local Debian base has Python 3.11, so a venv of the image's own Python is closer to
the image: pip picks the same wheels. The host's pip configuration (find-links to a CPU build of torch, a cap on
torch, local mirrors) is ignored, as in an image. Requirements that only NVIDIA's index serves (TensorRT) are
dropped for a second install when the first fails, so that the rest can still be checked.

Then, per image, what can be checked without a driver: the imports, the CUDA/cuDNN versions the frameworks were
built for, ONNX Runtime's providers (and whether a session loads their libraries), and `ldd` on the CUDA-linked
libraries with the nvidia-* wheels' lib folders on LD_LIBRARY_PATH (libcuda.so.1 and the other driver libraries
are expected missing). Where those libraries link libcuda.so.1 the probe runs again against a generated stub
libcuda.so.1 whose every function returns CUDA_ERROR_NO_DEVICE: enough for them to load, not a GPU. mxnet-cu117
links CUDA 11.7's libraries, which its base provides: the same versions from PyPI stand in for the base, for the
checks only. `--docker` also builds each image FLAVOR=cuda FROM the local Debian base and probes it in a container.

Resumable: an install whose venv records the same requirements and install-script digest is skipped
(`--reinstall` forces it); each install and each probe is time-boxed; one run at a time. Writes
.cache/cuda-layers/summary.json (merged with earlier runs' results) and prints a markdown table. Exit status 0
whatever the images' results: a failure here is a finding, recorded in the summary (docs/cuda-layers.md).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import fcntl
import glob
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".cache" / "cuda-layers"
PIP_VERSION = "26.3"  # the images' pip (images/common/prepare-system.sh)
# The Python each NVIDIA base ships, by the Ubuntu release in its tag.
UBUNTU_PYTHON = {"ubuntu24.04": "3.12", "ubuntu22.04": "3.10", "ubuntu20.04": "3.8"}
# Libraries the NVIDIA driver (or the container toolkit, from the host) provides: never in a wheel or a base image.
DRIVER_LIBRARIES = ("libcuda.so", "libnvidia-ml.so", "libnvidia-ptxjitcompiler.so", "libnvcuvid.so",
                    "libnvidia-encode.so", "libnvidia-opticalflow.so")
CUDA_ERROR_NO_DEVICE = 100
DOCKER_BASE = "greenrt/base:bookworm"  # `greenrt images base`: the local Debian base (no registry needed)

# Per image: the CUDA-linked libraries to ldd (globs under site-packages), and the
# requirements that come from NVIDIA's own index (dropped for a second, partial install when the first fails,
# so that the rest can still be checked).
IMAGES = {
    "torch": {"libraries": ["torch/lib/libtorch_cuda.so", "torch/lib/libc10_cuda.so"], "nvidia_index": ()},
    "tensorflow": {"libraries": [], "nvidia_index": ()},
    # mxnet-cu117 links CUDA 11.7's and cuDNN 8's libraries, which its base image provides (nothing in the wheel):
    # for the checks only, the same versions as NVIDIA's 11.7.1-cudnn8 base stand in, from PyPI's nvidia-*-cu11.
    "mxnet": {"libraries": ["mxnet/libmxnet.so"], "nvidia_index": (),
              "base_standin": ["nvidia-cuda-runtime-cu11==11.7.99", "nvidia-cublas-cu11==11.10.3.66",
                               "nvidia-cudnn-cu11==8.5.0.96", "nvidia-cufft-cu11==10.9.0.58",
                               "nvidia-curand-cu11==10.2.10.91", "nvidia-cusolver-cu11==11.4.0.1",
                               "nvidia-cusparse-cu11==11.7.4.91", "nvidia-cuda-nvrtc-cu11==11.7.99",
                               "nvidia-nvtx-cu11==11.7.91", "nvidia-nccl-cu11==2.14.3"]},
    "onnxruntime-cuda": {"libraries": ["onnxruntime/capi/libonnxruntime_providers_cuda.so"], "nvidia_index": ()},
    "onnxruntime-tensorrt": {"libraries": ["onnxruntime/capi/libonnxruntime_providers_tensorrt.so",
                                           "onnxruntime/capi/libonnxruntime_providers_cuda.so"],
                             "nvidia_index": ("tensorrt",)},
}

# What each image's venv is asked (run in that venv's Python; prints one JSON object on its last line).
PROBES = {
    "torch": """
        import torch
        out["versions"]["torch"] = torch.__version__
        out["torch.version.cuda"] = torch.version.cuda
        out["torch.backends.cudnn.version()"] = torch.backends.cudnn.version()
        out["torch.cuda.is_available()"] = torch.cuda.is_available()
        out["compiled_arch_flags"] = torch._C._cuda_getArchFlags()
        out["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
        import transformers, onnx, onnxscript, onnxruntime
        out["versions"].update(transformers=transformers.__version__, onnx=onnx.__version__,
                               onnxscript=onnxscript.__version__, onnxruntime=onnxruntime.__version__)
    """,
    "tensorflow": """
        import tensorflow as tf
        out["versions"]["tensorflow"] = tf.__version__
        info = dict(tf.sysconfig.get_build_info())
        out["tf.sysconfig.get_build_info()"] = {k: info[k] for k in sorted(info) if k != "cuda_compute_capabilities"}
        out["cuda_compute_capabilities"] = info.get("cuda_compute_capabilities")
        out["tf.test.is_built_with_cuda()"] = tf.test.is_built_with_cuda()
        out["GPUs seen"] = [d.name for d in tf.config.list_physical_devices("GPU")]
        from importlib import metadata
        out["tensorflow[and-cuda] pins (the CUDA libraries it was tested with)"] = sorted(
            r.split(";")[0].strip() for r in metadata.requires("tensorflow") or [] if "and-cuda" in r)
        import keras, keras_hub, tf2onnx, onnx, onnxruntime
        out["versions"].update(keras=keras.__version__, keras_hub=keras_hub.__version__, tf2onnx=tf2onnx.__version__,
                               onnx=onnx.__version__, onnxruntime=onnxruntime.__version__)
    """,
    "mxnet": """
        import mxnet as mx
        out["versions"]["mxnet"] = mx.__version__
        features = mx.runtime.Features()
        out["mx.runtime.Features()"] = {name: features.is_enabled(name) for name in
                                        ("CUDA", "CUDNN", "NCCL", "CUDA_RTC", "TENSORRT", "MKLDNN", "OPENMP")}
        import ctypes
        lib = mx.base._LIB
        count = ctypes.c_int()
        out["libmxnet CUDA runtime (MXGetGPUCount rc)"] = lib.MXGetGPUCount(ctypes.byref(count))
        out["GPUs seen"] = count.value
        import gluonnlp, onnx, onnxruntime, numpy
        out["versions"].update(gluonnlp=gluonnlp.__version__, onnx=onnx.__version__,
                               onnxruntime=onnxruntime.__version__, numpy=numpy.__version__)
    """,
    "onnxruntime-cuda": """
        import onnxruntime as ort
        out["versions"]["onnxruntime"] = ort.__version__
        out["get_available_providers()"] = ort.get_available_providers()
        out["get_device()"] = ort.get_device()
        out["CUDAExecutionProvider listed"] = "CUDAExecutionProvider" in ort.get_available_providers()
        out["session with CUDAExecutionProvider"] = try_session(ort, "CUDAExecutionProvider")
        out["libcudnn.so.9 by name (what the CUDA provider dlopens)"] = load_by_name("libcudnn.so.9")
        if hasattr(ort, "preload_dlls"):
            try:
                ort.preload_dlls(directory="")
                out["preload_dlls()"] = "ok"
            except Exception as error:
                out["preload_dlls()"] = f"{type(error).__name__}: {error}"
    """,
    "onnxruntime-tensorrt": """
        import onnxruntime as ort
        out["versions"]["onnxruntime"] = ort.__version__
        out["get_available_providers()"] = ort.get_available_providers()
        out["TensorrtExecutionProvider listed"] = "TensorrtExecutionProvider" in ort.get_available_providers()
        out["CUDAExecutionProvider listed"] = "CUDAExecutionProvider" in ort.get_available_providers()
        out["session with TensorrtExecutionProvider"] = try_session(ort, "TensorrtExecutionProvider")
        out["session with CUDAExecutionProvider"] = try_session(ort, "CUDAExecutionProvider")
        out["libcudnn.so.9 by name (what the CUDA provider dlopens)"] = load_by_name("libcudnn.so.9")
        out["libnvinfer.so.10 by name"] = load_by_name("libnvinfer.so.10")
        try:
            import tensorrt_libs
            out["tensorrt_libs"] = tensorrt_libs.__file__
        except ImportError as error:
            out["tensorrt_libs"] = f"not importable: {error}"
    """,
}
PROBE_HEAD = """
import json, sys, traceback
out = {"versions": {}, "python": sys.version.split()[0]}

def _field(number, payload):  # protobuf: a length-delimited field
    size, length = b"", len(payload)
    while True:
        size += bytes([(length & 0x7F) | (0x80 if length > 0x7F else 0)])
        length >>= 7
        if not length:
            break
    return bytes([number << 3 | 2]) + size + payload

def identity_model():
    \"\"\"A one-node ONNX model (Y = Identity(X), float[1]), encoded by hand: these images have no onnx package.\"\"\"
    tensor = lambda name: _field(1, name) + _field(2, _field(1, b"\\x08\\x01" + _field(2, _field(1, b"\\x08\\x01"))))
    graph = (_field(1, _field(1, b"X") + _field(2, b"Y") + _field(4, b"Identity")) + _field(2, b"g")
             + _field(11, tensor(b"X")) + _field(12, tensor(b"Y")))
    return b"\\x08\\x08" + _field(8, b"\\x10\\x0d") + _field(7, graph)  # ir_version 8, opset 13

def try_session(ort, provider):
    \"\"\"Whether ONNX Runtime loads the provider's library and which providers the session ends up with.\"\"\"
    try:
        session = ort.InferenceSession(identity_model(), providers=[provider, "CPUExecutionProvider"])
        result = {"session_providers": session.get_providers()}
    except Exception as error:
        result = {"error": f"{type(error).__name__}: {str(error)[:600]}"}
    result["provider libraries loaded"] = loaded_libraries("libonnxruntime_providers_")
    return result

def load_by_name(soname):
    import ctypes
    try:
        ctypes.CDLL(soname)
        return "ok"
    except OSError as error:
        return str(error)

def loaded_libraries(prefix):
    with open("/proc/self/maps") as maps:
        return sorted({line.split("/")[-1].strip() for line in maps if "/" + prefix in line})
try:
%s
    out["import_ok"] = True
except BaseException as error:
    out["import_ok"] = False
    out["error"] = f"{type(error).__name__}: {error}"
    out["traceback_tail"] = traceback.format_exc()[-1500:]
print("GREENRT-PROBE " + json.dumps(out, default=str))
"""


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def log(message: str) -> None:
    print(f"[cuda-layers {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def dockerfile_base(image: str) -> str:
    text = (ROOT / "images" / image / "Dockerfile").read_text()
    match = re.search(r"^ARG BASE_IMAGE=(\S+)", text, re.M)
    if not match:
        raise SystemExit(f"images/{image}/Dockerfile has no ARG BASE_IMAGE default")
    return match.group(1)


def image_python(base: str) -> str:
    for release, version in UBUNTU_PYTHON.items():
        if base.endswith(release):
            return version
    raise SystemExit(f"unknown Ubuntu release in base image {base}: add it to UBUNTU_PYTHON")


def requirements_for(image: str) -> Path:
    """The file install-requirements.sh installs for FLAVOR=cuda."""
    folder = ROOT / "images" / image
    cuda = folder / "requirements-cuda.txt"
    return cuda if cuda.is_file() else folder / "requirements.txt"


def find_python(version: str) -> str | None:
    """An interpreter of this minor version that runs and can make a venv (PATH, then pyenv's versions)."""
    candidates = [shutil.which(f"python{version}")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(str(pyenv_root / "versions" / f"{version}.*" / "bin" / f"python{version}")),
                         reverse=True)
    candidates += [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    for candidate in candidates:
        if not candidate or not os.path.exists(candidate):
            continue
        try:
            done = subprocess.run([candidate, "-c", "import sys, venv, ssl; print('%d.%d' % sys.version_info[:2])"],
                                  capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0 and done.stdout.strip() == version:
            return os.path.realpath(candidate) if "shims" in candidate else candidate
    return None


def pip_environment() -> dict[str, str]:
    """The host's pip settings left out (find-links, constraints, mirrors), as in an image; its CA bundle kept."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    for bundle in (os.environ.get("PIP_CERT"), "/etc/ssl/certs/ca-certificates.crt"):
        if bundle and os.path.isfile(bundle):
            env["PIP_CERT"] = bundle
            break
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_logged(command: list[str], log_path: Path, timeout: float, env: dict[str, str]) -> tuple[int | None, float]:
    """Runs at low priority into a log file; returns (exit status or None on time-out, seconds)."""
    started = time.monotonic()
    with open(log_path, "a") as handle:
        handle.write(f"\n$ {' '.join(command)}\n")
        handle.flush()
        process = subprocess.Popen(["nice", "-n", "10", *command], stdout=handle, stderr=subprocess.STDOUT, env=env,
                                   cwd=ROOT, start_new_session=True)
        try:
            rc = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
            handle.write(f"\n(greenrt: killed after {timeout:.0f} s)\n")
            rc = None
    return rc, time.monotonic() - started


def install_requirements(venv: Path, image_dir: Path, log_path: Path, timeout: float,
                         env: dict[str, str]) -> int | None:
    """images/common/install-requirements.sh, as the image runs it for FLAVOR=cuda, into this venv (the image's
    post-install.sh left out: it configures the image's dynamic loader); an unreachable index is retried once."""
    env = dict(env, GREENRT_VENV=str(venv), GREENRT_IMAGE_DIR=str(image_dir),
               GREENRT_WHEELHOUSE=str(ROOT / "images" / "wheelhouse"), GREENRT_POST_INSTALL="skip",
               PIP_RETRIES="1", PIP_TIMEOUT="60")
    rc, _ = run_logged(["sh", str(ROOT / "images" / "common" / "install-requirements.sh"), "cuda"], log_path,
                       timeout, env)
    return rc


def error_excerpt(log_path: Path, since: int = 0, lines: int = 25) -> str:
    """The end of what the last command wrote, pip's error block first where there is one."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", log_path.read_text(errors="replace")[since:])  # Docker's colours
    kept = [line for line in text.splitlines() if line.strip()]
    for marker in ("error: subprocess-exited-with-error", "ERROR:", "error:"):
        for index, line in enumerate(kept):
            if marker in line:
                block = kept[index:]
                if len(block) > lines + 4:  # a long build log: its head and its end, where the reason is
                    block = [*block[:4], "[...]", *block[-lines:]]
                return "\n".join(block)
    return "\n".join(kept[-lines:])


def site_packages(venv: Path) -> Path:
    found = glob.glob(str(venv / "lib" / "python3*" / "site-packages"))
    return Path(found[0])


def nvidia_library_dirs(site: Path) -> list[str]:
    """Every folder under site/nvidia (and tensorrt_libs) holding shared libraries (the base stand-in's)."""
    dirs = set()
    for top in (site / "nvidia", site / "tensorrt_libs"):
        if top.is_dir():
            for path in top.rglob("*.so*"):
                dirs.add(str(path.parent))
    return sorted(dirs)


def ldd(library: Path, library_path: list[str]) -> dict:
    env = dict(os.environ, LD_LIBRARY_PATH=os.pathsep.join(library_path))
    done = subprocess.run(["ldd", str(library)], capture_output=True, text=True, env=env, timeout=120)
    return {**parse_ldd(done.stdout), **({"ldd_error": done.stderr.strip()} if done.returncode else {})}


def parse_ldd(output: str) -> dict:
    missing = sorted({line.split("=>")[0].strip() for line in output.splitlines() if "not found" in line})
    resolved = {}
    for line in output.splitlines():
        parts = line.strip().split("=>")
        if len(parts) == 2 and "not found" not in parts[1]:
            name, target = parts[0].strip(), parts[1].split("(")[0].strip()
            if any(key in name for key in ("cuda", "cudnn", "cublas", "cufft", "curand", "cusparse", "cusolver",
                                           "nvinfer", "nccl", "nvrtc", "nvJitLink", "cupti", "nvonnx")):
                resolved[name] = target
    driver = [m for m in missing if m.startswith(DRIVER_LIBRARIES)]
    return {"missing_driver_libraries": driver, "missing_other": [m for m in missing if m not in driver],
            "cuda_libraries_resolved": resolved}


def make_stub_libcuda(site: Path, libraries: list[str]) -> Path | None:
    """A libcuda.so.1 exporting the driver API functions the given libraries import, each returning
    CUDA_ERROR_NO_DEVICE: lets a library linked against the driver load where there is none."""
    symbols = set()
    for pattern in libraries:
        for library in glob.glob(str(site / pattern)):
            done = subprocess.run(["nm", "-D", "--undefined-only", library], capture_output=True, text=True)
            symbols |= {line.split()[-1].split("@")[0] for line in done.stdout.splitlines()
                        if re.fullmatch(r"cu[A-Z]\w*", line.split()[-1].split("@")[0])}
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None
    folder = WORK / "stub-libcuda" / site.parent.parent.parent.name
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "libcuda_stub.c"
    source.write_text("/* generated by images/check_cuda_layers.py: no driver, every call fails */\n" + "".join(
        f"int {name}() {{ return {CUDA_ERROR_NO_DEVICE}; }}\n" for name in sorted(symbols)))
    target = folder / "libcuda.so.1"
    done = subprocess.run([cc, "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o", str(target), str(source)],
                          capture_output=True, text=True)
    return target if done.returncode == 0 else None


def probe(image: str, python: Path, library_path: list[str], timeout: float) -> dict:
    code = PROBE_HEAD % textwrap.indent(textwrap.dedent(PROBES[image]).strip(), "    ")
    env = dict(os.environ, LD_LIBRARY_PATH=os.pathsep.join(library_path), TF_CPP_MIN_LOG_LEVEL="1",
               CUDA_VISIBLE_DEVICES=os.environ.get("CUDA_VISIBLE_DEVICES", ""))
    env.pop("PYTHONPATH", None)
    started = time.monotonic()
    try:
        done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=timeout, env=env,
                              cwd="/tmp")
    except subprocess.TimeoutExpired:
        return {"import_ok": False, "error": f"probe timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("GREENRT-PROBE ")]
    if not lines:
        return {"import_ok": False, "error": f"probe exited {done.returncode} without a result",
                "stderr_tail": done.stderr[-1500:]}
    result = json.loads(lines[-1][len("GREENRT-PROBE "):])
    result["seconds"] = round(time.monotonic() - started, 1)
    warnings = [line for line in done.stderr.splitlines() if line.strip()]
    if warnings:
        result["stderr_tail"] = "\n".join(warnings[-8:])[-1500:]
    return result


def check_image(image: str, reinstall: bool, install_timeout: float, check_timeout: float) -> dict:
    spec = IMAGES[image]
    base = dockerfile_base(image)
    version = image_python(base)
    requirements = requirements_for(image)
    # What the install depends on: the requirements and the image's install script (a change to either reinstalls).
    digest = hashlib.sha256(requirements.read_bytes() + b"\0" + (ROOT / "images" / "common" /
                                                                 "install-requirements.sh").read_bytes()).hexdigest()[:16]
    record: dict = {"image": image, "base_image": base, "image_python": version,
                    "requirements": str(requirements.relative_to(ROOT)), "requirements_digest": digest,
                    "checked_at": now(), "method": "venv"}
    python = find_python(version)
    if python is None:
        record.update(install="skipped", install_error=f"no Python {version} on this host (the image's Python)")
        return record
    record["python_used"] = python
    venv = WORK / "venvs" / image
    logs = WORK / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{image}.install.log"
    marker = venv / ".greenrt-cuda-layer.json"
    env = pip_environment()
    previous = json.loads(marker.read_text()) if marker.is_file() else {}
    if not reinstall and previous.get("requirements_digest") == digest:
        log(f"{image}: already installed from {requirements.name} ({digest}), skipping the install")
        record.update({k: previous[k] for k in ("install", "install_seconds", "install_error", "pip_check",
                                                 "partial_install_without") if k in previous})
        record["install_reused_from"] = previous.get("installed_at")
    else:
        if venv.exists():
            shutil.rmtree(venv)
        log_path.write_text(f"greenrt cuda-layers: {image} from {requirements} with {python}, {now()}\n")
        log(f"{image}: venv with Python {version} ({python}); installing {requirements.relative_to(ROOT)} "
            f"(log: {log_path.relative_to(ROOT)})")
        started = time.monotonic()
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        vpython = str(venv / "bin" / "python")
        rc, _ = run_logged([vpython, "-m", "pip", "install", "-q", f"pip=={PIP_VERSION}"], log_path, 600, env)
        if rc != 0:
            record.update(install="failed", install_error=error_excerpt(log_path))
            return record
        offset = log_path.stat().st_size
        remaining = install_timeout - (time.monotonic() - started)
        rc = install_requirements(venv, ROOT / "images" / image, log_path, remaining, env)
        if rc == 0:
            record["install"] = "ok"
        else:
            record["install"] = "timed out" if rc is None else "failed"
            record["install_error"] = (f"killed after {remaining:.0f} s" if rc is None
                                       else error_excerpt(log_path, offset))
            names = spec["nvidia_index"]
            if rc is not None and names:
                # Install the rest, so that what does not depend on NVIDIA's index can still be checked.
                lines = requirements.read_text().splitlines()
                kept = [line for line in lines if not line.strip().startswith(("--extra-index-url", "--index-url"))
                        and not line.strip().lower().startswith(names)]
                dropped = [line.strip() for line in lines if line.strip().lower().startswith(names)]
                partial = WORK / "partial" / image
                partial.mkdir(parents=True, exist_ok=True)
                (partial / requirements.name).write_text("\n".join(kept) + "\n")
                log(f"{image}: full install failed; installing without {', '.join(dropped)}")
                remaining = install_timeout - (time.monotonic() - started)
                rc = install_requirements(venv, partial, log_path, remaining, env)
                record["partial_install_without"] = dropped
                record["partial_install"] = "ok" if rc == 0 else ("timed out" if rc is None else "failed")
        record["install_seconds"] = round(time.monotonic() - started, 1)
        if record["install"] == "ok" or record.get("partial_install") == "ok":
            done = subprocess.run([vpython, "-m", "pip", "check"], capture_output=True, text=True, env=env)
            record["pip_check"] = "ok" if done.returncode == 0 else (done.stdout + done.stderr).strip()
            marker.write_text(json.dumps({**{k: record[k] for k in ("install", "install_seconds", "pip_check",
                                                                     "partial_install_without", "install_error")
                                             if k in record}, "requirements_digest": digest,
                                          "installed_at": now()}, indent=1))
        else:
            return record
    vpython = venv / "bin" / "python"
    done = subprocess.run([str(vpython), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True,
                          env=env)
    packages = {p["name"].lower(): p["version"] for p in json.loads(done.stdout or "[]")}
    record["packages"] = packages
    record["nvidia_wheels"] = {k: v for k, v in packages.items() if k.startswith(("nvidia-", "tensorrt"))}
    site = site_packages(venv)
    # The folders the ONNX Runtime images' post-install.sh gives the dynamic loader (images/common/wheel-library-dirs.py).
    done = subprocess.run([str(vpython), str(ROOT / "images" / "common" / "wheel-library-dirs.py")],
                          capture_output=True, text=True)
    library_path = done.stdout.split() if done.returncode == 0 else []
    if spec.get("base_standin"):
        standin = WORK / "base-standin" / image
        marker_file = standin / ".installed"
        wanted = "\n".join(spec["base_standin"])
        if not (marker_file.is_file() and marker_file.read_text() == wanted):
            shutil.rmtree(standin, ignore_errors=True)
            log(f"{image}: installing the base image's CUDA libraries' stand-in into {standin.relative_to(ROOT)}")
            rc, _ = run_logged([str(vpython), "-m", "pip", "install", "-q", "--no-deps", "--target", str(standin),
                                *spec["base_standin"]], log_path, install_timeout, env)
            if rc == 0:
                marker_file.write_text(wanted)
        if marker_file.is_file():
            record["base_standin"] = {"packages": spec["base_standin"], "note": "for the checks only: the base "
                                      "image's CUDA libraries, the same versions from PyPI's nvidia-* wheels"}
            library_path += nvidia_library_dirs(standin)
        else:
            record["base_standin"] = {"packages": spec["base_standin"], "error": error_excerpt(log_path)}
    record["ld_library_path_dirs"] = len(library_path)
    record["ldd"] = {}
    libraries = [Path(p) for pattern in spec["libraries"] for p in sorted(glob.glob(str(site / pattern)))]
    for library in libraries:
        record["ldd"][str(library.relative_to(site))] = ldd(library, library_path)
    record["probe"] = probe(image, vpython, library_path, check_timeout)
    error = record["probe"].get("error", "") + record["probe"].get("traceback_tail", "")
    needs_driver = any(r["missing_driver_libraries"] for r in record["ldd"].values())
    if needs_driver or (not record["probe"].get("import_ok") and "libcuda.so.1" in error):
        # Again with a stand-in for the driver's library: what loads then shows that only the driver is missing.
        stub = make_stub_libcuda(site, spec["libraries"])
        if stub:
            log(f"{image}: its CUDA libraries link the driver's libcuda.so.1; probing again with a stub ({stub})")
            record["probe_with_stub_libcuda"] = probe(image, vpython, [str(stub.parent), *library_path],
                                                      check_timeout)
    record["venv_size_mb"] = round(sum(p.stat().st_size for p in venv.rglob("*") if p.is_file()
                                       and not p.is_symlink()) / 2**20)
    return record


def docker_check(image: str, timeout: float, check_timeout: float, keep: bool) -> dict:
    """The image itself, FLAVOR=cuda FROM the local Debian base (Python 3.11, not the NVIDIA base's): its
    Dockerfile, install-requirements.sh and post-install.sh as they run in a build; then, in a container without
    network or LD_LIBRARY_PATH, the same probe and ldd, with only what the image's loader configuration finds."""
    tag = f"greenrt-cuda-layers/{image}:bookworm"
    result: dict = {"base_image": DOCKER_BASE, "tag": tag, "flavor": "cuda"}
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return {**result, "build": "skipped", "reason": "no Docker engine answers (`make engine`)"}
    if subprocess.run(["docker", "image", "inspect", DOCKER_BASE], capture_output=True).returncode != 0:
        return {**result, "build": "skipped", "reason": f"no {DOCKER_BASE} (`greenrt images base`)"}
    log_path = WORK / "logs" / f"{image}.docker.log"
    log_path.write_text(f"greenrt cuda-layers: docker build of {image}, {now()}\n")
    log(f"{image}: docker build FLAVOR=cuda FROM {DOCKER_BASE} (log: {log_path.relative_to(ROOT)})")
    rc, seconds = run_logged(["docker", "build", "--pull=false", "--force-rm", "-f", f"images/{image}/Dockerfile",
                              "--build-arg", f"BASE_IMAGE={DOCKER_BASE}", "--build-arg", "FLAVOR=cuda", "-t", tag,
                              "."], log_path, timeout, dict(os.environ, DOCKER_BUILDKIT="0"))
    result["build_seconds"] = round(seconds, 1)
    if rc != 0:
        steps = re.findall(r"---> ([0-9a-f]{12})\b", log_path.read_text(errors="replace"))
        if steps and not keep:  # the failed build's last committed step, and its untagged parents
            subprocess.run(["docker", "image", "rm", steps[-1]], capture_output=True)
        return {**result, "build": "timed out" if rc is None else "failed", "error": error_excerpt(log_path)}
    result["build"] = "ok"
    run = ["docker", "run", "--rm", "--network", "none", "--entrypoint"]
    code = PROBE_HEAD % textwrap.indent(textwrap.dedent(PROBES[image]).strip(), "    ")
    try:
        done = subprocess.run([*run, "python", tag, "-c", code], capture_output=True, text=True,
                              timeout=check_timeout)
        lines = [line for line in done.stdout.splitlines() if line.startswith("GREENRT-PROBE ")]
        result["probe"] = (json.loads(lines[-1][len("GREENRT-PROBE "):]) if lines else
                           {"import_ok": False, "error": f"exited {done.returncode}: {done.stderr[-800:]}"})
        site = "/opt/greenrt/venv/lib/python3*/site-packages"
        script = "cat /etc/ld.so.conf.d/greenrt-*.conf 2>/dev/null; " + "".join(
            f"for f in {site}/{pattern}; do echo \"@@ $f\"; ldd \"$f\"; done; " for pattern in IMAGES[image]["libraries"])
        done = subprocess.run([*run, "sh", tag, "-c", script], capture_output=True, text=True, timeout=check_timeout)
        sections = done.stdout.split("@@ ")
        result["loader_configuration"] = [line for line in sections[0].splitlines() if line.strip()]
        result["ldd"] = {}
        for section in sections[1:]:
            name, _, output = section.partition("\n")
            result["ldd"][name.split("site-packages/")[-1]] = parse_ldd(output)
    except subprocess.TimeoutExpired:
        result["probe_error"] = f"timed out after {check_timeout:.0f} s"
    finally:
        if not keep:
            subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True)
            result["image_removed"] = True
    return result


def verdict(record: dict) -> str:
    parts = []
    install = record.get("install", "?")
    parts.append(f"install {install}")
    if record.get("partial_install_without"):
        parts.append(f"without {', '.join(record['partial_install_without'])}: {record.get('partial_install', 'ok')}")
    if "pip_check" in record:
        parts.append("pip check ok" if record["pip_check"] == "ok" else "pip check FAILED")
    probe_result = record.get("probe_with_stub_libcuda") if not record.get("probe", {}).get("import_ok") and \
        record.get("probe_with_stub_libcuda", {}).get("import_ok") else record.get("probe")
    if probe_result:
        parts.append("imports ok" + (" (stub libcuda)" if probe_result is record.get("probe_with_stub_libcuda")
                                     else "") if probe_result.get("import_ok") else "imports FAILED")
    missing = sorted({m for r in record.get("ldd", {}).values() for m in r["missing_other"]})
    if record.get("ldd"):
        parts.append(f"ldd: missing {', '.join(missing)}" if missing else "ldd: only driver libs missing")
    return "; ".join(parts)


def key_facts(record: dict) -> str:
    probe_result = record.get("probe") or {}
    if not probe_result.get("import_ok") and record.get("probe_with_stub_libcuda"):
        probe_result = record["probe_with_stub_libcuda"]
    facts = [f"{k} {v}" for k, v in probe_result.get("versions", {}).items()]
    for key in ("torch.version.cuda", "torch.backends.cudnn.version()", "mx.runtime.Features()",
                "get_available_providers()"):
        if key in probe_result:
            facts.append(f"{key}={probe_result[key]}")
    info = probe_result.get("tf.sysconfig.get_build_info()")
    if info:
        facts.append(f"built for CUDA {info.get('cuda_version')} cuDNN {info.get('cudnn_version')}")
    return "; ".join(facts)


def markdown(summary: dict) -> str:
    lines = ["| image | Python (image's / used) | requirements | result (venv) | versions and CUDA facts | install s "
             f"| docker FROM {DOCKER_BASE} |", "|---|---|---|---|---|---|---|"]
    for image, record in summary["images"].items():
        used = record.get("python_used", "none")
        docker = record.get("docker")
        built = "not run" if not docker else docker.get("build", "?") + (
            f" ({docker['build_seconds']} s)" if "build_seconds" in docker else "") + (
            "; imports ok" if docker.get("probe", {}).get("import_ok") else
            "; imports FAILED" if "probe" in docker else "")
        lines.append(f"| {image} | {record.get('image_python')} / {used} | {record.get('requirements')} | "
                     f"{verdict(record)} | {key_facts(record)} | {record.get('install_seconds', '')} | {built} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", help=f"default: all of {', '.join(IMAGES)}")
    parser.add_argument("--reinstall", action="store_true", help="install again even where the venv is current")
    parser.add_argument("--install-timeout", type=float, default=1800, help="seconds per image's install")
    parser.add_argument("--check-timeout", type=float, default=300, help="seconds per image's import probe")
    parser.add_argument("--docker", action="store_true", help=f"also build each image FLAVOR=cuda FROM "
                        f"{DOCKER_BASE} (a Docker engine and `greenrt images base` needed) and probe it")
    parser.add_argument("--keep-images", action="store_true", help="keep the --docker images (removed by default)")
    parser.add_argument("--no-venv", action="store_true", help="only the --docker checks (earlier venv results kept)")
    args = parser.parse_args(argv)
    chosen = args.images or list(IMAGES)
    unknown = [i for i in chosen if i not in IMAGES]
    if unknown:
        parser.error(f"unknown image(s) {', '.join(unknown)}; valid: {', '.join(IMAGES)}")
    WORK.mkdir(parents=True, exist_ok=True)
    lock = open(WORK / ".lock", "w")
    try:  # one run at a time: two would remove and install the same venvs under each other
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"another check_cuda_layers.py is running ({WORK / '.lock'} is held)")
    summary_path = WORK / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    summary.update(host={"machine": platform.machine(), "kernel": platform.release(),
                         "nvidia_driver": os.path.exists("/proc/driver/nvidia/version"),
                         "script_python": sys.version.split()[0]}, written_at=now())
    summary.setdefault("images", {})
    for image in chosen:
        started = time.monotonic()
        if args.no_venv:
            record = summary["images"].get(image, {"image": image})
        else:
            try:
                record = check_image(image, args.reinstall, args.install_timeout, args.check_timeout)
            except Exception as error:  # one image's surprise must not lose the others' results
                record = {"image": image, "install": "error", "install_error": f"{type(error).__name__}: {error}"}
            record["wall_seconds"] = round(time.monotonic() - started, 1)
            if "docker" in summary["images"].get(image, {}):  # an earlier --docker result stands until rerun
                record["docker"] = summary["images"][image]["docker"]
        if args.docker:
            started = time.monotonic()
            try:
                record["docker"] = docker_check(image, args.install_timeout, args.check_timeout, args.keep_images)
            except Exception as error:
                record["docker"] = {"build": "error", "error": f"{type(error).__name__}: {error}"}
            record["docker"]["wall_seconds"] = round(time.monotonic() - started, 1)
            log(f"{image}: docker {record['docker'].get('build')}"
                f" ({record['docker']['wall_seconds']} s)")
        summary["images"][image] = record
        summary_path.write_text(json.dumps(summary, indent=1, sort_keys=False) + "\n")
        if not args.no_venv:
            log(f"{image}: {verdict(record)} ({record['wall_seconds']} s)")
    summary["images"] = {i: summary["images"][i] for i in IMAGES if i in summary["images"]}
    summary_path.write_text(json.dumps(summary, indent=1) + "\n")
    print(markdown(summary))
    print(f"\nsummary: {summary_path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
