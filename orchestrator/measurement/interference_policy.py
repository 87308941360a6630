"""What becomes of a run measured on a busy host, by [interference].on_busy: a pure decision over the window's
Interference payload and the attempt it came from."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from .interference import InterferenceObserver
from orchestrator.results.interference_payload import Interference, Thresholds

POLICIES = ("flag", "remeasure", "abort")
Action = Literal["keep", "remeasure", "abort"]


class PolicySettings(Protocol):
    """[interference] of a sweep config (orchestrator/planning/config_sections.InterferenceSettings)."""

    on_busy: str
    max_remeasures: int
    max_others_share: float
    max_steal_share: float
    gpu_others: bool
    interval_ms: float


@dataclass(frozen=True)
class Decision:
    action: Action  # keep: record the run (flagged if it was); remeasure: measure it again; abort: stop the sweep
    note: str  # for the record and the terminal; empty for a quiet window


def thresholds_of(settings: PolicySettings) -> Thresholds:
    return Thresholds(max_others_share=settings.max_others_share, max_steal_share=settings.max_steal_share,
                      gpu_others=settings.gpu_others)


def observer_for(settings: PolicySettings, *, gpu_indices: Sequence[int] = (), owner_marker: str | None = None,
                 watch_cgroups: bool = False) -> InterferenceObserver:
    """The observer of one run's launch, as [interference] sets it (not started)."""
    return InterferenceObserver(thresholds=thresholds_of(settings), interval_s=settings.interval_ms / 1e3,
                                gpu_indices=gpu_indices, owner_marker=owner_marker, watch_cgroups=watch_cgroups)


def decide(payload: Interference, on_busy: str, attempt: int, max_remeasures: int) -> Decision:
    """attempt: 1 for the first measurement of the run, 2 for the first measured again, ..."""
    if on_busy not in POLICIES:
        raise ValueError(f"on_busy = {on_busy!r}; valid: {', '.join(POLICIES)}")
    if attempt < 1:
        raise ValueError(f"attempt = {attempt}; valid: 1 or more")
    if not payload.flagged:
        return Decision("keep", "")
    why = payload.reasons[0] if payload.reasons else "flagged"
    if on_busy == "abort":
        return Decision("abort", f"the host was busy ({why}); interference.on_busy = 'abort' stops the sweep: "
                                 "resume it once the host is quiet")
    if on_busy == "remeasure":
        if attempt <= max_remeasures:
            return Decision("remeasure", f"the host was busy ({why}); measured again "
                                         f"(attempt {attempt + 1} of at most {max_remeasures + 1})")
        return Decision("keep", f"the host was still busy after {attempt} measurements ({why}); the last one is "
                                "kept, flagged")
    return Decision("keep", f"measured on a busy host ({why}); kept, flagged")
