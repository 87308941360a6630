"""A generative run's figures, typed: time to first token, time per output token, output tokens per second, and
(where a sensor measured the run) its energy split by phase and per token.

The runner reports, per window iteration, [start, first_token, end] on the host's monotonic clock
(RunResult.generation, runners/protocol.py). One iteration is one generate call of B sequences of P prompt tokens
making exactly N new tokens. Per iteration:

- TTFT  = first_token - start (the prefill, which also makes the first new token);
- TPOT  = (end - first_token) / (N - 1): the N - 1 tokens made after the first one (no figure where N = 1);
- output tokens/s = B * N / (end - start).

Each is summarised over the window's iterations by its median and spread (quartiles, extremes). An iteration whose
first token was not stamped has no TTFT or TPOT, but still its tokens/s; the payload counts such iterations.

The energy (`GenerationEnergy`, made by orchestrator/measurement/phase_energy.py from the sampled sensors) is
per phase over the run's counted channels (CPU, DRAM, the run's own GPUs; as `energy_j` in the tables):
prefill = the [start, first_token] intervals, decode = the [first_token, end] intervals, gaps = the rest of the
window; prefill + decode + gaps = the window's energy. Per-token figures:

- J per prompt token = prefill energy / (K * B * P);
- J per output token = decode energy / (K * B * (N - 1)): the decode phase makes N - 1 tokens (the first one is
  the prefill's), the same tokens TPOT divides by; none where N = 1;
- J per request = the iterations' energy (prefill + decode, or the whole iteration where it was not split) /
  (K * B),

K the window's iterations (those split by a first-token stamp, for the phase figures).
Pure: no clock, no file. results imports nothing of measurement, so the energy models live here.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestrator.results.payloads import Payload

NS_PER_MS = 1e6
NS_PER_S = 1e9

Phase = Literal["prefill", "decode", "gaps"]
PHASES: tuple[Phase, ...] = ("prefill", "decode", "gaps")


class GenerationTimesShape(BaseModel):
    """RunResult.generation as the journal holds it (runners/protocol.py's GenerationTimes, as JSON).

    phases_ns: one [start, first_token, end] per window iteration; first_token may be null where the runtime gave
    no first-token stamp for that iteration."""

    model_config = ConfigDict(extra="allow")

    prompt_tokens: int = Field(ge=1)
    new_tokens: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    phases_ns: list[tuple[int, Optional[int], int]]

    @field_validator("phases_ns")
    @classmethod
    def _ordered(cls, phases: list[tuple[int, Optional[int], int]]) -> list[tuple[int, Optional[int], int]]:
        previous_end = None
        for k, (start, first, end) in enumerate(phases):
            if end < start or (first is not None and not start <= first <= end):
                raise ValueError(f"iteration {k}: [start, first_token, end] = {[start, first, end]} is not in order")
            if previous_end is not None and start < previous_end:
                raise ValueError(f"iteration {k} starts before iteration {k - 1} ended")
            previous_end = end
        return phases


def generation_times(result: Mapping[str, Any] | None) -> GenerationTimesShape | None:
    """The run's generation times from its RunResult (a dict), or None for a run that is not generative."""
    times = (result or {}).get("generation")
    return None if times is None else GenerationTimesShape.model_validate(times)


class Spread(Payload):
    """A figure over a run's iterations: its median, quartiles and extremes, and how many iterations it has."""

    n: int
    median: float
    q1: float
    q3: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float] | np.ndarray) -> Optional[Spread]:
        x = np.asarray(values, dtype=np.float64)
        if x.size == 0:
            return None
        q1, median, q3 = (float(v) for v in np.percentile(x, [25, 50, 75]))
        return cls(n=int(x.size), median=median, q1=q1, q3=q3, min=float(x.min()), max=float(x.max()))


class ChannelPhase(Payload):
    """One channel's energy over one phase's intervals (measurement/phase_energy.py)."""

    raw_j: Optional[float] = None
    dynamic_j: Optional[float] = None  # raw minus the channel's idle power times the phase's seconds
    # Worst case: the counter's update period times the power at each interval edge, summed over every edge
    # (measurement/edges.py, applied per edge); None where no counter or no power is known.
    edge_uncertainty_j: Optional[float] = None
    # The same edges' error as a standard deviation, if each edge falls at a random point of the counter's step
    # (each edge's error uniform in [0, P * T]): what remains of the worst case after averaging many iterations.
    edge_sd_j: Optional[float] = None
    # The phase's median interval is shorter than the counter's update period (NVML's step, RAPL's sampling): its
    # energy is the counter's average power over a step around it, not the phase's own (see edge_uncertainty_j).
    short: bool = False


class ChannelPhases(Payload):
    """One channel over the window: its phases, the window's energy, and why there is no figure where there is none."""

    domain: str
    counted: bool  # in the run's energy (CPU, DRAM, the run's own GPUs), as the tables' energy_j
    status: str  # ok | invalid
    reason: str = ""
    counter_period_s: Optional[float] = None
    window_j: Optional[float] = None
    iterations_j: Optional[float] = None  # every iteration's [start, end], split or not
    unsplit_j: Optional[float] = None  # the iterations without a first-token stamp: in neither phase
    prefill: Optional[ChannelPhase] = None
    decode: Optional[ChannelPhase] = None
    gaps: Optional[ChannelPhase] = None


class PhaseTotal(Payload):
    """One phase over the run's counted channels: each figure None where any counted channel has none."""

    seconds: float  # the phase's intervals summed
    intervals: int
    median_interval_ms: Optional[float] = None
    raw_j: Optional[float] = None
    dynamic_j: Optional[float] = None
    edge_uncertainty_j: Optional[float] = None
    edge_sd_j: Optional[float] = None
    short_channels: list[str] = []  # channels whose update period is longer than the median interval


class GenerationEnergy(Payload):
    """The run's energy by phase (measurement/phase_energy.py): per channel, and summed over the counted ones."""

    status: str  # ok | partial (some iterations unsplit, or a channel invalid) | invalid | unavailable
    reason: str = ""
    split_iterations: int = 0  # iterations with a first-token stamp: the prefill and decode figures cover these
    window_j: Optional[float] = None
    iterations_j: Optional[float] = None
    iterations_dynamic_j: Optional[float] = None
    prefill: Optional[PhaseTotal] = None
    decode: Optional[PhaseTotal] = None
    gaps: Optional[PhaseTotal] = None
    unsplit_j: Optional[float] = None  # iterations without a first-token stamp: in the request's energy only
    # |window - (prefill + decode + gaps + unsplit)| over the counted channels: float rounding only, since each boundary is
    # read from the same interpolated counter (the check the tests make).
    closure_j: Optional[float] = None
    channels: dict[str, ChannelPhases] = {}

    @classmethod
    def unavailable(cls, reason: str) -> GenerationEnergy:
        return cls(status="unavailable", reason=reason)


class Generation(Payload):
    """A generative run's record payload: its times, tokens per second and per-token energy."""

    prompt_tokens: int
    new_tokens: int
    batch_size: int
    iterations: int
    unsplit_iterations: int = 0  # iterations without a first-token stamp: no TTFT, no TPOT, no phase energy
    ttft_ms: Optional[Spread] = None
    tpot_ms: Optional[Spread] = None
    output_tokens_per_s: Optional[Spread] = None
    prefill_s: Optional[float] = None  # summed over the split iterations
    decode_s: Optional[float] = None
    gaps_s: Optional[float] = None  # the window's time outside every iteration
    note: str = ""
    energy: Optional[GenerationEnergy] = None
    j_per_prompt_token: Optional[float] = None
    j_per_output_token: Optional[float] = None
    j_per_request: Optional[float] = None
    dynamic_j_per_prompt_token: Optional[float] = None
    dynamic_j_per_output_token: Optional[float] = None
    dynamic_j_per_request: Optional[float] = None
    prefill_energy_share: Optional[float] = None  # prefill / (prefill + decode), raw energy
    energy_note: str = ""

    @property
    def ttft_median_ms(self) -> float | None:
        return self.ttft_ms.median if self.ttft_ms else None

    @property
    def tpot_median_ms(self) -> float | None:
        return self.tpot_ms.median if self.tpot_ms else None

    @property
    def tokens_per_s_median(self) -> float | None:
        return self.output_tokens_per_s.median if self.output_tokens_per_s else None


def _per(value: float | None, count: int) -> float | None:
    return value / count if value is not None and count > 0 else None


def generation_payload(times: GenerationTimesShape, window: tuple[int, int] | None = None,
                       energy: GenerationEnergy | None = None) -> Generation:
    """The run's generation figures from its per-iteration stamps (and its phase energy, where it was measured).

    window: the runner's measured window (its gaps are the time outside every iteration)."""
    phases = times.phases_ns
    B, P, N = times.batch_size, times.prompt_tokens, times.new_tokens
    starts = np.array([p[0] for p in phases], dtype=np.int64)
    ends = np.array([p[2] for p in phases], dtype=np.int64)
    split = [p for p in phases if p[1] is not None]
    firsts = np.array([p[1] for p in split], dtype=np.int64)
    split_starts = np.array([p[0] for p in split], dtype=np.int64)
    split_ends = np.array([p[2] for p in split], dtype=np.int64)
    notes = []
    if not phases:
        notes.append("no iteration recorded")
    if len(split) < len(phases):
        notes.append(f"{len(phases) - len(split)} of {len(phases)} iterations have no first-token stamp: no TTFT, "
                     "TPOT or phase energy for them")
    if N == 1:
        notes.append("one new token per sequence: no decode step, so no TPOT and no J per output token")
    durations = ends - starts
    positive = durations > 0
    tokens_per_s = B * N / (durations[positive] / NS_PER_S)
    ttft = (firsts - split_starts) / NS_PER_MS
    tpot = (split_ends - firsts) / NS_PER_MS / (N - 1) if N > 1 else np.array([])
    gaps_s = None
    if window is not None and phases:
        gaps_s = ((window[1] - window[0]) - int(durations.sum())) / NS_PER_S
    payload = Generation(
        prompt_tokens=P, new_tokens=N, batch_size=B, iterations=len(phases), unsplit_iterations=len(phases) - len(split),
        ttft_ms=Spread.of(ttft), tpot_ms=Spread.of(tpot), output_tokens_per_s=Spread.of(tokens_per_s),
        prefill_s=float((firsts - split_starts).sum()) / NS_PER_S if split else None,
        decode_s=float((split_ends - firsts).sum()) / NS_PER_S if split else None,
        gaps_s=gaps_s, note="; ".join(notes))
    if energy is not None:
        _add_energy(payload, energy, len(split), len(phases))
    return payload


def _add_energy(payload: Generation, energy: GenerationEnergy, split: int, iterations: int) -> None:
    B, P, N = payload.batch_size, payload.prompt_tokens, payload.new_tokens
    payload.energy = energy
    prefill, decode = energy.prefill, energy.decode
    prompt_tokens, decoded_tokens = split * B * P, split * B * (N - 1)
    payload.j_per_prompt_token = _per(prefill.raw_j if prefill else None, prompt_tokens)
    payload.dynamic_j_per_prompt_token = _per(prefill.dynamic_j if prefill else None, prompt_tokens)
    payload.j_per_output_token = _per(decode.raw_j if decode else None, decoded_tokens)
    payload.dynamic_j_per_output_token = _per(decode.dynamic_j if decode else None, decoded_tokens)
    payload.j_per_request = _per(energy.iterations_j, iterations * B)
    payload.dynamic_j_per_request = _per(energy.iterations_dynamic_j, iterations * B)
    if prefill and decode and prefill.raw_j is not None and decode.raw_j is not None and prefill.raw_j + decode.raw_j:
        payload.prefill_energy_share = prefill.raw_j / (prefill.raw_j + decode.raw_j)
    # an unavailable energy is said once, by the run's own energy note; a partial one says here what it lacks
    notes = [energy.reason] if energy.reason and energy.status != "unavailable" else []
    for name, phase in (("prefill", prefill), ("decode", decode)):
        if phase and phase.short_channels:
            notes.append(f"{name} intervals (median {phase.median_interval_ms:.3g} ms) are shorter than the update "
                         f"period of {', '.join(phase.short_channels)}: its energy is the counter's average power "
                         f"over a step around it, within +-{phase.edge_uncertainty_j:.3g} J (worst case)"
                         if phase.edge_uncertainty_j is not None else
                         f"{name} intervals are shorter than the update period of {', '.join(phase.short_channels)}")
    payload.energy_note = "; ".join(notes)


def generation_of_result(result: Mapping[str, Any] | None, energy: GenerationEnergy | None = None) -> Generation | None:
    """A RunResult's (a dict's) generation figures, or None for a run that is not generative."""
    times = generation_times(result)
    if times is None:
        return None
    start, end = (result or {}).get("window_start_ns"), (result or {}).get("window_end_ns")
    return generation_payload(times, (int(start), int(end)) if start is not None and end is not None else None, energy)
