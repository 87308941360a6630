"""Planning: expand a sweep config into an ordered list of runs, and explain every cell that cannot run.

Pure functions of the config and of what the host offers, so the plan is reproducible and easy to test. A sweep's
own models come with the config (SweepConfig.user_model, model_spec), never from a global registry.
"""
from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from itertools import product
from typing import Any

from orchestrator.errors import UserError
from orchestrator.planning.config import SweepConfig
from orchestrator.planning.config_sections import AdaptiveRepetitions
from orchestrator.planning.generative import generative_refusal, kind_pairs
from orchestrator.planning.gpus import all_mig_reason
from orchestrator.planning.memory import estimate, oversized_reason
from orchestrator.planning.gpus import SHORT_WINDOW_S, GpuDescription
from orchestrator.planning.gpu_support import gpu_refusal
from orchestrator.planning.runtimes import Runtime, parse_runtime
from orchestrator.planning.user_models import runtime_refusal
from runners import cuda_binaries
from runners.clients import CLIENTS
from runners.protocol import UserModel
from runners.runtimes_table import cpu_precision_refusal, find


@dataclass(frozen=True)
class HostCapabilities:
    gpus: tuple[GpuDescription, ...] = ()
    gpu_reason: str = "no NVIDIA GPU found"  # why there is none, when there is none
    # The CPU's feature flags as the host reports them (runners.hostinfo.cpu_flags, kept in host.json); None: unknown.
    cpu_flags: tuple[str, ...] | None = None
    # The host's memory (bytes), for refusing batches whose inputs alone cannot fit; None: unknown, not checked.
    memory_bytes: int | None = None
    # The NVIDIA driver (nvmlSystemGetDriverVersion, "580.95.05") and the newest CUDA it runs ("13.0"): what each
    # CUDA image's runtime needs of it (orchestrator.planning.gpu_support). None: no driver, or it did not say.
    driver_version: str | None = None
    cuda_driver_version: str | None = None

    @property
    def gpu_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.gpus)


@dataclass(frozen=True)
class Cell:
    model: str
    batch_size: int
    runtime: str
    precision: str

    @property
    def key(self) -> str:
        return f"{self.model}|bs{self.batch_size}|{self.runtime}|{self.precision}"


@dataclass(frozen=True)
class PlannedRun:
    run_id: str
    index: int  # position in the run order
    repetition: int
    cell: Cell


@dataclass(frozen=True)
class SkippedCell:
    cell: Cell
    reason: str


@dataclass(frozen=True)
class Plan:
    config_name: str
    config_digest: str
    seed: int
    runs: tuple[PlannedRun, ...]
    skipped: tuple[SkippedCell, ...] = field(default=())
    # The validated config with every default filled in, for the report; the digest above is what resumes check.
    config: dict = field(default_factory=dict)
    # Each time repetitions were added to the recorded sweep: {"from": n, "to": m, "at": unix time}.
    extended: tuple[dict, ...] = ()
    # The model x runtime pairs of different kinds the config names (a classifier on a generative runtime), left
    # out of the cells: one line saying which and why (planning/generative.py); None when there are none.
    left_out: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict) -> Plan:
        runs = tuple(PlannedRun(r["run_id"], r["index"], r["repetition"], Cell(**r["cell"])) for r in data["runs"])
        skipped = tuple(SkippedCell(Cell(**s["cell"]), s["reason"]) for s in data["skipped"])
        return Plan(data["config_name"], data["config_digest"], data["seed"], runs, skipped, data.get("config") or {},
                    tuple(data.get("extended") or ()), data.get("left_out"))


def skip_reason(cell: Cell, host: HostCapabilities, user: UserModel | None = None,
                llm_config: Mapping[str, Any] | None = None) -> str | None:
    """Why the cell cannot run on this host (None: it can); `user`: the cell's user model (None: built in);
    `llm_config`: a generative model's config (ModelSpec.llm_config), for what its runtime's kernels refuse."""
    runtime = parse_runtime(cell.runtime)
    missing = runtime.not_implemented_reason()
    if missing:
        return missing
    unfit = runtime_refusal(user, runtime.framework, runtime.model_format, cell.model)
    if unfit:
        return unfit
    # A generative runtime's precisions are its own weight formats (int8, int4, llama.cpp's f16 on the CPU too),
    # made by its converter without calibration inputs: its row says which it measures, on which provider.
    if user is not None and cell.precision == "int8" and not runtime.generative:
        return (f"int8 quantizes the built-in models (their calibration inputs); user model {cell.model} is "
                f"measured at fp32 and fp16 in this version")
    if cell.precision == "fp16" and not runtime.needs_gpu and not runtime.generative:
        return "fp16 is measured on GPU providers only (CPU kernels emulate it)"
    # What the runtime cannot run at this precision on any host (int8 on cuda), before what this host lacks.
    family = find(runtime.framework, runtime.model_format)
    refusal = (family.precision_refusal(cell.precision, runtime.provider) if family else None) or \
        client_skip_reason(runtime, cell.precision, user)
    if refusal:
        return refusal
    if runtime.generative and llm_config is not None:
        refusal = generative_refusal(runtime.framework, cell.batch_size, llm_config)
        if refusal:
            return refusal
    if runtime.needs_gpu and not host.gpus:
        return f"provider {runtime.provider} needs an NVIDIA GPU: {host.gpu_reason}"
    if runtime.needs_gpu and all_mig_reason(host.gpus):
        return f"provider {runtime.provider} needs an NVIDIA GPU: {all_mig_reason(host.gpus)}"
    if not runtime.needs_gpu:
        return cpu_precision_refusal(cell.precision, host.cpu_flags)
    return tf32_refusal(cell.precision, host.gpus) or cuda_refusal(cell.runtime, host)


def client_skip_reason(runtime: Runtime, precision: str, user: UserModel | None) -> str | None:
    """Why the runtime's client (its id's @suffix) does not measure this cell: a precision it does not run, or a
    user's model, whose inputs a runner in another language cannot be handed yet; None where it does."""
    if runtime.client is None:
        return None
    client = CLIENTS[runtime.client]
    if precision not in client.precisions:
        return (f"the {client.language} client ({runtime.name}) measures {', '.join(client.precisions)} only; "
                f"{precision} is measured by {runtime.base_name}")
    if user is not None and not runtime.python_client:
        return (f"user model {user.name}: the {client.language} client runs the registry's models only in this "
                f"version (their inputs file is written from the registry's generators)")
    return None


def tf32_refusal(precision: str, gpus: tuple[GpuDescription, ...]) -> str | None:
    """Why a tf32 cell is not measured on these GPUs: TF32 tensor cores came with Ampere (compute capability 8.0);
    before it a tf32 cell would be an fp32 one under another name."""
    known = [g for g in gpus if g.compute_capability]
    if precision != "tf32" or not known or any(float(g.compute_capability) >= 8.0 for g in known):
        return None
    listed = ", ".join(f"{g.name} ({g.compute_capability})" for g in known)
    return f"tf32 needs a GPU of compute capability 8.0 (Ampere) or newer; this host has {listed}"


def cuda_refusal(runtime_name: str, host: HostCapabilities) -> str | None:
    """Why a GPU runtime's image cannot run on this host's GPUs or driver (its binaries' architectures, the CUDA
    it needs), as "<runtime>: <reason>"; None where it can, or where nothing is known."""
    runtime = parse_runtime(runtime_name)
    binaries = cuda_binaries.load().get(runtime.environment)
    why = gpu_refusal(binaries, host.gpus, host.driver_version, host.cuda_driver_version)
    return f"{runtime_name}: {why}" if why else None


def run_id_for(repetition: int, cell: Cell) -> str:
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{cell.model}-bs{cell.batch_size}-{cell.runtime}-{cell.precision}")
    return f"r{repetition:03d}-{slug}"


def oversized_cell_reason(cell: Cell, config: SweepConfig, host: HostCapabilities) -> str | None:
    """Why the cell's batch cannot fit in this host's (or, for a GPU runtime, its GPUs') memory; None: it may."""
    gpu_memory = [g.memory_bytes for g in host.gpus if getattr(g, "memory_bytes", None)]
    needs_gpu = parse_runtime(cell.runtime).needs_gpu
    needed = estimate(config.model_spec(cell.model), cell.batch_size, config.options_for(cell.model))
    return oversized_reason(needed, host.memory_bytes, min(gpu_memory) if needs_gpu and gpu_memory else None)


def plan_sweep(config: SweepConfig, host: HostCapabilities, skip_oversized: bool = False) -> Plan:
    """The plan; a cell whose batch cannot fit in memory is refused (UserError, one line per cell), or skipped with
    the reason when `skip_oversized`."""
    specs = {m: config.model_spec(m) for m in config.models}
    pairs, left_out = kind_pairs({m: spec.kind for m, spec in specs.items()}, config.runtimes)
    cells = [Cell(m, b, r, p)
             for m, b, r, p in product(config.models, config.batch_sizes, config.runtimes, config.precisions)
             if (m, r) in pairs]
    runnable, skipped, oversized = [], [], []
    for cell in cells:
        reason = skip_reason(cell, host, config.user_model(cell.model), specs[cell.model].llm_config)
        too_big = None if reason else oversized_cell_reason(cell, config, host)
        if reason:
            skipped.append(SkippedCell(cell, reason))
        elif too_big and skip_oversized:
            skipped.append(SkippedCell(cell, f"oversized: {too_big}"))
        elif too_big:
            oversized.append(f"batch_sizes: {cell.batch_size} for {cell.runtime}: {too_big}; valid: a smaller batch "
                             f"size, or --skip-oversized to plan the other cells")
        else:
            runnable.append(cell)
    if oversized:
        raise UserError("\n".join(f"{config.name}: {line}" for line in dict.fromkeys(oversized)))

    # Blocked randomisation: every repetition measures each cell once, in its own seeded order, so runtimes are
    # interleaved and slow drift (temperature, background load) spreads over all of them instead of one. An adaptive
    # sweep plans every repetition up to its max; the rounds it never needs are skipped as it runs (execution/rounds).
    runs = []
    for repetition in range(config.max_repetitions):
        order = list(runnable)
        random.Random(f"{config.seed}:{repetition}").shuffle(order)
        for cell in order:
            runs.append(PlannedRun(run_id_for(repetition, cell), len(runs), repetition, cell))
    return Plan(config.name, config.digest(), config.seed, tuple(runs), tuple(skipped),
                config.model_dump(mode="json"), left_out=left_out)


def adaptive_line(adaptive: AdaptiveRepetitions, plan: Plan) -> str:
    """What `greenrt plan` says of an adaptive sweep: the runs it measures at least and at most, and its rule."""
    cells = len({run.cell for run in plan.runs})
    rule = (f"until each cell's interval is within {adaptive.target:g} of its median" if adaptive.stop == "precision"
            else "while a runtime can still change its group's best-runtime verdict")
    return (f"adaptive: {adaptive.min * cells} to {adaptive.max * cells} runs ({cells} cells, {adaptive.min} to "
            f"{adaptive.max} repetitions each: stop = {adaptive.stop!r}, {rule}, alpha {adaptive.alpha:g}); the table "
            f"above lists every run up to max, in the order they would run")


def empty_plan_refusal(plan: Plan) -> str | None:
    """One line saying why a plan with no run would measure nothing (each skip reason once, with its cells); None
    where it plans runs. A sweep refuses such a plan before anything is written."""
    if plan.runs:
        return None
    if not plan.skipped:
        why = plan.left_out or "it names no cell"
        return f"config {plan.config_name!r} plans no run: {why}; nothing was written"
    by_reason: dict[str, list[str]] = {}
    for s in plan.skipped:
        by_reason.setdefault(s.reason, []).append(f"{s.cell.model} bs{s.cell.batch_size} {s.cell.runtime} "
                                                   f"{s.cell.precision}")
    parts = [f"{', '.join(cells[:3])}{f' and {len(cells) - 3} more' if len(cells) > 3 else ''}: {reason}"
             for reason, cells in by_reason.items()]
    return (f"config {plan.config_name!r} plans no run: all {len(plan.skipped)} cells are skipped on this host "
            f"({'; '.join(parts)}){'; ' + plan.left_out if plan.left_out else ''}); nothing was written")


def repetitions_change(recorded: Plan, new: Plan) -> tuple[int, int] | None:
    """(recorded, new) repetitions when `new` is the recorded sweep with only its repetitions changed; else None.

    Blocked randomisation orders each repetition by its own seed, so adding repetitions appends runs and leaves
    every recorded run's id and place as it was: more repetitions extend a sweep, they do not start another one.
    """
    if not recorded.config or not new.config:
        return None  # a plan written before plans kept their config: which sweep it was is only its digest
    before, after = recorded.config.get("repetitions"), new.config.get("repetitions")
    if not isinstance(before, int) or not isinstance(after, int) or before == after:
        return None
    try:
        same_but_repetitions = SweepConfig.model_validate({**recorded.config, "repetitions": after})
    except ValueError:
        return None
    if same_but_repetitions.digest() != new.config_digest or recorded.skipped != new.skipped:
        return None
    shorter, longer = (recorded.runs, new.runs) if after > before else (new.runs, recorded.runs)
    return (before, after) if longer[:len(shorter)] == shorter else None


def protocol_warnings(config: SweepConfig) -> list[str]:
    """Settings that are valid but weaken the measurement: said at plan time, before hours of runs."""
    warnings = []
    gpu = [r for r in config.runtimes if parse_runtime(r).needs_gpu]
    if gpu and config.measure.min_seconds < SHORT_WINDOW_S:
        warnings.append(
            f"measure.min_seconds = {config.measure.min_seconds:g} s is shorter than {SHORT_WINDOW_S:g} s with GPU "
            f"runtimes ({', '.join(gpu)}): on Ampere and newer GPUs NVML's power reading is a 1-second average, so "
            f"power samples in short windows lag the load; such runs are flagged (energy still comes from the "
            f"total-energy counter where the GPU has one)")
    return warnings
