"""The Docker launcher: each runner in a fresh container of its runtime's image, one container at a time.

The container sees only what the run needs, bind-mounted at the same paths as on the host (so a request's paths
mean the same inside and out): its working folder and the other writable folders read-write, the artifact and
weights read-only. It has no network, no capabilities, a read-only root filesystem with a private /tmp, and runs
as the image's unprivileged user. A run without a GPU (a CPU cell, an export, a reference run) goes to the image's
CPU flavor, or NVIDIA's runtime with no GPU visible (orchestrator/provisioning/image_choice.py), so that it never
needs a driver library that Docker's default runtime does not mount; the log and the record name the image. A
container shares the host's monotonic clock, so the runner's window stamps are on the clock the host sampler uses. Whatever happens, the container is removed before launch() returns.
"""
from __future__ import annotations

import logging
import os
import re
import uuid
from pathlib import Path
from typing import Any, Callable, Sequence

from orchestrator.errors import UserError
from orchestrator.planning.gpus import GpuDescription, cuda_visible_devices
from orchestrator.execution.hostlock import alive
from orchestrator.provisioning.image_choice import ImageChoice, choose_image
from orchestrator.provisioning.images import (LABEL_PREFIX, RUNNER_UID, ImageBuildError, ImageManager,
                                              ImageState, docker_client)
from orchestrator.execution.launchers.base import LaunchOutcome, Launcher, LaunchStart
from orchestrator.execution.launchers.commands import BUILT_CLIENTS, CPP_RUNNER, RunnerPlace, runner_command

logger = logging.getLogger(__name__)

RUN_LABEL = LABEL_PREFIX + "run"  # on every container greenrt starts, so leftovers can be found
# Where every image keeps its runners (images/*/Dockerfile): the venv's python and the built programs on PATH, the
# checkout's runners/ under /opt/greenrt/src, NODE_PATH set by the onnxruntime-node image.
IMAGE_PLACE = RunnerPlace(python="python", source_root=Path("/opt/greenrt/src"))
# A client whose runner only one flavor of its image builds (images/torch/Dockerfile: the C++ runner, CPU flavor).
CLIENT_FLAVORS = {"cpp": "cpu"}


def _container_name(argv: Sequence[str]) -> str:
    hint = re.sub(r"[^a-zA-Z0-9_.-]+", "-", Path(argv[-1]).parent.name if argv else "runner")[:40].strip("-.")
    return f"greenrt-{hint or 'runner'}-{uuid.uuid4().hex[:8]}"


def _mounts(workdir: Path, writable: Sequence[Path], readonly: Sequence[Path]) -> dict[str, dict[str, str]]:
    # The same absolute path inside as outside: the paths in a request need no translation.
    volumes: dict[str, dict[str, str]] = {}
    for path in readonly:
        volumes[str(Path(path).absolute())] = {"bind": str(Path(path).absolute()), "mode": "ro"}
    for path in (workdir, *writable):  # read-write wins where a path is given both ways
        volumes[str(Path(path).absolute())] = {"bind": str(Path(path).absolute()), "mode": "rw"}
    return volumes


class DockerLauncher(Launcher):
    name = "docker"

    def __init__(self, images: ImageManager, build: Callable[[str], object] | None = None,
                 memory_limit: str | None = None) -> None:
        """`build(environment)` rebuilds a stale image (or raises ImageBuildError); without it such an image is an
        error."""
        self.images = images
        self.build = build
        self.memory_limit = memory_limit
        self._ready: dict[str, dict[str, ImageState]] = {}
        self._engine_runtimes: set[str] | None = None

    def prepare(self, environment: str) -> str:
        """Make every built flavor of the environment's image ready (a stale one rebuilt where `build` is given)."""
        flavors = self.images.flavors(environment)
        for flavor, state in flavors.items():
            if state.state == "stale" and self.build is not None:
                logger.info(f"image {state.reference}: {state.state}, building it now")
                try:
                    # `build` rebuilds the environment's image, its CUDA build where there is one
                    self.build(environment) if flavor == "cuda" else \
                        self.images.rebuild(environment, flavor=flavor)
                except (ImageBuildError, UserError) as exc:
                    raise ImageBuildError(str(exc)) from None
                flavors[flavor] = self.images.state(environment, flavor)
        ready = [s for s in flavors.values() if s.state == "ready"]
        if not ready:
            state = self.images.state(environment)
            raise ImageBuildError(f"image {state.reference} is {state.state}: {state.detail}")
        self._ready[environment] = flavors
        return "; ".join(f"image {s.reference} ({s.detail})" for s in ready)

    def prepare_client(self, environment: str, client: str) -> str:
        """A built client's runner is in its image (the C++ runner: the torch image's CPU flavor only)."""
        if client not in BUILT_CLIENTS:
            return "nothing to prepare"
        if environment not in self._ready:
            self.prepare(environment)
        flavor = CLIENT_FLAVORS[client]
        state = self._ready[environment].get(flavor)
        if state is None or state.state != "ready":
            raise ImageBuildError(f"{CPP_RUNNER} is built only in the {flavor} flavor of the {environment} image, "
                                  f"which is {state.state if state else 'absent'} here: `make cpu-images "
                                  f"IMAGES={environment}`")
        return f"{CPP_RUNNER} in image {state.reference}"

    def _runtimes(self) -> set[str]:
        if self._engine_runtimes is None:
            self._engine_runtimes = self.images.engine_runtimes()
        return self._engine_runtimes

    def choose(self, environment: str, gpus: Sequence[GpuDescription] | None) -> ImageChoice:
        """The image (and runtime) this launch runs in; ImageBuildError with the reason where there is none."""
        if environment not in self._ready:
            self.prepare(environment)
        choice = choose_image(environment, gpus is not None, self._ready[environment], self._runtimes())
        if isinstance(choice, str):
            raise ImageBuildError(choice)
        return choice

    @classmethod
    def end_leftovers(cls) -> int:
        """Remove the containers of sweeps killed with SIGKILL, on this host's engine if one answers (whatever
        launcher the current sweep uses: an orphaned container must not run beside its measurements either)."""
        try:
            client = docker_client(timeout=3)
        except UserError:
            return 0  # no engine, no container
        return end_leftover_containers(client)

    @staticmethod
    def _device_requests(gpus: Sequence[GpuDescription] | None) -> list[Any] | None:
        """The launch's own GPUs (None: none at all; (): every GPU the engine sees, for a host without NVML)."""
        import docker

        if gpus is None:
            return None
        if not gpus:
            return [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
        # UUIDs: the NVIDIA container runtime takes them as they are, whatever order it enumerates GPUs in.
        ids = cuda_visible_devices(gpus).split(",")
        return [docker.types.DeviceRequest(device_ids=ids, capabilities=[["gpu"]])]

    def _user(self, writable_dirs: Sequence[Path]) -> str:
        """The runner's uid: the host user's when greenrt runs unprivileged, else the image's own non-root user."""
        if os.geteuid() != 0:
            return f"{os.geteuid()}:{os.getegid()}"
        # As root, hand the folders the runner writes to the image's user instead of running the runner as root.
        for folder in writable_dirs:
            os.chown(folder, RUNNER_UID, RUNNER_UID)
        return f"{RUNNER_UID}:{RUNNER_UID}"

    def launch(self, environment: str, argv: list[str], *, workdir: Path, timeout_s: float,
               env_vars: dict[str, str], log_path: Path, writable: Sequence[Path] = (),
               readonly: Sequence[Path] = (), gpus: Sequence[GpuDescription] | None = None,
               client: str | None = None) -> LaunchOutcome:
        import docker
        import requests

        outcome = LaunchStart.now(log_path).outcome
        try:
            choice = self.choose(environment, gpus)
            if client in CLIENT_FLAVORS and choice.flavor != CLIENT_FLAVORS[client]:
                raise ImageBuildError(f"{CPP_RUNNER} is built only in the {CLIENT_FLAVORS[client]} flavor of the "
                                      f"{environment} image, not in {choice.reference}: `make cpu-images "
                                      f"IMAGES={environment}`")
        except ImageBuildError as exc:
            log_path.write_text(f"{exc}\n")
            return outcome(None, start_error=str(exc))
        # The image's entrypoint is `python -m runners`; every launch names its runner's command itself.
        entrypoint, client_vars = runner_command(client, IMAGE_PLACE)
        writable_dirs = [Path(workdir), *map(Path, writable)]
        for folder in writable_dirs:
            folder.mkdir(parents=True, exist_ok=True)
        engine = self.images.client  # the Docker SDK client (`client` is the runtime id's client language)
        container = None
        try:
            container = engine.containers.create(
                choice.image, command=list(argv), entrypoint=entrypoint, name=_container_name(argv),
                working_dir=str(Path(workdir).absolute()),
                user=self._user(writable_dirs), environment={**client_vars, **env_vars, **choice.environment},
                volumes=_mounts(workdir, writable, readonly),
                labels={RUN_LABEL: "1", LABEL_PREFIX + "owner-pid": str(os.getpid())},
                network_mode="none", read_only=True, tmpfs={"/tmp": "rw,exec,nosuid"}, cap_drop=["ALL"],
                security_opt=["no-new-privileges"], device_requests=self._device_requests(gpus),
                mem_limit=self.memory_limit, runtime=choice.runtime, detach=True)
            # container_id: /proc/<pid>/cgroup names it, so that the busy-host observer counts every process of
            # the container as the run's (execution/run.py), whatever uid the container runs as.
            details = {"container": container.name, "container_id": container.id, **choice.facts(),
                       "gpus": "" if gpus is None else (cuda_visible_devices(gpus) if gpus else "all")}
            try:
                container.start()
            except docker.errors.APIError as exc:
                # e.g. a GPU request on an engine without NVIDIA's runtime: the engine's own words say why.
                message = f"the engine refused to start the container: {exc.explanation or exc}"
                log_path.write_text(message + "\n")
                return outcome(None, start_error=message, **details)
            try:
                exit_code, timed_out = container.wait(timeout=timeout_s)["StatusCode"], False
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                container.kill()
                container.wait(timeout=60)
                exit_code, timed_out = None, True
            # The log's first line says which build ran the runner: an export's or a reference's log is all that
            # is kept of its launch.
            log_path.write_bytes(f"greenrt: {choice.describe()}\n".encode() + container.logs(stdout=True, stderr=True))
            container.reload()
            oom = bool(container.attrs.get("State", {}).get("OOMKilled"))
            if oom or exit_code == 137:  # killed by a signal: report it the way a child process would
                exit_code = -9 if exit_code == 137 else exit_code
            return outcome(exit_code, timed_out, oom=oom, **details)
        except docker.errors.DockerException as exc:
            message = f"Docker engine error: {exc}"
            with open(log_path, "a") as log:
                log.write(message + "\n")
            return outcome(None, start_error=message)
        finally:
            if container is not None:
                try:
                    container.remove(force=True)
                except docker.errors.NotFound:
                    pass


def end_leftover_containers(client: Any) -> int:
    ended = 0
    for container in leftover_containers(client):
        owner = container.labels.get(LABEL_PREFIX + "owner-pid", "?")
        try:
            container.remove(force=True)
        except Exception as exc:  # noqa: BLE001 - an engine error must not stop the sweep; it is said
            logger.info(f"could not remove leftover container {container.name}: {exc}")
            continue
        ended += 1
        logger.info(f"removed container {container.name} left by greenrt {owner}, which is no longer running")
    return ended


def greenrt_containers(client: Any) -> list[Any]:
    """Every container greenrt started on this engine, running or not.

    The SDK lists ids, then inspects each: a container removed in between (a launch of another sweep ending, its
    container auto-removed) is left out rather than failing the listing with NotFound.
    """
    return client.containers.list(all=True, filters={"label": RUN_LABEL}, ignore_removed=True)


def leftover_containers(client: Any) -> list[Any]:
    """Containers greenrt started that outlived their launch: this process's (launch() removes its own before it
    returns) and those of a greenrt that is no longer running (killed mid-run). A live sweep's container is not."""
    left = []
    for container in greenrt_containers(client):
        owner = container.labels.get(LABEL_PREFIX + "owner-pid", "")
        if not owner.isdigit() or int(owner) == os.getpid() or not alive(int(owner)):
            left.append(container)
    return left
