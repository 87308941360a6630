"""How long a sweep will take, before it starts: preparation, the idle baseline, and per run its load, warm-up,
window, the rest of the run (start-up, results, accounting) and the cooldown after it; then the tables and report.

Pure: the config, the cells the plan holds, what preparation still has to make (`PrepItem`, from the caches) and
the measured phases of earlier runs on this host (`MeasuredRun`, from results folders) go in; a `TimeBudget` with
each part's range and where it comes from comes out. A part is "measured on this host" where earlier runs of the
same cell exist (or else the most alike: CHAINS), "config budget" where the config fixes it (a fixed cooldown, the
baseline, a window of at least min_seconds), and a "guess" where neither says (a model's load time on a host that
never ran it, an environment never built): the guesses are the constants below, said as guesses wherever shown.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace
from statistics import median
from typing import Any, Iterable, Sequence

from orchestrator.planning.config import SweepConfig
from orchestrator.planning.model_costs import CPU_GFLOPS_PER_CORE, cpu_latency_guess, export_guess, sized_model_in
from runners.clients import split_client

CONFIG, GUESS = "config budget", "guess"
# Guesses where neither the config nor a measurement says. Measured on a quiet 2-core VM (configs/quick.toml from a
# fresh clone, 2026-12-07): a venv from pinned wheels with pip's cache took 9 to 37 s; a native framework's import
# and model build 2.0 to 4.9 s (PyTorch, TensorFlow, MXNet; 22-56 s on the same VM under a load of 8-14), a
# converted model's session 0.1 to 1.0 s (ONNX Runtime); the rest of a run (the runner's start-up and exit,
# writing its result, accounting) 0.7 s in the median; the tables and report 25 s. A window's and a warm-up's
# length follow the model's operations where model_costs.py counts them, else the flat guesses below.
LOAD_GUESS_S = {"native": 3.5, "converted": 0.5}
OTHER_GUESS_S = {"native": 1.0, "converted": 0.7}
WINDOW_GUESS_S = 1.0  # measure.min_seconds = 0 and no operation count: min_iterations inferences of unknown latency
WARMUP_GUESS_S = 0.5  # warmup.seconds = 0 and no operation count: warmup.iterations inferences of unknown latency
ENVIRONMENT_GUESS_S = 40.0
EXPORT_GUESS_S = 60.0  # a model greenrt has no size for (model_costs.export_guess otherwise)
INT8_GUESS_S = 60.0
REFERENCE_GUESS_S = 20.0  # a model without an operation count; else its native load, one inference and the rest
CHECK_GUESS_S = 3.0
FINISH_GUESS_S = 30.0  # greenrt's start-up and probe, tables and report
OPERATIONS_GUESS = f"{GUESS} from the model's operations at {CPU_GFLOPS_PER_CORE:g} GFLOP/s per core"
SIZE_GUESS = f"{GUESS} from the model's size"
PHASES = ("load", "warm-up", "window", "other")


def measured(n: int) -> str:
    return f"measured on this host, {n} run{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class MeasuredRun:
    """One earlier run's phases in seconds (None: not recorded); made from a run record by results/run_times.py."""

    cell: str  # planner.Cell.key: model|bs|runtime|precision
    runtime: str
    ok: bool
    load: float | None = None
    warmup: float | None = None
    window: float | None = None
    other: float | None = None  # the run's wall time less load, warm-up and window
    latency: float | None = None  # seconds per inference in its window (window / iterations)
    first_inference: float | None = None  # its first inference (engine builds, compiles), inside warm-up
    cooldown_before: float | None = None  # the cooldown that preceded it


@dataclass(frozen=True)
class PrepItem:
    """One thing preparation needs: an environment, an export, an int8 copy or reference outputs; whether the cache
    holds it, and what making it took where that was measured (an export's own seconds)."""

    kind: str  # environment | export | int8 | reference
    name: str
    cached: bool
    seconds: float | None = None
    cell: str | None = None  # a reference run's cell (its framework's native CPU run), whose earlier runs say its time


@dataclass(frozen=True)
class Part:
    name: str
    low: float
    high: float
    source: str

    def __add__(self, other: Part) -> Part:
        return Part(self.name, self.low + other.low, self.high + other.high, self.source)


@dataclass(frozen=True)
class TimeBudget:
    """The estimate: each part's range (low: every cell stops at its minimum of runs; high: at its maximum), the
    total, and where each figure comes from."""

    runs_low: int
    runs_high: int
    preparation: tuple[Part, ...]
    baseline: Part
    per_run: tuple[Part, ...]  # load, warm-up, window, other, cooldown: each summed over the runs
    finish: Part

    @property
    def parts(self) -> tuple[Part, ...]:
        return (*self.preparation, self.baseline, *self.per_run, self.finish)

    @property
    def low(self) -> float:
        return sum(p.low for p in self.parts)

    @property
    def high(self) -> float:
        return sum(p.high for p in self.parts)

    @property
    def run_seconds(self) -> float:
        """One run's mean seconds, its cooldown included (the low end's): what a sweep's ETA starts from."""
        return sum(p.low for p in self.per_run) / self.runs_low if self.runs_low else 0.0

    @property
    def guessed(self) -> list[str]:
        return [p.name for p in self.parts if GUESS in p.source]

    def to_dict(self) -> dict[str, Any]:
        return {"low_s": round(self.low, 1), "high_s": round(self.high, 1), "runs_low": self.runs_low,
                "runs_high": self.runs_high, "parts": [{"name": p.name, "low_s": round(p.low, 1),
                                                        "high_s": round(p.high, 1), "source": p.source}
                                                       for p in self.parts]}


def repetition_range(repetitions: Any) -> tuple[int, int]:
    """(min, max) runs per cell: a fixed count, or an adaptive table's bounds (an object or a mapping with
    min_runs/max_runs or min/max)."""
    if isinstance(repetitions, int):
        return repetitions, repetitions
    get = repetitions.get if isinstance(repetitions, dict) else lambda k: getattr(repetitions, k, None)
    low = next((v for v in (get("min_runs"), get("min")) if v is not None), None)
    high = next((v for v in (get("max_runs"), get("max")) if v is not None), low)
    if low is None:
        raise ValueError(f"repetitions {repetitions!r}: neither a count nor a table with min and max")
    return int(low), int(high)


def _range_source(cells: dict[str, int], runs: int) -> str:
    """Where a phase's figure comes from over the cells: cells per source ("measured" counts the runs it used)."""
    said = {"measured": measured(runs)}
    if len(cells) == 1:
        return said.get(next(iter(cells)), next(iter(cells)))
    return ", ".join(f"{n} cell{'' if n == 1 else 's'} {said.get(source, source)}"
                     for source, n in sorted(cells.items(), key=lambda kv: -kv[1]))


def _by(runs: Iterable[MeasuredRun], key: str) -> dict[str, list[MeasuredRun]]:
    grouped: dict[str, list[MeasuredRun]] = defaultdict(list)
    for run in runs:
        if run.ok:
            grouped[getattr(run, key)].append(run)
    return grouped


# The earlier runs that stand in for a cell never measured, per phase, most alike first: a window's and a warm-up's
# length follow the latency of the model and batch (another runtime's, else the same model's at another batch,
# scaled by the batch size, its own runtime's first); a load and the rest of a run follow the runtime (its import)
# and the model.
CHAINS = {"window": ("cell", "model-batch", "model"), "warm-up": ("cell", "model-batch", "model"),
          "load": ("cell", "runtime-model", "runtime"), "other": ("cell", "runtime-model", "runtime")}


def _likeness(cell: str) -> dict[str, str]:
    model, batch, runtime, _ = cell.split("|")
    return {"cell": cell, "model-batch": f"{model}|{batch}", "model": model, "runtime-model": f"{runtime}|{model}",
            "runtime": runtime}


def _groups(history: Iterable[MeasuredRun]) -> dict[tuple[str, str], list[MeasuredRun]]:
    grouped: dict[tuple[str, str], list[MeasuredRun]] = defaultdict(list)
    for run in history:
        if run.ok:
            for kind, key in _likeness(run.cell).items():
                grouped[(kind, key)].append(run)
    return grouped


def _batch(cell: str) -> int:
    return int(cell.split("|")[1].removeprefix("bs"))


def _scaled(runs: list[MeasuredRun], cell: str) -> list[MeasuredRun]:
    """The same model's runs at other batch sizes, their latency scaled to this cell's batch (a CPU's or GPU's
    time per batch grows about as the batch does); this cell's runtime's own first, where it has some."""
    runtime = _likeness(cell)["runtime"]
    own = [r for r in runs if r.runtime == runtime and r.latency is not None]
    chosen = own or [r for r in runs if r.latency is not None]
    batch = _batch(cell)
    return [replace(r, latency=r.latency * batch / _batch(r.cell),
                    first_inference=r.first_inference * batch / _batch(r.cell) if r.first_inference else None)
            for r in chosen if r.latency is not None]


def _earlier(groups: dict[tuple[str, str], list[MeasuredRun]], cell: str, phase: str) -> list[MeasuredRun]:
    keys = _likeness(cell)
    for kind in CHAINS[phase]:
        runs = groups.get((kind, keys[kind]))
        if runs:
            return _scaled(runs, cell) if kind == "model" else runs
    return []


def _phase(cfg: SweepConfig, phase: str, cell: str, runs: Sequence[MeasuredRun],
           cores: int | None = None) -> tuple[float, float, set[int], str]:
    """(low, high, the runs used (ids), source) of one run's phase: the median of the earlier runs of its cell (or
    runtime), else the config's budget at the latency the model's operations suggest on `cores` CPU cores, else
    the config's budget, else a guess."""
    used = {id(r): v for r in runs if (v := _again(cfg, phase, r)) is not None}
    if used:
        figure = median(used.values())
        return figure, figure, set(used), "measured"
    latency = _latency_guess(cfg, cell, cores)
    if latency is not None and phase in ("window", "warm-up"):
        figure = _again(cfg, phase, MeasuredRun(cell, "", True, latency=latency, first_inference=latency))
        return figure, figure, set(), OPERATIONS_GUESS
    if phase == "window" and cfg.measure.min_seconds > 0:
        return cfg.measure.min_seconds, cfg.measure.min_seconds, set(), CONFIG
    if phase == "warm-up" and cfg.warmup.seconds > 0:
        return cfg.warmup.seconds, cfg.warmup.seconds, set(), CONFIG
    kind = "native" if "/native/" in cell else "converted"
    guess = {"load": LOAD_GUESS_S[kind], "other": OTHER_GUESS_S[kind], "window": WINDOW_GUESS_S}.get(
        phase, WARMUP_GUESS_S)
    return guess, guess, set(), GUESS


def _latency_guess(cfg: SweepConfig, cell: str, cores: int | None) -> float | None:
    """A CPU cell's seconds per batch from its model's operations (model_costs.py); None on a GPU or where the
    model has no count."""
    model, batch, runtime, _ = cell.split("|")
    if split_client(runtime)[0].rsplit("/", 1)[-1] != "cpu":  # a client's suffix (cpu@node) runs on the CPU too
        return None
    return cpu_latency_guess(model, _batch(cell), cores, cfg.model_options.get(model))


def _again(cfg: SweepConfig, phase: str, run: MeasuredRun) -> float | None:
    """What an earlier run's phase would take under this config: its window and warm-up are the config's seconds
    or iterations at the latency it measured, whichever is longer (the earlier config may have asked otherwise)."""
    if phase == "window" and run.latency is not None:
        window = max(cfg.measure.min_seconds, cfg.measure.min_iterations * run.latency)
        return min(window, cfg.measure.max_seconds) if cfg.measure.max_seconds else window
    if phase == "warm-up" and run.latency is not None and run.first_inference is not None:
        iterations = run.first_inference + max(cfg.warmup.iterations - 1, 0) * run.latency
        return max(cfg.warmup.seconds, iterations) if cfg.warmup.iterations else cfg.warmup.seconds
    return getattr(run, {"warm-up": "warmup"}.get(phase, phase))


def _cooldown(cfg: SweepConfig, history: Sequence[MeasuredRun], gpus: bool) -> tuple[float, float, str]:
    """One cooldown's (low, high, source): fixed ones are the config's, and adaptive ones on a host without GPUs
    to watch (they wait their minimum); else what they took here, else anywhere between their minimum and limit."""
    cooldown = cfg.cooldown
    if cooldown.mode == "fixed":
        return cooldown.seconds, cooldown.seconds, CONFIG
    if not gpus:
        return cooldown.seconds, cooldown.seconds, f"{CONFIG} (adaptive, no GPU to watch: its minimum)"
    values = [r.cooldown_before for r in history if r.cooldown_before is not None]
    if values:
        figure = max(median(values), cooldown.seconds)
        return figure, figure, measured(len(values))
    return cooldown.seconds, cooldown.max_seconds, f"{CONFIG} (minimum to limit)"


def _reference_seconds(item: PrepItem, by_cell: dict[str, list[MeasuredRun]],
                       by_runtime: dict[str, list[MeasuredRun]]) -> float | None:
    """A reference run (one inference, no warm-up) from its cell's earlier native runs: load, one inference and
    the rest of the run; else those of its runtime (the same framework on another model)."""
    if item.seconds is not None or item.cell is None:
        return item.seconds
    runtime = item.cell.split("|")[2]
    runs = by_cell.get(item.cell) or by_runtime.get(runtime, [])
    figures = [r.load + (r.first_inference or r.latency or 0.0) + r.other for r in runs
               if r.load is not None and r.other is not None]
    return median(figures) if figures else None


def _prep_guess(cfg: SweepConfig | None, item: PrepItem, cores: int | None) -> tuple[float, str]:
    """(seconds, source) of a preparation item nothing measured: an export from its model's parameters, a reference
    run from a native load, one inference at the model's operations and the rest; else the flat guess."""
    if item.kind == "export":
        model = sized_model_in(item.name)
        seconds = export_guess(model) if model is not None else None
        if seconds is not None:
            return seconds, SIZE_GUESS
    if item.kind == "reference" and item.cell is not None and cfg is not None:
        latency = _latency_guess(cfg, item.cell, cores)
        if latency is not None:
            return LOAD_GUESS_S["native"] + latency + OTHER_GUESS_S["native"], OPERATIONS_GUESS
    guesses = {"environment": ENVIRONMENT_GUESS_S, "int8": INT8_GUESS_S, "reference": REFERENCE_GUESS_S}
    return guesses.get(item.kind, EXPORT_GUESS_S), GUESS


def _preparation(items: Sequence[PrepItem], history: Sequence[MeasuredRun] = (), cfg: SweepConfig | None = None,
                 cores: int | None = None) -> tuple[Part, ...]:
    names = {"environment": "environments to build", "export": "exports", "int8": "int8 copies",
             "reference": "reference outputs"}
    parts = []
    by_cell, by_runtime = _by(history, "cell"), _by(history, "runtime")
    # An environment never built here takes about what the others took to build here.
    builds = [i.seconds for i in items if i.kind == "environment" and i.seconds is not None]
    for kind, name in names.items():
        todo = [i for i in items if i.kind == kind and not i.cached]
        if not todo:
            continue
        if kind == "environment" and builds:
            todo = [i if i.seconds is not None else replace(i, seconds=median(builds)) for i in todo]
        measured_here = [(i, _reference_seconds(i, by_cell, by_runtime)) for i in todo]
        known = [s for _, s in measured_here if s is not None]
        guesses = [_prep_guess(cfg, i, cores) for i, s in measured_here if s is None]
        seconds = sum(known) + sum(g for g, _ in guesses)
        labels = {label for _, label in guesses}
        said = labels.pop() if len(labels) == 1 else GUESS
        source = ("measured on this host" if not guesses else said if not known
                  else f"{len(known)} measured on this host, {len(guesses)} {said}")
        parts.append(Part(f"{name} ({len(todo)})", seconds, seconds, source))
    environments = sum(1 for i in items if i.kind == "environment")
    if environments:  # each environment is looked at and answers a version probe, even when all is cached
        cached = sum(1 for i in items if i.cached)
        parts.append(Part(f"checks ({environments} environments, {cached} cached items)",
                          environments * CHECK_GUESS_S, environments * CHECK_GUESS_S, GUESS))
    return tuple(parts)


def estimate(cfg: SweepConfig, cells: Sequence[str], history: Sequence[MeasuredRun] = (),
             prep: Sequence[PrepItem] = (), gpus: bool = True, sensors: bool = True,
             cores: int | None = None) -> TimeBudget:
    """The sweep's time budget. cells: the plan's distinct cell keys (one each, whatever the repetitions); a cell
    never measured borrows the most alike earlier runs (CHAINS), else its model's operations on `cores` CPU cores
    (model_costs.py); gpus: whether the host has GPUs an adaptive cooldown watches; sensors: whether it has an
    energy sensor (else no baseline)."""
    reps_low, reps_high = repetition_range(cfg.repetitions)
    groups = _groups(history)
    totals = {phase: [0.0, 0.0] for phase in PHASES}
    sources: dict[str, dict[str, int]] = {phase: defaultdict(int) for phase in PHASES}
    used: dict[str, set[int]] = {phase: set() for phase in PHASES}  # the earlier runs each phase's figures used
    for cell in cells:
        for phase in PHASES:
            low, high, n, source = _phase(cfg, phase, cell, _earlier(groups, cell, phase), cores)
            totals[phase][0] += low * reps_low
            totals[phase][1] += high * reps_high
            sources[phase][source] += 1
            used[phase] |= n
    runs_low, runs_high = len(cells) * reps_low, len(cells) * reps_high
    one_low, one_high, cool_source = _cooldown(cfg, history, gpus)
    per_run = [Part(phase, *totals[phase], _range_source(sources[phase], len(used[phase]))) for phase in PHASES]
    per_run.append(Part("cooldown", one_low * max(runs_low - 1, 0), one_high * max(runs_high - 1, 0), cool_source))
    preparation = _preparation(prep, history, cfg, cores)
    baseline = _baseline(cfg, sum(p.low for p in per_run), sum(p.high for p in per_run), sensors)
    return TimeBudget(runs_low, runs_high, preparation, baseline, tuple(per_run),
                      Part("start-up, tables and report", FINISH_GUESS_S, FINISH_GUESS_S, GUESS))


def _baseline(cfg: SweepConfig, runs_low: float, runs_high: float, sensors: bool) -> Part:
    """The idle baseline before the first run, and again every recheck_minutes of runs (none without a sensor)."""
    seconds, every = cfg.baseline.seconds, cfg.baseline.recheck_minutes * 60
    if seconds <= 0:
        return Part("idle baseline", 0.0, 0.0, f"{CONFIG} (off)")
    if not sensors:
        return Part("idle baseline", 0.0, 0.0, "no energy sensor here: not measured")
    low, high = (seconds * (1 + (math.floor(t / every) if every > 0 else 0)) for t in (runs_low, runs_high))
    again = f", again every {cfg.baseline.recheck_minutes:g} min" if every > 0 else ""
    return Part("idle baseline", low, high, f"{CONFIG} ({seconds:g} s{again})")


def clock(seconds: float) -> str:
    """1 h 05 min, 12 min 30 s, 45 s: a duration as people read it."""
    seconds = max(seconds, 0.0)
    if seconds >= 3600:
        hours, rest = divmod(round(seconds / 60), 60)
        return f"{hours} h {rest:02d} min"
    if seconds >= 60:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest:02d} s"
    return f"{seconds:.0f} s"


def span(low: float, high: float) -> str:
    return clock(low) if math.isclose(low, high, rel_tol=0.005, abs_tol=0.5) else f"{clock(low)} to {clock(high)}"
