"""Which program a launch starts, by the runtime's client (runners/clients.py): one function for every launcher.

The runners honour one contract (docs/clients.md), so a launcher only needs the command line that starts the right
one, and the variables it needs; timeouts, signals and the result file are the same for all of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runners.clients import CLIENTS, PYTHON

NODE_RUNNER = Path("runners") / "node" / "runner.js"  # under the checkout (local) or the image's source folder
CPP_RUNNER = "greenrt-torch-runner"  # built into the torch environment's bin/ (runners/cpp/build.sh)
# Clients whose runner is a program to build into the environment before it runs (LocalLauncher.prepare_client).
BUILT_CLIENTS = ("cpp",)


@dataclass(frozen=True)
class RunnerPlace:
    """Where an environment's runners are: its Python interpreter, the checkout (or image folder) holding runners/,
    the folder of its built programs (None: found on PATH, as in an image), and its npm packages (None: NODE_PATH is
    set already, as in the onnxruntime-node image)."""

    python: str
    source_root: Path
    bin_dir: Path | None = None
    node_modules: Path | None = None


def runner_command(client: str | None, place: RunnerPlace) -> tuple[list[str], dict[str, str]]:
    """(the command that starts `client`'s runner, without its arguments; the variables it needs besides the run's).

    No client or @python: `python -m runners` (@python only picks the environment); @node: Node.js on the checkout's
    runner.js, onnxruntime-node found through NODE_PATH; @cpp: greenrt-torch-runner. ValueError for any other.
    """
    if client in (None, PYTHON):
        return [place.python, "-m", "runners"], {}
    if client == "node":
        extra = {"NODE_PATH": str(place.node_modules)} if place.node_modules is not None else {}
        return ["node", str(place.source_root / NODE_RUNNER)], extra
    if client == "cpp":
        return [str(place.bin_dir / CPP_RUNNER) if place.bin_dir is not None else CPP_RUNNER], {}
    raise ValueError(f"no runner command for client {client!r}; valid: {', '.join(CLIENTS)}")
