"""Which image, and which container runtime, one launch of an environment gets: a pure function, for testing.

A run without a GPU (a CPU cell, an export, an INT8 quantization, a reference run) must never depend on a GPU
driver: the CUDA flavor of an image may link the driver's libcuda.so.1 at import (MXNet's CUDA build does), and
Docker's default runtime mounts no driver library into a container that asks for no GPU. So such a run takes the
image's CPU flavor; where none is built, the CUDA flavor under NVIDIA's container runtime with no GPU visible (the
runtime mounts the driver's libraries, NVIDIA_VISIBLE_DEVICES=none hides every GPU); else it is refused with the
remedy. A GPU run takes the CUDA flavor, and only it: a CPU build would run a GPU cell on the CPU.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Collection, Mapping

from orchestrator.provisioning.images import ImageState

NVIDIA_RUNTIME = "nvidia"
# NVIDIA's CUDA base images set NVIDIA_VISIBLE_DEVICES=all: a driverless launch must say "none" itself.
NO_GPU_VISIBLE = {"NVIDIA_VISIBLE_DEVICES": "none", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}


@dataclass(frozen=True)
class ImageChoice:
    reference: str  # the tag, e.g. greenrt/mxnet:cpu
    image: str  # the image id the container is created from
    flavor: str  # "cpu" | "cuda"
    runtime: str | None = None  # None: the engine's default runtime
    environment: dict[str, str] = field(default_factory=dict)  # variables this choice needs in the container

    def describe(self) -> str:
        how = f", {self.runtime} runtime with no GPU visible" if self.runtime == NVIDIA_RUNTIME else ""
        return f"image {self.reference} ({self.flavor} flavor{how}, {self.image[:19]})"

    def facts(self) -> dict[str, str]:
        """For the run's record: which build ran it, and how."""
        return {"image": self.image, "image_reference": self.reference, "image_flavor": self.flavor,
                "container_runtime": self.runtime or "default"}


def _chosen(state: ImageState, flavor: str, runtime: str | None = None,
            environment: Mapping[str, str] = {}) -> ImageChoice:
    return ImageChoice(state.reference, state.image_id or state.reference, flavor, runtime, dict(environment))


def _unready(state: ImageState) -> str:
    return f"image {state.reference} is {state.state}: {state.detail}"


def choose_image(environment: str, needs_gpu: bool, images: Mapping[str, ImageState],
                 runtimes: Collection[str]) -> ImageChoice | str:
    """The image, runtime and variables for a launch of `environment`, or one line saying why there is none.

    `images`: each flavor's state ("cpu", "cuda"; a missing flavor counts as absent); `runtimes`: the engine's
    container runtimes.
    """
    cuda, cpu = images.get("cuda"), images.get("cpu")
    cuda_ready = cuda is not None and cuda.state == "ready"
    cpu_ready = cpu is not None and cpu.state == "ready"
    if needs_gpu:
        if cuda_ready:
            return _chosen(cuda, "cuda")
        if cpu_ready and (cuda is None or cuda.state == "absent"):
            return (f"a GPU run needs the CUDA build of the {environment} image, and only its CPU build "
                    f"({cpu.reference}) is here: `greenrt images build {environment}` on an NVIDIA host")
        return _unready(cuda) if cuda is not None else f"image of {environment} is absent"
    if cpu_ready:
        return _chosen(cpu, "cpu")
    if cuda_ready and NVIDIA_RUNTIME in runtimes:
        return _chosen(cuda, "cuda", NVIDIA_RUNTIME, NO_GPU_VISIBLE)
    if cuda_ready:
        return (f"a run without a GPU needs the CPU build of the {environment} image, or NVIDIA's container runtime "
                f"to give its CUDA build ({cuda.reference}) the driver's libraries, and this engine has neither "
                f"(runtimes: {', '.join(sorted(runtimes)) or 'none'}): `make cpu-images IMAGES={environment}`")
    if cpu is not None and cpu.state not in ("absent", "no-engine"):
        return _unready(cpu)
    return _unready(cuda) if cuda is not None and cuda.state != "absent" else (
        f"no image of {environment} is built: `make cpu-images IMAGES={environment}` (CPU), "
        f"`greenrt images build {environment}` (CUDA, on an NVIDIA host)")
