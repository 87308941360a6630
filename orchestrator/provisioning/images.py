"""The runtimes' Docker images: one per images/<env>/ folder, built from the checkout with the docker SDK.

An image is tagged greenrt/<env>:latest (the CUDA flavor, FROM NVIDIA's CUDA base) or greenrt/<env>:cpu (the CPU
flavor), so both builds of one environment can sit side by side, and labelled with a digest of everything that
went into it (its Dockerfile and requirements, the shared build scripts, runners/ and models/, the wheels given,
the base and the flavor). The Docker launcher runs an image only while that digest matches the checkout, so a
container never runs other code than the local launcher would.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from orchestrator import paths
from orchestrator.errors import UserError

logger = logging.getLogger(__name__)

REPOSITORY = "greenrt"
LABEL_PREFIX = "org.greenrt."
FLAVORS = ("cuda", "cpu")
# The runner's uid inside every image (images/common/prepare-system.sh).
RUNNER_UID = 10001
_SOURCE_DIRS = ("runners", "models")
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class ImageBuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class ImageState:
    environment: str
    reference: str
    state: str  # "ready" | "stale" | "absent" | "no-engine"
    detail: str
    image_id: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def flavor(self) -> str | None:
        return self.labels.get(LABEL_PREFIX + "flavor")


def image_names() -> list[str]:
    """Environments that have a Dockerfile."""
    return sorted(p.parent.name for p in (paths.PROJECT_ROOT / "images").glob("*/Dockerfile"))


# The tag of each flavor: the CUDA build keeps the plain tag that `docker build -t greenrt/<env>` gives.
FLAVOR_TAGS = {"cuda": "latest", "cpu": "cpu"}


def image_reference(environment: str, flavor: str = "cuda") -> str:
    return f"{REPOSITORY}/{environment}:{FLAVOR_TAGS[flavor]}"


def _files_under(root: Path) -> Iterable[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def source_digest(environment: str, wheels: Iterable[str] = ()) -> str:
    """What an image of this environment is built from, as the checkout has it now."""
    root = paths.PROJECT_ROOT
    digest = hashlib.sha256()
    folders = [root / "images" / "common", root / "images" / environment, *(root / d for d in _SOURCE_DIRS)]
    for folder in folders:
        for path in _files_under(folder):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    for wheel in sorted(wheels):
        digest.update(b"wheel\0" + wheel.encode())
    return digest.hexdigest()[:16]


def requirement_names(requirements: Path) -> set[str]:
    names = set()
    for line in requirements.read_text().splitlines():
        match = _REQUIREMENT_NAME.match(line)
        if match and not line.lstrip().startswith(("#", "-")):
            names.add(_normalise(match.group(1)))
    return names


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def matching_wheels(wheelhouses: Iterable[Path], environment: str) -> list[Path]:
    """Wheels from the given folders that one of the environment's requirements files names."""
    folder = paths.PROJECT_ROOT / "images" / environment
    wanted = set().union(*(requirement_names(f) for f in folder.glob("requirements*.txt")))
    found = []
    for wheelhouse in wheelhouses:
        if not wheelhouse.is_dir():
            raise UserError(f"wheelhouse {wheelhouse} is not a directory")
        found += [w for w in sorted(wheelhouse.glob("*.whl")) if _normalise(w.name.split("-")[0]) in wanted]
    return found


def docker_client(timeout: int = 10) -> Any:
    """A docker SDK client, or a UserError that says why there is none."""
    try:
        import docker

        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except Exception as exc:  # the SDK raises several unrelated types for "no engine"
        raise UserError(f"no Docker engine reachable ({type(exc).__name__}: {str(exc)[:200]}); "
                        "start one (`make engine` installs and starts Docker on Debian) or use --launcher local") from None


class ImageManager:
    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = docker_client()
        return self._client

    def state(self, environment: str, flavor: str | None = None) -> ImageState:
        """One flavor's image; without a flavor, the environment's image: its CUDA build where there is one (what a
        GPU run needs), else its CPU build."""
        self._check_name(environment)
        found = self.flavors(environment)
        if flavor is not None:
            return found[flavor]
        if found["cuda"].state != "absent" or found["cpu"].state == "absent":
            return found["cuda"] if found["cuda"].state != "absent" else replace(found["cuda"], detail=(
                f"not built: `greenrt images build {environment}` (CUDA, on an NVIDIA host) or `make cpu-images`"))
        return found["cpu"]

    def flavors(self, environment: str) -> dict[str, ImageState]:
        """Each flavor's image of the environment (state "absent" where it is not built)."""
        self._check_name(environment)
        try:
            client = self.client
        except UserError as exc:
            return {f: ImageState(environment, image_reference(environment, f), "no-engine", str(exc)) for f in FLAVORS}
        found: dict[str, ImageState] = {}
        for flavor in ("cpu", "cuda"):  # the :cpu tag first: it wins over a CPU build an older greenrt tagged :latest
            state = self._state_at(client, environment, image_reference(environment, flavor))
            if state is not None:
                found.setdefault(state.flavor if state.flavor in FLAVORS else flavor, state)
        return {f: found.get(f) or ImageState(environment, image_reference(environment, f), "absent", (
            f"not built: `greenrt images build {environment}`" if f == "cuda" else
            f"not built: `make cpu-images IMAGES={environment}`")) for f in FLAVORS}

    def engine_runtimes(self) -> set[str]:
        """The container runtimes the engine offers ("runc", "nvidia" where NVIDIA's toolkit is registered)."""
        return set((self.client.info() or {}).get("Runtimes") or {})

    @staticmethod
    def _state_at(client: Any, environment: str, reference: str) -> ImageState | None:
        import docker

        try:
            image = client.images.get(reference)
        except docker.errors.ImageNotFound:
            return None
        labels = dict(image.labels or {})
        built_from = labels.get(LABEL_PREFIX + "source-digest")
        wheels = [w for w in labels.get(LABEL_PREFIX + "wheels", "").split(",") if w]
        current = source_digest(environment, wheels)
        base = labels.get(LABEL_PREFIX + "base-image", "?")
        flavor = labels.get(LABEL_PREFIX + "flavor", "?")
        if built_from != current:
            return ImageState(environment, reference, "stale", f"built from other sources than this checkout "
                              f"({built_from} != {current}): rebuild with `greenrt images build {environment}`"
                              + (" --flavor cpu" if flavor == "cpu" else ""), image.id, labels)
        return ImageState(environment, reference, "ready", f"{flavor} build on {base}, {image.short_id}", image.id, labels)

    def build(self, environment: str, base_image: str | None = None, flavor: str = "cuda",
              wheelhouses: Iterable[Path] = ()) -> ImageState:
        """Build one image from the checkout; each Dockerfile step is logged."""
        self._check_name(environment)
        if flavor not in FLAVORS:
            raise UserError(f"unknown flavor {flavor!r}; valid: {', '.join(FLAVORS)}")
        wheelhouses = [Path(w) for w in wheelhouses]
        wheels = self._stage_wheels(environment, wheelhouses)
        labels = {
            LABEL_PREFIX + "environment": environment,
            LABEL_PREFIX + "source-digest": source_digest(environment, [w.name for w in wheels]),
            LABEL_PREFIX + "base-image": base_image or "dockerfile default",
            LABEL_PREFIX + "flavor": flavor,
            LABEL_PREFIX + "wheels": ",".join(w.name for w in wheels),
            LABEL_PREFIX + "wheelhouses": os.pathsep.join(str(w.absolute()) for w in wheelhouses),
        }
        buildargs = {"FLAVOR": flavor, **({"BASE_IMAGE": base_image} if base_image else {})}
        log_path = paths.cache_dir() / "images" / f"{environment}.build.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        reference = image_reference(environment, flavor)
        logger.info(f"building {reference} ({flavor}, base {base_image or 'the Dockerfile default'}); log: {log_path}")
        error = None
        with open(log_path, "w") as log:
            # The low-level API streams the build; pull=False: a local base must not be looked up in a registry.
            stream = self.client.api.build(path=str(paths.PROJECT_ROOT), dockerfile=f"images/{environment}/Dockerfile",
                                           tag=reference, buildargs=buildargs, labels=labels,
                                           rm=True, forcerm=True, pull=False, decode=True)
            for chunk in stream:
                text = chunk.get("stream") or chunk.get("status") or ""
                if text:
                    log.write(text if text.endswith("\n") else text + "\n")
                    if text.startswith("Step "):
                        logger.info(f"{environment}: {text.strip()[:150]}")
                if "error" in chunk:
                    error = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                    log.write(f"ERROR: {error}\n")
        if error:
            raise ImageBuildError(f"building image {environment} failed: {error.strip()[:300]}; see {log_path}")
        if flavor == "cpu":
            self._untag_old_cpu_build(environment)
        state = self.state(environment, flavor)
        logger.info(f"{environment}: {state.state} ({state.detail})")
        return state

    def _untag_old_cpu_build(self, environment: str) -> None:
        """An older greenrt tagged CPU builds greenrt/<env>:latest, the CUDA build's tag: once the CPU build has its
        own tag, that one is untagged so that the plain tag never names a CPU build."""
        import docker

        latest = image_reference(environment, "cuda")
        try:
            if (self.client.images.get(latest).labels or {}).get(LABEL_PREFIX + "flavor") == "cpu":
                self.client.images.remove(latest, noprune=True)
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:  # in use by a container: the :cpu tag wins in flavors() anyway
            logger.warning(f"could not untag the older CPU build {latest}: {exc}")

    def rebuild(self, environment: str, flavor: str | None = None) -> ImageState:
        """Build a stale image again the way it was built (base, flavor, wheel folders, read from its labels)."""
        state = self.state(environment, flavor)
        if state.state == "absent":
            raise ImageBuildError(f"image {state.reference} is absent: build it first with "
                                  f"`greenrt images build {environment}` (--base-image/--flavor cpu without a GPU)")
        base = state.labels.get(LABEL_PREFIX + "base-image")
        wheelhouses = [Path(p) for p in state.labels.get(LABEL_PREFIX + "wheelhouses", "").split(os.pathsep) if p]
        return self.build(environment, base_image=None if base in (None, "dockerfile default") else base,
                          flavor=state.flavor or "cuda", wheelhouses=[p for p in wheelhouses if p.is_dir()])

    def _stage_wheels(self, environment: str, wheelhouses: Iterable[Path]) -> list[Path]:
        """Copy the wheels this image needs into images/wheelhouse/ (the build context), replacing earlier ones."""
        staging = paths.PROJECT_ROOT / "images" / "wheelhouse"
        staging.mkdir(exist_ok=True)
        for old in staging.glob("*.whl"):
            old.unlink()
        wheels = matching_wheels(wheelhouses, environment)
        for wheel in wheels:
            shutil.copy2(wheel, staging / wheel.name)
        return wheels

    @staticmethod
    def _check_name(environment: str) -> None:
        if environment not in image_names():
            raise UserError(f"unknown image {environment!r}; valid: {', '.join(image_names())}")
