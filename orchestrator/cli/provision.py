"""The verbs that provision runtimes: images (list, build, base) and environments (list, build, python)."""
from __future__ import annotations

from typing import Optional

import typer

from orchestrator import paths
from orchestrator.cli import given_paths
from orchestrator.cli.app import (BASE_IMAGE_HELP, PYTHON_HELP, console, env_app, images_app, progress_on_stderr,
                                  user_errors)
from orchestrator.errors import UserError
from orchestrator.provisioning.base_image import DEFAULT_MIRROR, DEFAULT_SUITE, DEFAULT_TAG, base_exists, build_base
from orchestrator.provisioning.environments import EnvironmentManager
from orchestrator.provisioning.images import FLAVORS, LABEL_PREFIX, ImageManager, docker_client, image_names


@images_app.command("list")
def images_list() -> None:
    """Each image: ready (built from this checkout), stale, or absent; both flavors where both are built."""
    with user_errors():
        images = ImageManager(docker_client())
        for name in image_names():
            built = [s for s in images.flavors(name).values() if s.state != "absent"] or [images.state(name)]
            for state in built:
                console.print(f"{state.reference}: {state.state} ({state.detail})")


@images_app.command("build")
def images_build(names: Optional[list[str]] = typer.Argument(None, help="Images to build (default: all)."),
                 base_image: Optional[str] = typer.Option(None, help=BASE_IMAGE_HELP),
                 flavor: str = typer.Option("cuda", help=f"Which build: {', '.join(FLAVORS)} (cpu with a non-CUDA base)."),
                 wheelhouse: Optional[list[str]] = typer.Option(
                     None, metavar="DIR",
                     help="Folder of local wheels; those the image's requirements name are preferred (repeatable)."),
                 force: bool = typer.Option(False, help="Rebuild even when the image is up to date.")) -> None:
    """Build images from this checkout (Docker's layer cache keeps rebuilds quick)."""
    with user_errors():
        wheelhouses = given_paths.folders(wheelhouse, "--wheelhouse")
        if flavor not in FLAVORS:
            raise UserError(f"unknown flavor {flavor!r}; valid: {', '.join(FLAVORS)}")
        images = ImageManager(docker_client())
        for name in names or image_names():
            state = images.state(name, flavor)  # each flavor has its own tag: the other one stays
            built_otherwise = state.flavor != flavor or (base_image or "dockerfile default") != state.labels.get(
                LABEL_PREFIX + "base-image")
            if force or state.state != "ready" or built_otherwise:
                state = images.build(name, base_image=base_image, flavor=flavor, wheelhouses=wheelhouses)
            console.print(f"{state.reference}: {state.state} ({state.detail})")


@images_app.command("base")
def images_base(tag: str = typer.Option(DEFAULT_TAG, help="Tag of the base image."),
                suite: str = typer.Option(DEFAULT_SUITE, help="Debian suite to bootstrap."),
                mirror: str = typer.Option(DEFAULT_MIRROR, help="Debian mirror."),
                force: bool = typer.Option(False, help="Rebuild even when the tag exists.")) -> None:
    """Build a local Debian base with Python (debootstrap + import), for CPU images where no registry is reachable."""
    with user_errors():
        client = docker_client()
        if base_exists(client, tag) and not force:
            console.print(f"{tag}: present")
            return
        seconds = build_base(client, tag, suite, mirror)
        console.print(f"{tag}: built in {seconds:.0f} s")


@env_app.command("list")
def env_list(python: Optional[str] = typer.Option(None, help=PYTHON_HELP)) -> None:
    """Each environment and whether it is built, stale or absent."""
    with user_errors():
        envs = EnvironmentManager(default_interpreter=given_paths.python(python))
        for name in paths.environment_names():
            state = envs.state(name)
            console.print(f"{name}: {state.state} ({state.detail})")


@env_app.command("build")
def env_build(names: list[str] = typer.Argument(..., help="Environment names (folders of images/)."),
              force: bool = typer.Option(False, help="Rebuild even when up to date.")) -> None:
    """Build environments now (otherwise they are built on first use)."""
    with user_errors():
        envs = EnvironmentManager()
        for name in names:
            state = envs.state(name)
            if force or state.state in ("absent", "stale"):
                envs.build(name)
            console.print(f"{name}: ready ({envs.state(name).python})")


@env_app.command("python")
def env_python(name: str = typer.Argument(...)) -> None:
    """Print the interpreter of an environment, building it if needed (for scripts: `$(greenrt env python torch)`)."""
    with user_errors(), progress_on_stderr():
        print(EnvironmentManager().python_for(name))
