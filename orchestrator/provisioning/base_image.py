"""A local Debian base image with Python, for building the CPU images where no registry can be reached.

debootstrap writes a minimal Debian root filesystem with python3 and venv support, which is imported into the
engine as an image. The host's CA bundle is copied in, so that package downloads during image builds trust what
the host trusts (a TLS-inspecting proxy's CA, for one). The NVIDIA CUDA images stay the Dockerfiles' default.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from orchestrator.errors import UserError

logger = logging.getLogger(__name__)

DEFAULT_TAG = "greenrt/base:bookworm"
DEFAULT_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Trimmed from the root filesystem: caches and documentation no image needs (about half its size).
_TRIM = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale")


def base_exists(client: Any, tag: str) -> bool:
    import docker

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def _unmount_under(root: Path, mounts: Path = Path("/proc/mounts")) -> None:
    """Unmount what debootstrap left mounted in the root filesystem (seen: its /proc, on a host where its own
    unmount failed quietly): tar would archive the host's processes, and removing the folder would fail."""
    prefix = str(root.resolve()) + "/"
    mounted = [line.split()[1] for line in mounts.read_text().splitlines() if len(line.split()) > 1]
    for point in sorted((m for m in mounted if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def build_base(client: Any, tag: str = DEFAULT_TAG, suite: str = DEFAULT_SUITE, mirror: str = DEFAULT_MIRROR,
               ) -> float:
    """Bootstrap, trim and import the base image; returns the seconds it took."""
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise UserError("debootstrap not found: `apt-get install -y debootstrap` (Debian/Ubuntu), needed to build a "
                        "local base image")
    if os.geteuid() != 0:
        raise UserError("building a base image with debootstrap needs root")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="greenrt-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        logger.info(f"debootstrap {suite} from {mirror} into {rootfs} ({', '.join(PACKAGES)})")
        command = [debootstrap, "--variant=minbase", f"--include={','.join(PACKAGES)}", suite, str(rootfs), mirror]
        done = subprocess.run(command, capture_output=True, text=True)
        _unmount_under(rootfs)  # before any error: a mounted /proc would stop the folder's removal
        if done.returncode != 0:
            raise UserError(f"debootstrap failed ({done.returncode}): {(done.stdout + done.stderr).strip()[-400:]}")
        for relative in _TRIM:
            target = rootfs / relative
            if target.is_dir():
                shutil.rmtree(target)
                target.mkdir()
        if HOST_CA_BUNDLE.is_file():
            shutil.copy2(HOST_CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
        archive = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(archive), "."], check=True)
        repository, _, version = tag.partition(":")
        logger.info(f"importing {archive.stat().st_size / 2**20:.0f} MiB as {tag}")
        client.api.import_image_from_file(str(archive), repository=repository, tag=version or "latest",
                                          changes=['CMD ["python3"]'])
    return time.monotonic() - started
