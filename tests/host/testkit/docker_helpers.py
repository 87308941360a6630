"""A real Docker engine for tests: the local Debian base and the CPU images of torch and ONNX Runtime built FROM it.

`make test` installs and starts the engine first (`make engine`); nothing of Docker is mocked. Builds go through
greenrt's own image manager, so they test it too, and Docker's layer cache makes later sessions quick.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from orchestrator.provisioning.base_image import DEFAULT_TAG, base_exists, build_base
from orchestrator.provisioning.images import ImageManager, docker_client
from orchestrator.execution.launchers.docker import leftover_containers

TEST_IMAGES = ("torch", "onnxruntime")


def pip_find_links() -> list[Path]:
    """The wheel folders pip is configured with (a host's CPU build of torch), handed to the image builds."""
    value = os.environ.get("PIP_FIND_LINKS") or subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.find-links"], capture_output=True, text=True).stdout
    return [Path(p) for p in value.split() if Path(p).is_dir()]


def engine_with_cpu_images() -> tuple[object, ImageManager]:
    client = docker_client()
    if not base_exists(client, DEFAULT_TAG):
        build_base(client, DEFAULT_TAG)
    images = ImageManager(client)
    for name in TEST_IMAGES:
        state = images.state(name)
        if state.state != "ready" or state.flavor != "cpu":
            images.build(name, base_image=DEFAULT_TAG, flavor="cpu", wheelhouses=pip_find_links())
    return client, images


def assert_no_leftovers(client) -> None:
    left = leftover_containers(client)
    assert not left, f"containers left behind: {[c.name for c in left]}"
