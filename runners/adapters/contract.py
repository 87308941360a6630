"""The adapter contract: what one runtime implements for the shared measured loop (runners.loop).

An adapter knows how to load a model on its device, place inputs there, run one batch and synchronise the device;
the loop owns everything else.  This module imports the standard library and the bottom of runners/ only
(protocol, failures, runtimes_table): every adapter and the loop import it, and it imports neither.
"""
from __future__ import annotations

import contextlib
import importlib
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from runners.failures import UnsupportedError
from runners.protocol import RunRequest, UserModel
from runners.runtimes_table import find

if TYPE_CHECKING:
    import numpy as np


def import_framework(name: str):
    """The framework module `name`, imported now; "unsupported" where this environment does not have it."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise UnsupportedError(f"{name} is not importable in this environment ({exc})") from None


def check_runtime(request: RunRequest) -> None:
    """Refuse ("unsupported") a provider or precision that the runtimes table does not give request.runtime.

    A runtime the table does not know is left to the registry (which refuses it) or to the adapter given.
    """
    family = find(request.framework, request.model_format)
    if family is None:
        return
    reason = family.refusal(request.provider, request.precision)
    if reason:
        raise UnsupportedError(reason)


class Adapter(ABC):
    """How one runtime loads a model, places inputs on its device, runs one batch and synchronises.

    The loop calls, in order: check_request, load (timed), prepare (once, before any timing), then run + synchronize
    repeatedly, then to_numpy on the last outputs.  Outputs stay on the device inside the window.
    """

    # What the loop reports of every adapter, set by load: the provider it runs on once its device is ready (None
    # until then: a run refused before that reports none), and the intra-op threads where the adapter knows them.
    provider: str | None = None
    n_threads: int | None = None
    # A user model's entry (RunRequest.user_model), set by the loop: its provenance goes into runtime_facts.
    user_model_entry: UserModel | None = None

    def check_request(self, request: RunRequest) -> None:
        """Refuse, before anything is imported or loaded, what this runtime cannot run: by default the providers
        and precisions of the runtimes table (runners.runtimes_table).  An adapter extends it with its own
        options (calling this one first)."""
        check_runtime(request)

    @abstractmethod
    def load(self, request: RunRequest) -> None:
        """Build or load the model on the device (timed as load_seconds)."""

    @abstractmethod
    def prepare(self, inputs: dict[str, np.ndarray]) -> Any:
        """Device-resident inputs, placed before the window: data transfer is never measured."""

    @abstractmethod
    def run(self, prepared: Any) -> Any:
        """One inference on the prepared inputs; the outputs may stay on the device."""

    def synchronize(self) -> None:
        """Wait until the device has finished the work queued so far (no-op for synchronous runtimes)."""

    @abstractmethod
    def to_numpy(self, outputs: Any) -> dict[str, np.ndarray]:
        """The outputs of `run` as host arrays, by the registry's output names."""

    def context(self) -> contextlib.AbstractContextManager:
        """Entered around warm-up and window (e.g. torch.inference_mode())."""
        return contextlib.nullcontext()

    def versions(self) -> dict[str, str]:
        return {}

    def devices(self) -> list[str]:
        return []

    def provider_used(self) -> str | None:
        return self.provider

    def threads(self) -> int | None:
        return self.n_threads

    def peak_device_bytes(self) -> int | None:
        return None

    def on_window_start(self) -> None:
        """Called once after warm-up, just before the measured window (outside timing): e.g. to snapshot a
        compiler's counters, so that what happens inside the window (a recompilation) can be told apart."""

    def runtime_facts(self) -> dict[str, Any] | None:
        """What the runtime decided or saw (settings it chose, graphs compiled, breaks, recompilations in the
        window), JSON-serialisable; None when the adapter reports nothing. Read after the run, even a failed one."""
        return None

    def node_placement(self) -> dict[str, Any] | None:
        """Where the runtime put the graph's nodes, per execution provider (ONNX Runtime); None elsewhere."""
        return None
