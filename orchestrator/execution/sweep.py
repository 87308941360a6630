"""One sweep from plan to journal: the launcher it uses, the lock, preparation, baseline, the runs, the cooldowns.

The loop only sequences: what a run needs is made by preparation.py, each run's complete record by run.py, the
baseline and cooldowns by measurement_protocol.py, and the guard (guard.py) journals each record as it is.

The CLI only parses and presents: it hands a SweepSettings and a SweepView (the progress of the runs) to
`run_sweep`, and finishes the results directory afterwards (report/finish.py). Every line of the sweep's story goes
to this module's logger (and the rooms' below it), which the CLI shows on the terminal.
"""
from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Optional, Protocol

from orchestrator import host
from orchestrator.analysis.client_fidelity import client_digests, python_client_of
from orchestrator.errors import UserError
from orchestrator.execution.artifacts import ArtifactCache
from orchestrator.execution.busy_host import BUSY_EXIT, BusyHostPolicy
from orchestrator.execution.guard import SweepGuard, SweepStopped
from orchestrator.execution.launchers.base import Launcher
from orchestrator.execution.launchers.choice import choose_launcher
from orchestrator.execution.launchers.docker import DockerLauncher
from orchestrator.execution.launchers.local import LocalLauncher
from orchestrator.execution.measurement_protocol import MeasurementProtocol
from orchestrator.execution.preparation import Preparation
from orchestrator.execution.rounds import RunSchedule
from orchestrator.execution.run import RunExecutor
from orchestrator.measurement.baseline import describe_baseline
from orchestrator.planning.gpus import (ALL_GPUS, GpuDescription, GpuSelectionError, assign_gpus, gpus_per_run_refusal,
                                        mig_note, select_gpus)
from orchestrator.measurement.probe import Measurement
from orchestrator.planning.config import SweepConfig
from orchestrator.planning.user_model_checks import hf_model_mistakes
from orchestrator.planning.planner import (HostCapabilities, Plan, PlannedRun, empty_plan_refusal, plan_sweep,
                                          protocol_warnings)
from orchestrator.planning.runtimes import parse_runtime
from orchestrator.provisioning.environments import EnvironmentManager
from orchestrator.provisioning.images import ImageManager, docker_client
from orchestrator.provisioning.interpreters import interpreter_refusal
from orchestrator.provisioning.transformers_probe import HF_ENVIRONMENT
from orchestrator.results.record import RunRecord
from orchestrator.results.store import ResultsDir
from orchestrator.scheduling.sharded import begin_shard, end_shard
from orchestrator.scheduling.shards import ShardSpec, policy_for


logger = logging.getLogger(__name__)


class RunProgress(Protocol):
    def starting(self, run: PlannedRun) -> None: ...
    def finished(self, run: PlannedRun, record: RunRecord) -> None: ...


class SweepView(Protocol):
    """Where the progress of a sweep's runs goes (its lines, rich markup allowed, go to the logger)."""

    def runs(self, total: int) -> AbstractContextManager[RunProgress]: ...


@dataclass(frozen=True)
class SweepSettings:
    config: SweepConfig
    out: Path
    launcher: str = "auto"
    python: Optional[str] = None
    gpus: str = ALL_GPUS
    shard: Optional[ShardSpec] = None
    shard_policy: Optional[str] = None  # None: by-repetition, by-group for an adaptive sweep (scheduling/shards.py)
    fresh: bool = False
    skip_oversized: bool = False  # plan cells whose batch cannot fit in memory as skipped, instead of refusing


@dataclass(frozen=True)
class SweepOutcome:
    results: ResultsDir
    ok: int
    failed: int
    sharded: bool


def pending_runs(plan: Plan, results: ResultsDir) -> list[PlannedRun]:
    """The plan's runs the journal does not hold yet (all of them in a new results directory)."""
    recorded = results.recorded_run_ids()
    return [run for run in plan.runs if run.run_id not in recorded]


def needed_environments(plan: Plan) -> set[str]:
    """Each planned run's environment, and the source frameworks' (exports and reference outputs run there)."""
    needed = set()
    for run in plan.runs:
        runtime = parse_runtime(run.cell.runtime)
        needed |= {runtime.environment, *([runtime.source_framework] if runtime.source_framework else [])}
    return needed


def client_fidelity_lines(plan: Plan, results: ResultsDir) -> list[str]:
    """Whether each non-Python client's outputs were the Python client's bytes (analysis/client_fidelity.py), over
    the journal so far; nothing read where the plan has no such client."""
    if not any(python_client_of(run.cell.runtime) for run in plan.runs):
        return []
    records, _ = results.records()
    return [c.line for c in client_digests(
        {"model": r.model, "batch_size": r.batch_size, "precision": r.precision, "runtime": r.runtime,
         "status": r.status, "output_sha256": ((r.result or {}).get("output_digest") or {}).get("sha256")}
        for r in records)]


def run_gpus(spec: str, measurement: Measurement) -> tuple[GpuDescription, ...]:
    """The GPUs --gpus names, checked against what NVML sees before anything is written."""
    if not measurement.gpus:
        if spec.strip() != ALL_GPUS:
            nvml = next((s.reason for s in measurement.statuses if s.name == "nvml"), "NVML not probed")
            raise UserError(f"--gpus {spec!r}: NVML sees no GPU on this host ({nvml}); valid: {ALL_GPUS}")
        return ()
    try:
        return select_gpus(spec, measurement.gpus)
    except GpuSelectionError as exc:
        raise UserError(str(exc)) from None


def selected_capabilities(measurement: Measurement, gpus: tuple[GpuDescription, ...]) -> HostCapabilities:
    """The host as the planner should see it for this sweep: only the GPUs --gpus selects (all where NVML sees none)."""
    caps = measurement.capabilities
    return replace(caps, gpus=gpus) if gpus else caps


def refuse_ignored_interpreters(requested: str, environments: set[str], python: Optional[str],
                                interpreters: Mapping[str, str]) -> list[str]:
    """The config's interpreters for this sweep's environments; a UserError where the launcher would ignore them."""
    named = sorted(set(interpreters) & set(environments))
    if python and requested == "docker":
        raise UserError("--python runs runtimes in an existing interpreter: it needs --launcher local (or auto)")
    if named and requested == "docker":
        raise UserError(f"interpreters.{named[0]} = {interpreters[named[0]]!r}: the config runs "
                        f"{', '.join(named)} in an existing interpreter, which --launcher docker would ignore; "
                        f"valid: --launcher local or auto (auto then runs locally), or leave [interpreters] out")
    return named


def launcher_choice(requested: str, environments: set[str], python: Optional[str],
                    interpreters: Mapping[str, str] = {}) -> tuple[str, str, Optional[ImageManager]]:
    """(launcher, why, the image manager when Docker answered): what a sweep would use, nothing started."""
    named = refuse_ignored_interpreters(requested, environments, python, interpreters)
    if named and requested == "auto":  # never run elsewhere than where the config says
        return "local", f"the config names interpreters for {', '.join(named)} ([interpreters])", None
    requested = "local" if python and requested == "auto" else requested
    engine_problem, states, images = None, {}, None
    if requested != "local":
        try:
            images = ImageManager(docker_client())
            states = {env: images.state(env).state for env in environments}
        except UserError as exc:
            if requested == "docker":
                raise
            engine_problem = str(exc).split(";")[0]
    absent = sorted(env for env, state in states.items() if state == "absent")
    if requested == "docker" and absent:  # refused here, before a results folder exists, not run by run
        raise UserError(f"--launcher docker: no image of {', '.join(absent)} on this engine; build it "
                        f"(`greenrt images build {absent[0]}`, or `make cpu-images`) or use --launcher local or auto")
    name, why = choose_launcher(requested, engine_problem, states, environments)
    return name, why, images


def make_launcher(requested: str, environments: set[str], python: Optional[str], cfg: SweepConfig,
                  gpus: tuple[GpuDescription, ...],
                  choice: Optional[tuple[str, str, Optional[ImageManager]]] = None) -> Launcher:
    """The launcher `choice` (launcher_choice's answer, made before anything was written) names, or chosen now."""
    name, why, images = choice or launcher_choice(requested, environments, python, cfg.interpreters)
    logger.info(f"launcher: [bold]{name}[/bold] ({why})")
    given = assign_gpus(gpus, cfg.gpus_per_run)
    if given:
        others = [g for g in gpus if g not in given]
        logger.info(f"each GPU run is given {', '.join(f'{g.label()} ({g.uuid or g.pci_bus_id})' for g in given)} "
                    f"(gpus_per_run = {cfg.gpus_per_run})"
                    + (f"; {', '.join(g.channel for g in others)} sampled beside it, not charged to it" if others else ""))
    for gpu in gpus:
        if gpu.mig_enabled:
            logger.info(f"[yellow]{mig_note(gpu)}[/yellow]")
    if name == "docker":
        return DockerLauncher(images, build=images.rebuild)
    return LocalLauncher(EnvironmentManager(cfg.interpreters, python))


def refuse_python(python: Optional[str], plan: Plan, cfg: SweepConfig) -> None:
    """A UserError where --python does not start as a Python 3, or lacks the framework of an environment it would
    run (those the config's [interpreters] do not name), or its transformers does not know an hf user model."""
    if not python:
        return
    environments = tuple(sorted(needed_environments(plan) - set(cfg.interpreters)))
    refusal = interpreter_refusal(python, environments)
    if refusal:
        raise UserError(f"--python {python!r}: {refusal}; valid: a Python 3 interpreter with the runtimes' packages "
                        f"(or --launcher auto without --python)")
    if HF_ENVIRONMENT not in cfg.interpreters:  # --python builds the hf user models: judge them by its transformers
        mistakes = hf_model_mistakes(cfg.user_models, cfg.interpreters, python)
        if mistakes:
            raise UserError("\n".join(mistakes))


def _measure_one(run: PlannedRun, progress: RunProgress, counts: tuple[int, int], runs: RunExecutor,
                 protocol: MeasurementProtocol, busy: BusyHostPolicy, guard: SweepGuard,
                 results: ResultsDir) -> tuple[int, int]:
    """Measure and journal one run; (ok, failed) counted on."""
    progress.starting(run)
    rechecked = protocol.recheck_baseline()
    if rechecked is not None:
        logger.info(f"idle baseline re-measured: {describe_baseline(rechecked)}")
    # [interference].on_busy: a run measured on a busy host is kept flagged, measured again, or journaled before
    # the sweep stops (execution/busy_host.py)
    measured = busy.measure(lambda: guard.execute(runs, run), protocol.cooldown)
    record = measured.record
    guard.append(results, record)
    if measured.stop:
        raise SweepStopped(f"{measured.stop}; every finished run is in {results.journal_path}: "
                           f"`greenrt report {results.root}` writes the tables now", BUSY_EXIT)
    progress.finished(run, record)
    ok, failed = counts
    return (ok + 1, failed) if record.ok else (ok, failed + 1)


def run_sweep(settings: SweepSettings, measurement: Measurement, view: SweepView) -> SweepOutcome:
    """Measure every pending run of the plan into settings.out (resuming what is there); the guard turns a signal
    or a full disk into one stop line and the CLI's exit status."""
    cfg, out, shard = settings.config, settings.out, settings.shard
    gpus = run_gpus(settings.gpus, measurement)
    # Planned against the GPUs --gpus selects: a cell none of them can run (all in MIG mode) is skipped, with why.
    the_plan = plan_sweep(cfg, selected_capabilities(measurement, gpus), settings.skip_oversized)
    refusal = gpus_per_run_refusal(gpus, cfg.gpus_per_run)
    if refusal and any(parse_runtime(r.cell.runtime).needs_gpu for r in the_plan.runs):
        raise UserError(refusal)
    # Refused before the results folder is made: an interpreter that does not run, one the launcher would ignore.
    refuse_python(settings.python, the_plan, cfg)
    empty = empty_plan_refusal(the_plan)
    if empty:
        raise UserError(empty)
    # The launcher's own refusals (interpreters it would ignore, no Docker engine, an image absent) come here too.
    choice = launcher_choice(settings.launcher, needed_environments(the_plan), settings.python, cfg.interpreters)
    ok = failed = 0
    # One sweep per host (the lock), a clean stop on SIGINT/SIGTERM or a full disk: orchestrator/execution/guard.py.
    with SweepGuard(out) as guard:
        results = ResultsDir(out, shard=shard.index if shard else None)
        if settings.fresh and results.plan_path.exists():
            logger.info(f"--fresh: the results in {out} were moved to {results.set_aside()}")
        extended = results.open_for(the_plan)
        if extended:
            logger.info(extended)
        if shard:
            the_plan = begin_shard(results, the_plan, shard, policy_for(settings.shard_policy, cfg.adaptive_table))
        if not results.host_path.exists():
            results.write_json(results.host_path, host.describe(measurement.statuses))
        launcher = make_launcher(settings.launcher, needed_environments(the_plan), settings.python, cfg, gpus,
                                 None if shard else choice)  # a shard's runs may need fewer images: chosen again
        guard.end_leftovers()
        preparation = Preparation(cfg, launcher, ArtifactCache.for_sweep(launcher, cfg))
        protocol = MeasurementProtocol(cfg, measurement, results)
        runs = RunExecutor(cfg, results, launcher, measurement, preparation, protocol, run_gpus=gpus)
        busy = BusyHostPolicy(cfg.interference)
        # What to measure next: every pending run, or an adaptive sweep's rounds (execution/rounds.py).
        schedule = RunSchedule(the_plan, results)
        pending = schedule.upper_bound()
        if pending:
            results.baseline_history()  # a damaged baseline.json stops the sweep before it measures anything
        logger.info(f"sweep [bold]{cfg.name}[/bold] -> {out}: {len(the_plan.runs)} runs planned"
                    f"{' (adaptive: at most)' if schedule.adaptive else ''}, {len(the_plan.runs) - pending} already "
                    f"recorded, {len(the_plan.skipped)} cells skipped (see `greenrt plan`)")
        if not any(s.available for s in measurement.statuses):
            logger.info("[yellow]energy: unavailable on this host[/yellow] ("
                     + "; ".join(f"{s.name}: {s.reason}" for s in measurement.statuses)
                     + "): latency and throughput are measured, energy columns stay empty")
        batch = schedule.next_batch() if pending else []
        if batch:
            for warning in protocol_warnings(cfg):  # before preparing, which can take minutes
                logger.warning(warning)
            # Everything a run may need, up to an adaptive sweep's max: its later rounds need no preparing pause.
            preparation.prepare(pending_runs(the_plan, results))
            baseline = protocol.measure_baseline()
            if baseline["status"] == "ok":
                logger.info(f"idle baseline: {describe_baseline(baseline)}")
            measured_any = False
            # One progress for the whole sweep: an adaptive one counts to its most runs left (its ETA a bound).
            with view.runs(schedule.upper_bound() if schedule.adaptive else len(batch)) as progress:
                while batch:
                    for run in batch:
                        if measured_any:
                            protocol.cooldown()
                        ok, failed = _measure_one(run, progress, (ok, failed), runs, protocol, busy, guard, results)
                        measured_any = True
                    batch = schedule.next_batch()
            logger.info(f"{ok} runs ok, {failed} failed")
            for line in client_fidelity_lines(the_plan, results):
                logger.info(f"fidelity across clients: {line}")
        if shard:  # shards write their journals concurrently; the merge writes the tables once, from all of them
            end_shard(results)
            logger.info(f"shard {shard} done: {results.journal_path}; `greenrt merge {out}` writes the tables")
    return SweepOutcome(results, ok, failed, sharded=shard is not None)
