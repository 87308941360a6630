"""The client language as part of a runtime's identity (issue 25, docs/clients.md).

A runtime id may end in `@<client>`: `onnxruntime/onnx-from-torch/cpu@node`, `torch/aoti/cpu@cpp`. No suffix is
the Python runner (`python -m runners`) in the runtime's own environment, so ids written before keep their meaning.
`@python` names the Python runner in the environment the other clients of that runtime share, where that pins a
different engine version than the runtime's own environment: onnxruntime-node ships ONNX Runtime 1.31.1 while the
onnxruntime environment follows the newest release, so `onnxruntime/onnx-from-torch/cpu@python` is the Python
client of the same ONNX Runtime as `@node`, and a difference between the two is the client's, not the engine's.

The bottom of runners/: standard library only, imports nothing of greenrt and no framework (read by the planner,
the launchers and the report).
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass

SEPARATOR = "@"
PYTHON = "python"  # the language of a runtime id without a suffix


@dataclass(frozen=True)
class Client:
    """A runner in one language for the base runtimes it drives."""

    name: str  # the id suffix
    language: str  # how tables and figures name it
    bases: tuple[str, ...]  # fnmatch patterns of the base runtime ids (framework/format/provider) it drives
    environment: str  # the images/<environment>/ that holds its engine (and, for @python, the pinned Python client)
    precisions: tuple[str, ...] = ("fp32",)
    why: str = ""  # why this client exists beside the plain id (shown by plan and in docs)


CLIENTS: dict[str, Client] = {
    "node": Client("node", "Node.js", ("onnxruntime/onnx-from-*/cpu", "onnxruntime/onnx/cpu"), "onnxruntime-node",
                   why="onnxruntime-node (npm, CPU binaries only: its CUDA add-ons are a download outside the "
                       "registry)"),
    PYTHON: Client(PYTHON, "Python", ("onnxruntime/onnx-from-*/cpu", "onnxruntime/onnx/cpu"), "onnxruntime-node",
                   why="the Python client of the ONNX Runtime version that onnxruntime-node ships, so that Python "
                       "and Node.js drive the same engine"),
    "cpp": Client("cpp", "C++", ("torch/torchscript/cpu", "torch/aoti/cpu"), "torch",
                  why="libtorch of the torch environment's wheel (runners/cpp/), on the same TorchScript or "
                      "AOTInductor file that `torch/torchscript/cpu` and `torch/aoti/cpu` run from Python"),
}


def split_client(runtime: str) -> tuple[str, str | None]:
    """('framework/format/provider', client suffix or None for a plain id). Pure; does not validate."""
    base, separator, client = runtime.partition(SEPARATOR)
    return base, (client if separator else None)


def language(runtime: str) -> str:
    """The client language of a runtime id: 'Python' without a suffix or with an unknown one's name as given."""
    client = split_client(runtime)[1]
    if client is None:
        return CLIENTS[PYTHON].language
    known = CLIENTS.get(client)
    return known.language if known is not None else client


def clients_of(base: str) -> list[str]:
    """The client suffixes that drive `base` (a plain runtime id), in the table's order."""
    return [name for name, client in CLIENTS.items() if any(fnmatch.fnmatchcase(base, p) for p in client.bases)]


def client_refusal(runtime: str) -> str | None:
    """Why `runtime`'s suffix does not name a client of its base runtime (None for a plain id or a valid one)."""
    base, client = split_client(runtime)
    if client is None:
        return None
    valid = clients_of(base)
    if client in valid:
        return None
    if not valid:
        return f"{base} has no client other than Python (no @suffix); clients exist for: " + ", ".join(
            sorted({p for c in CLIENTS.values() for p in c.bases}))
    return f"{base} has no client {client!r}; valid: " + ", ".join(f"@{name}" for name in valid)
