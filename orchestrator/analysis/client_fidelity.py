"""Fidelity across clients: whether a runner in another language computed the same outputs as the Python client.

A non-Python client (`base@node`, `base@cpp`) and the Python client of the same base runtime run the same artifact
on the same inputs: their output digests (sha256 of the last iteration's outputs, runners/loop.py) should be the
same bytes. The Python client is `base@python` where the base has one (ONNX Runtime: the Python client pinned to
the engine version onnxruntime-node ships), else the plain id (`torch/torchscript/cpu` for `...@cpp`).
Pure: a function of the runs table's rows (orchestrator/results/tables.py), for the sweep's closing lines and the
report.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runners.clients import CLIENTS, PYTHON, SEPARATOR, clients_of, split_client

IDENTICAL, DIFFERENT, UNKNOWN = "identical", "different", "unknown"


@dataclass(frozen=True)
class ClientDigests:
    """One non-Python client against the Python client, for one model, batch size and precision."""

    model: str
    batch_size: int
    precision: str
    runtime: str  # the non-Python client's id, e.g. onnxruntime/onnx-from-torch/cpu@node
    python_runtime: str  # its Python client's id
    digests: tuple[str, ...]  # the distinct output digests of the client's ok runs, sorted
    python_digests: tuple[str, ...]
    verdict: str  # IDENTICAL (one digest, the same on both sides), DIFFERENT, or UNKNOWN (a side has none)

    @property
    def line(self) -> str:
        """One line for the sweep's output and the report."""
        where = f"{self.model} bs{self.batch_size} {self.precision}: {self.runtime} vs {self.python_runtime}"
        if self.verdict == IDENTICAL:
            return f"{where}: output digests identical ({self.digests[0][:12]})"
        if self.verdict == UNKNOWN:
            side = self.runtime if not self.digests else self.python_runtime
            return f"{where}: not compared ({side} has no ok run with an output digest)"
        return (f"{where}: output digests DIFFER ({len(self.digests)} from {self.runtime}, "
                f"{len(self.python_digests)} from {self.python_runtime}; the same artifact and inputs should give "
                f"the same bytes)")


def python_client_of(runtime: str) -> str | None:
    """The Python client a non-Python client's outputs are compared with; None for a Python runtime id."""
    base, client = split_client(runtime)
    if client is None or client == PYTHON or client not in CLIENTS:
        return None
    return f"{base}{SEPARATOR}{PYTHON}" if PYTHON in clients_of(base) else base


def _verdict(digests: tuple[str, ...], python_digests: tuple[str, ...]) -> str:
    if not digests or not python_digests:
        return UNKNOWN
    return IDENTICAL if len(set(digests) | set(python_digests)) == 1 else DIFFERENT


def client_digests(rows: Iterable[Mapping[str, Any]]) -> list[ClientDigests]:
    """Each (model, batch size, precision, non-Python client) whose Python client ran in the same sweep, in a stable
    order. `rows`: the runs table's rows (runtime, model, batch_size, precision, status, output_sha256)."""
    digests: dict[tuple[str, int, str, str], set[str]] = {}
    planned: set[tuple[str, int, str, str]] = set()
    for row in rows:
        key = (row["model"], int(row["batch_size"]), row["precision"], row["runtime"])
        planned.add(key)
        if row.get("status") == "ok" and row.get("output_sha256"):
            digests.setdefault(key, set()).add(row["output_sha256"])
    found = []
    for model, batch, precision, runtime in sorted(planned):
        partner = python_client_of(runtime)
        if partner is None or (model, batch, precision, partner) not in planned:
            continue
        ours = tuple(sorted(digests.get((model, batch, precision, runtime), ())))
        theirs = tuple(sorted(digests.get((model, batch, precision, partner), ())))
        found.append(ClientDigests(model, batch, precision, runtime, partner, ours, theirs, _verdict(ours, theirs)))
    return found
