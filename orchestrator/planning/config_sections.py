"""The tables of a sweep config that set the measurement protocol and the report: [warmup], [measure], [cooldown],
[sampler], [baseline], [interference], [report], and the adaptive form of `repetitions`. Each is strict (TOML is typed: "64" or true for a count is a mistake) and refuses
keys it does not know; SweepConfig (orchestrator/planning/config.py) holds them and checks them against each other.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.planning.config_errors import Mistakes, raise_if

# A week: longer waits and time limits are mistakes (and past what time.sleep and subprocess time-outs accept).
MAX_SECONDS = 7 * 24 * 3600.0
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS)]
MIN_SECONDS = 0.001  # a positive limit below a millisecond is a slip (1e-300), not a limit any run meets
PositiveSeconds = Annotated[float, Field(ge=MIN_SECONDS, le=MAX_SECONDS)]


class Section(BaseModel):
    # strict: TOML is typed, so "64" for a batch size or true for a count is a mistake, not something to coerce.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


# Far beyond any window a host measures in a day, and far below what a counter or a sample array can hold.
MAX_ITERATIONS = 10_000_000


MAX_REPETITIONS = 1000


class AdaptiveRepetitions(Section):
    """`repetitions = {min = 2, max = 10, stop = "verdict"}`: every cell gets `min` runs, then more, one round at a
    time, until the stopping rule (orchestrator/analysis/stopping.py) says its answer is known, or `max` runs."""

    # Two runs at least: a rule judges a spread, and one run has none.
    min: int = Field(ge=2, le=MAX_REPETITIONS)
    max: int = Field(ge=2, le=MAX_REPETITIONS)
    # precision: a cell stops once its median's interval is within `target` of it (relative half-width).
    # verdict: a runtime stops once it is separated from its group's leader; a group once its verdict is settled.
    stop: Literal["precision", "verdict"]
    target: float | None = Field(None, gt=0, lt=1)
    alpha: float = Field(0.05, gt=0, le=0.5)

    @model_validator(mode="after")
    def _consistent(self) -> AdaptiveRepetitions:
        lines = []
        if self.max <= self.min:
            lines.append(f"repetitions.max = {self.max}: not above repetitions.min = {self.min}; valid: a max above "
                         f"min (or repetitions = {self.min}, a fixed count)")
        if self.stop == "precision" and self.target is None:
            lines.append("repetitions.target: required with stop = 'precision'; valid: the relative half-width a "
                         "cell's interval must reach, above 0 and below 1, e.g. target = 0.02")
        if self.stop == "verdict" and self.target is not None:
            lines.append(f"repetitions.target = {self.target:g}: stop = 'verdict' has no target; valid: leave "
                         f"target out, or stop = 'precision'")
        raise_if(lines)
        return self


class Warmup(Section):
    iterations: int = Field(5, ge=0, le=MAX_ITERATIONS)
    seconds: Seconds = 0.0


class Measure(Section):
    min_iterations: int = Field(10, ge=1, le=MAX_ITERATIONS)
    min_seconds: Seconds = 0.0
    max_seconds: PositiveSeconds | None = None

    @model_validator(mode="after")
    def _window_fits(self) -> Measure:
        if self.max_seconds is not None and self.max_seconds < self.min_seconds:
            raise Mistakes([f"measure.max_seconds = {self.max_seconds:g}: below measure.min_seconds = "
                            f"{self.min_seconds:g}; valid: at least measure.min_seconds"])
        return self


class Cooldown(Section):
    # fixed: wait `seconds`. adaptive: wait at least `seconds`, then until every GPU is back within the margins of
    # its idle temperature and power, or until `max_seconds`.
    mode: Literal["fixed", "adaptive"] = "fixed"
    seconds: Seconds = 0.0
    max_seconds: PositiveSeconds = 300.0
    temperature_margin_c: float = Field(3.0, ge=0, le=100)
    # Power counts as idle within whichever is larger: this many watts, or this fraction of the idle power.
    power_margin_w: float = Field(10.0, ge=0, le=10_000)
    power_margin_fraction: float = Field(0.1, ge=0, le=10)


class SamplerSettings(Section):
    interval_ms: float = Field(50.0, ge=1, le=10_000)


class Baseline(Section):
    # 0 skips the idle baseline; dynamic energy is then reported as unavailable, not as raw energy.
    seconds: Seconds = 10.0
    # Re-measure idle between runs once this many minutes have passed since the last baseline (0: never).
    recheck_minutes: float = Field(0.0, ge=0, le=MAX_SECONDS / 60)


class InterferenceSettings(Section):
    """What counts as a busy host during a window, and what a flagged run becomes
    (orchestrator/measurement/interference.py measures, interference_policy.py decides)."""

    # flag: keep the run, flagged. remeasure: measure it again, at most max_remeasures more times, then keep the
    # last attempt flagged. abort: stop the sweep at the first flagged run (resume once the host is quiet).
    on_busy: Literal["flag", "remeasure", "abort"] = "flag"
    max_remeasures: int = Field(2, ge=1, le=10)
    # 10% of the machine's CPU capacity: a desktop's or a node's background (daemons, shells, monitoring) stays
    # well under 2%, while one busy core already counts 1/cores of it (12.5% on 8 cores, 50% on 2), and a process
    # that takes a core from a CPU run, or the host thread of a GPU run, moves its latency far beyond its spread.
    max_others_share: float = Field(0.10, gt=0, le=1)
    # 5% steal: an idle cloud vCPU sees ~0-1%; above a few percent the hypervisor is time-slicing this machine with
    # a neighbour, and latency percentiles stretch by about as much.
    max_steal_share: float = Field(0.05, gt=0, le=1)
    # Any other process on the run's GPUs shares its SMs, memory bandwidth and power (so its energy, too).
    gpu_others: bool = True
    # How often the host is looked at during a run (each look reads /proc/<pid>/stat of every process).
    interval_ms: float = Field(500.0, ge=20, le=60_000)


class ReportSettings(Section):
    # The user's own grid figures turn energy into carbon and cost; unset means not shown, never a default mix.
    grid_intensity_g_per_kwh: float | None = Field(None, gt=0, allow_inf_nan=False)
    pue: float | None = Field(None, ge=1, allow_inf_nan=False)  # facility / IT energy: at least 1
    price_per_kwh: float | None = Field(None, gt=0, allow_inf_nan=False)


def protocol_mistakes(cooldown: Cooldown | None, baseline: Baseline) -> list[str]:
    """What [cooldown] and [baseline] ask of each other: an adaptive cooldown and a baseline recheck need a
    baseline; a cooldown's limit is not below its minimum."""
    lines = []
    if cooldown is not None and cooldown.mode == "adaptive":
        if baseline.seconds <= 0:
            lines.append("cooldown.mode = 'adaptive' waits for the idle baseline: it needs baseline.seconds > 0")
        if cooldown.max_seconds < cooldown.seconds:
            lines.append(f"cooldown.max_seconds ({cooldown.max_seconds:g}) is below the minimum "
                         f"cooldown.seconds ({cooldown.seconds:g})")
    if baseline.recheck_minutes > 0 and baseline.seconds <= 0:
        lines.append("baseline.recheck_minutes re-measures the idle baseline: it needs baseline.seconds > 0")
    return lines


# Keys added after sweeps had been recorded: left out of the digest while at their defaults, so that a results
# directory written before them still resumes with the config that wrote it.
_ADDED_LATER = {
    "cooldown": ("mode", "max_seconds", "temperature_margin_c", "power_margin_w", "power_margin_fraction"),
    "baseline": ("recheck_minutes",),
}


def without_later_defaults(payload: dict) -> dict:
    """The dumped config without the keys added later while they are at their defaults (the digest's payload)."""
    sections = {"cooldown": Cooldown, "baseline": Baseline}
    for section, keys in _ADDED_LATER.items():
        fields = sections[section].model_fields
        payload[section] = {k: v for k, v in payload[section].items() if k not in keys or v != fields[k].default}
    return payload
