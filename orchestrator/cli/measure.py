"""The verbs that measure or say what would be measured: doctor, plan, sweep (and its Slurm submission), run."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.table import Table

from orchestrator import host, paths
from orchestrator.cli import given_paths
from orchestrator.cli.app import (GPUS_HELP, LAUNCHER_HELP, POWERCAP_HELP, PYTHON_HELP, SCHEDULERS, SHARD_POLICY_HELP,
                                  app, check_launcher, console, err, user_errors)
from orchestrator.cli.generation_summary import generation_table
from orchestrator.cli.gpu_notes import GpuSide, jit_notes
from orchestrator.cli.plan_budget import budget_lines, plan_estimate, run_estimate
from orchestrator.cli.sweep_progress import RichSweepView
from orchestrator.cli.results import merge_and_finish, show_finished
from orchestrator.errors import UserError
from orchestrator.execution.prepare_shards import PrepareHere
from orchestrator.execution.sweep import SweepSettings, launcher_choice, needed_environments, run_gpus, run_sweep
from orchestrator.measurement.probe import Measurement, probe
from orchestrator.measurement.interference import quiet_now
from orchestrator.measurement.interference_policy import thresholds_of
from orchestrator.measurement.sensors.rapl import pyrapl_verdict
from orchestrator.planning.config import load_config, parse_config
from orchestrator.planning.config_sections import InterferenceSettings
from orchestrator.planning.defaults import default_config
from orchestrator.planning.gpus import mig_note
from orchestrator.planning.planner import Plan, adaptive_line, plan_sweep, protocol_warnings
from orchestrator.planning.runtimes import all_runtime_names, parse_runtime
from orchestrator.planning.checkpoints import checked_checkpoint
from orchestrator.planning.user_models import adhoc_checkpoint, adhoc_model
from orchestrator.results.journal import read_journal
from orchestrator.provisioning.environments import EnvironmentManager
from orchestrator.provisioning.images import ImageManager, image_names
from orchestrator.report.finish import finish
from orchestrator.scheduling import commands as sharded
from orchestrator.scheduling.shards import check_policy, parse_shard, policy_for
from orchestrator.scheduling.slurm import SlurmOptions
from orchestrator.scheduling.submission import SlurmSweep, submit_sweep


SKIP_OVERSIZED_HELP = ("Plan cells whose batch cannot fit in this host's (or its GPUs') memory as skipped, with the "
                       "reason, instead of refusing the config.")


def _measure(settings: SweepSettings, measurement: Measurement) -> None:
    try:  # planned again by run_sweep, which refuses what cannot run: the estimate only needs the cells
        the_plan = plan_sweep(settings.config, measurement.capabilities, settings.skip_oversized)
        per_run = run_estimate(settings.config, the_plan, settings.out, measurement)
    except UserError:
        per_run = 0.0
    outcome = run_sweep(settings, measurement, RichSweepView(console, per_run))
    if not outcome.sharded:  # shards write their journals concurrently; the merge writes the tables once
        show_finished(finish(outcome.results.root, advise=True))


def raise_if_refused(lines: list[str]) -> None:
    if lines:
        raise UserError("\n".join(lines))


def _config_or_default(config: Optional[Path], measurement: Measurement, say: Callable[[str], None]) -> Path:
    """The config asked for, or the one `make sweep` uses on this host (and why, said once)."""
    if config is not None:
        return config
    path, why = default_config(measurement.capabilities)
    say(f"config: {path.relative_to(paths.PROJECT_ROOT)} ({why})")
    return path


def _gpu_table(measurement: Measurement) -> Optional[Table]:
    nvml = next((s for s in measurement.statuses if s.name == "nvml" and s.available), None)
    if nvml is None:
        return None
    table = Table(title=f"NVIDIA GPUs (driver {nvml.details.get('driver_version')})", title_justify="left")
    for column in ("index", "name", "UUID", "PCI bus id", "memory", "energy counter", "power reading"):
        table.add_column(column)
    for g in measurement.gpus:  # already read from NVML's details by the probe
        table.add_row(str(g.index), g.name, g.uuid or "-", g.pci_bus_id or "-",
                      f"{g.memory_bytes / 2**30:.1f} GiB" if g.memory_bytes else "unknown",
                      "yes" if g.energy_counter else "[yellow]no[/yellow]: power samples integrated",
                      "1-s average" if g.power_is_1s_average else "instantaneous")
    for refused in nvml.details.get("refused_gpus") or []:  # NVML would not hand out its handle: not measured
        table.add_row(str(refused["index"]), "[yellow]left out[/yellow]", "-", "-", "-", "-", "handle refused")
    return table


def _gpu_notes(measurement: Measurement) -> list[str]:
    """One line per GPU that greenrt measures or hands to no run, and why (handle refused, MIG mode)."""
    nvml = next((s for s in measurement.statuses if s.name == "nvml"), None)
    refused = (nvml.details.get("refused_gpus") or []) if nvml else []
    return ([f"[yellow]left out[/yellow] {r['channel']}: {r['reason']}" for r in refused]
            + [f"[yellow]MIG[/yellow] {mig_note(g)}" for g in measurement.gpus if g.mig_enabled])


def _print_plan(plan: Plan) -> None:
    table = Table(title=f"plan {plan.config_name}: {len(plan.runs)} runs", title_justify="left")
    for column in ("#", "run id", "model", "batch", "runtime", "precision"):
        table.add_column(column)
    for run in plan.runs:
        c = run.cell
        table.add_row(str(run.index), run.run_id, c.model, str(c.batch_size), c.runtime, c.precision)
    console.print(table)
    if plan.skipped:
        skipped = Table(title=f"{len(plan.skipped)} cells skipped", title_justify="left")
        for column in ("model", "batch", "runtime", "precision", "reason"):
            skipped.add_column(column)
        for s in plan.skipped:
            skipped.add_row(s.cell.model, str(s.cell.batch_size), s.cell.runtime, s.cell.precision, s.reason)
        console.print(skipped)


@app.command()
def doctor(powercap_root: Optional[str] = typer.Option(None, help=POWERCAP_HELP),
           python: Optional[str] = typer.Option(None, help=PYTHON_HELP)) -> None:
    """What this host can measure and run, and why not where it cannot."""
    with user_errors():
        python = given_paths.python(python)
        measurement = probe(given_paths.powercap_root(powercap_root))
        info = host.describe(measurement.statuses)
        console.print(f"[bold]host[/bold] {info['hostname']}: {info['cpu_model']}, {info['logical_cpus']} logical CPUs, "
                      f"{(info['memory_bytes'] or 0) / 2**30:.1f} GiB, {info['os']}, Python {info['python']}")
        # Whether a sweep started now would be measured on a quiet host, by a sweep's default thresholds.
        activity = quiet_now(1.0, thresholds_of(InterferenceSettings()), [g.index for g in measurement.capabilities.gpus])
        said = (f"[yellow]busy now[/yellow]: {'; '.join(activity.reasons)} (runs measured now would be flagged)"
                if activity.flagged else activity.summary())
        console.print(f"[bold]host activity[/bold] (1 s): {said}", highlight=False, soft_wrap=True)
        sensors = Table(title="energy sensors", title_justify="left")
        for column in ("sensor", "readable", "channels", "why"):
            sensors.add_column(column)
        for s in measurement.statuses:
            sensors.add_row(s.name, "yes" if s.available else "[red]no[/red]", ", ".join(s.channels) or "-", s.reason)
        sensors.add_row("pyRAPL", "", "", pyrapl_verdict())
        console.print(sensors)
        gpu_table = _gpu_table(measurement)
        if gpu_table is not None:
            console.print(gpu_table)
        for line in _gpu_notes(measurement):
            console.print(line, highlight=False, soft_wrap=True)
        engine = info["container_engine"]
        console.print(f"[bold]container engine[/bold]: {engine['reason']}")
        image_states = {}
        if engine["available"]:
            images = ImageManager()
            for name in image_names():
                state = image_states[name] = images.state(name)
                console.print(f"  image {state.reference}: {state.state} ({state.detail})")
        caps = measurement.capabilities
        envs = EnvironmentManager(default_interpreter=python)
        gpu_side = GpuSide(caps, envs, image_states)
        if gpu_side.driver_table is not None:
            console.print(gpu_side.driver_table)
        runtimes = Table(title="runtimes", title_justify="left")
        for column in ("runtime", "runs here", "environment"):
            runtimes.add_column(column)
        for name in all_runtime_names():
            runtime = parse_runtime(name)
            reason = runtime.not_implemented_reason() or (
                f"needs an NVIDIA GPU: {caps.gpu_reason}" if runtime.needs_gpu and not caps.gpus else None)
            reason = reason or gpu_side.refusal(name)
            state = envs.state(runtime.environment) if not reason else None
            runtimes.add_row(name, f"[red]no[/red]: {reason}" if reason else "yes",
                             f"{runtime.environment}: {state.state} ({state.detail})" if state else "-")
        console.print(runtimes)
        for note in jit_notes(all_runtime_names(), caps):
            console.print(f"[yellow]note:[/yellow] {note}", highlight=False, soft_wrap=True)
        path, why = default_config(caps)
        console.print(f"[bold]make sweep[/bold] would use {path.relative_to(paths.PROJECT_ROOT)}: {why}")


@app.command()
def plan(config: Optional[str] = typer.Option(None, "--config", "-c", metavar="PATH",
                                              help="Sweep config (TOML); default: the one `make sweep` uses here."),
         powercap_root: Optional[str] = typer.Option(None, help=POWERCAP_HELP),
         python: Optional[str] = typer.Option(None, help=PYTHON_HELP),
         launcher: str = typer.Option("auto", help=LAUNCHER_HELP),
         as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
         shards: Optional[int] = typer.Option(None, help="Show how the runs split into this many shards."),
         shard_policy: Optional[str] = typer.Option(None, help=SHARD_POLICY_HELP),
         skip_oversized: bool = typer.Option(False, help=SKIP_OVERSIZED_HELP),
         history: Optional[list[str]] = typer.Option(None, "--history", metavar="DIR",
                                                     help="An earlier sweep's results folder on this host, whose "
                                                          "measured runs the time estimate uses (repeatable).")) -> None:
    """Dry run: the config and launcher a sweep would use, the runs in order, every skipped cell with its reason,
    and how long it would take."""
    with user_errors():
        given_config, python = given_paths.config_file(config), given_paths.python(python)
        earlier = given_paths.folders(history, "--history")
        check_launcher(launcher)
        measurement = probe(given_paths.powercap_root(powercap_root))
        chosen: list[str] = []
        config_path = _config_or_default(given_config, measurement, chosen.append)
        cfg = load_config(config_path)
        shard_policy = policy_for(shard_policy, cfg.adaptive_table)
        the_plan = plan_sweep(cfg, measurement.capabilities, skip_oversized)
        split = sharded.split_runs(the_plan, shards, shard_policy) if shards is not None else None
        name, why, images = launcher_choice(launcher, needed_environments(the_plan), python, cfg.interpreters)
        for warning in protocol_warnings(cfg):
            err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
        budget = plan_estimate(cfg, the_plan, earlier, images if name == "docker" else None,
                               EnvironmentManager(cfg.interpreters, python), measurement,
                               lambda line: err.print(f"[yellow]warning:[/yellow] {line}", highlight=False,
                                                      soft_wrap=True))
        if as_json:
            notes = jit_notes((r.cell.runtime for r in the_plan.runs), measurement.capabilities)
            print(json.dumps({**the_plan.to_dict(), "config_path": str(config_path),
                              "launcher": {"name": name, "why": why},
                              "gpu_notes": notes, "time_estimate": budget.to_dict(),
                              **({"shards": [[r.run_id for r in runs] for runs in split]}
                                 if split is not None else {})}, indent=1))
        else:
            for line in chosen:
                console.print(line)
            console.print(f"launcher: [bold]{name}[/bold] ({why})")
            _print_plan(the_plan)
            if cfg.adaptive is not None:
                console.print(adaptive_line(cfg.adaptive, the_plan), highlight=False, soft_wrap=True)
            for note in jit_notes((r.cell.runtime for r in the_plan.runs), measurement.capabilities):
                console.print(f"[yellow]note:[/yellow] {note}", highlight=False, soft_wrap=True)
            if shards is not None:
                console.print(sharded.shard_table(the_plan, shards, shard_policy))
            for line in budget_lines(budget, len(earlier)):
                console.print(line, highlight=False, soft_wrap=True)


@app.command()
def sweep(config: Optional[str] = typer.Option(None, "--config", "-c", metavar="PATH",
                                                help="Sweep config (TOML); default: the one that fits this host."),
          out: Optional[str] = typer.Option(None, "--out", "-o", metavar="DIR",
                                            help="Results directory (resumed if it exists)."),
          powercap_root: Optional[str] = typer.Option(None, help=POWERCAP_HELP),
          python: Optional[str] = typer.Option(None, help=PYTHON_HELP),
          launcher: Optional[str] = typer.Option(None, help=LAUNCHER_HELP + " Default: auto; local for Slurm shards."),
          gpus: str = typer.Option("all", help=GPUS_HELP),
          scheduler: str = typer.Option("none", help="none: measure here; slurm: submit --shards N as a job array."),
          shards: Optional[int] = typer.Option(None, help="With --scheduler slurm: how many shards (array tasks)."),
          shard: Optional[str] = typer.Option(None, help="i/N: measure only shard i of N (what each array task runs)."),
          shard_policy: Optional[str] = typer.Option(None, help=SHARD_POLICY_HELP),
          partition: Optional[str] = typer.Option(None, help="Slurm partition of the shards and the merge."),
          gpus_per_node: Optional[int] = typer.Option(None, help="GPUs each shard's node is allocated (--gres=gpu:G)."),
          time_limit: Optional[str] = typer.Option(None, "--time", help="Slurm time limit per shard, e.g. 04:00:00."),
          sbatch_arg: Optional[list[str]] = typer.Option(None, help="Another sbatch option for the shards (repeatable)."),
          fresh: bool = typer.Option(False, help="Start over in --out: its old results are moved to a sibling "
                                                 "folder (named in the output), never deleted."),
          skip_oversized: bool = typer.Option(False, help=SKIP_OVERSIZED_HELP)
          ) -> None:
    """Plan and measure a sweep, then merge its tables; re-running into the same --out resumes it."""
    with user_errors():
        given_config, given_out = given_paths.config_file(config), given_paths.out_folder(out)
        python = given_paths.python(python)
        if scheduler not in SCHEDULERS:
            raise UserError(f"unknown scheduler {scheduler!r}; valid: {', '.join(SCHEDULERS)}")
        if shard_policy is not None:
            check_policy(shard_policy)
        spec = parse_shard(shard) if shard is not None else None
        if fresh and (spec is not None or scheduler != "none"):
            raise UserError("--fresh starts a whole sweep over: it cannot be combined with --shard or --scheduler")
        if scheduler == "slurm" and (shards is None or spec is not None):
            raise UserError("--scheduler slurm needs --shards N (and no --shard: the array tasks get theirs)")
        if scheduler == "none" and (shards is not None or partition or gpus_per_node is not None or time_limit
                                    or sbatch_arg):
            raise UserError("--shards, --partition, --gpus-per-node, --time and --sbatch-arg need --scheduler slurm; "
                            "valid schedulers: " + ", ".join(SCHEDULERS))
        launcher = launcher or ("local" if scheduler == "slurm" else "auto")
        measurement = probe(given_paths.powercap_root(powercap_root))
        config_path = _config_or_default(given_config, measurement, console.print)
        check_launcher(launcher)
        cfg = load_config(config_path)
        shard_policy = policy_for(shard_policy, cfg.adaptive_table)
        folder = (given_out or given_paths.out_folder(str(paths.PROJECT_ROOT / "results" / cfg.name),
                                                      "the default results folder")).absolute()
        if scheduler == "slurm":
            given = run_gpus(gpus, measurement)
            submission = submit_sweep(
                SlurmSweep(cfg, config_path, folder, shards, shard_policy,
                           SlurmOptions(partition, gpus_per_node, time_limit, tuple(sbatch_arg or ())), launcher,
                           python, powercap_root, gpus),
                measurement.capabilities, PrepareHere(cfg, launcher, python, given, measurement))
            if not submission.submitted:
                merge_and_finish(folder)
            return
        _measure(SweepSettings(cfg, folder, launcher, python, gpus, spec, shard_policy, fresh, skip_oversized),
                 measurement)


RUN_RUNTIME_HELP = ("framework/format/provider, e.g. onnxruntime/onnx-from-torch/cpu (repeatable); default for a "
                    "model file: its format's CPU runtime; for a checkpoint folder: transformers and every other "
                    "generative runtime here")


@app.command()
def run(runtime: Optional[list[str]] = typer.Option(None, help=RUN_RUNTIME_HELP),
        model: str = typer.Option(..., help="resnet50, mobilenet_v2, bert-base-uncased, llama-tiny, ..., a model "
                                            "file (.onnx, .pt2, .keras) measured as a user model, or a Hugging Face "
                                            "checkpoint folder (config.json + .safetensors, Llama-style)"),
        batch_size: int = typer.Option(1, min=1),
        precision: str = typer.Option("fp32"),
        prompt_tokens: Optional[int] = typer.Option(None, min=1, help="Generative models: the prompt's tokens "
                                                                      "(default 512)."),
        new_tokens: Optional[int] = typer.Option(None, min=1, help="Generative models: the tokens generated per "
                                                                   "sequence (default 128)."),
        repetitions: int = typer.Option(1, min=1),
        warmup_iterations: int = typer.Option(5, min=0),
        min_iterations: int = typer.Option(20, min=1),
        min_seconds: float = typer.Option(2.0, min=0),
        baseline_seconds: float = typer.Option(5.0, min=0),
        out: Optional[str] = typer.Option(None, "--out", "-o", metavar="DIR"),
        powercap_root: Optional[str] = typer.Option(None, help=POWERCAP_HELP),
        python: Optional[str] = typer.Option(None, help=PYTHON_HELP),
        launcher: str = typer.Option("auto", help=LAUNCHER_HELP),
        gpus: str = typer.Option("all", help=GPUS_HELP)) -> None:
    """Measure one model ad hoc, through the same path as a sweep: one cell, or a checkpoint folder on every
    generative runtime (TTFT, TPOT, tokens/s and fidelity printed per runtime)."""
    with user_errors():
        given_out, python = given_paths.out_folder(out), given_paths.python(python)
        check_launcher(launcher)
        name = f"adhoc-{datetime.now():%Y%m%d-%H%M%S}"
        measurement = probe(given_paths.powercap_root(powercap_root))
        model = given_paths.model_file(model)
        if Path(model).is_dir():  # a checkpoint folder: refused as --model's, before the config repeats the checks
            raise_if_refused(checked_checkpoint(model, "--model", digest=False)[1])
            model, runtimes, user_models = adhoc_checkpoint(model, runtime, bool(measurement.capabilities.gpus))
        else:
            model, first, user_models = adhoc_model(model, runtime[0] if runtime else None)
            runtimes = [first, *(runtime or [])[1:]]
        options = {key: value for key, value in (("prompt_tokens", prompt_tokens), ("new_tokens", new_tokens))
                   if value is not None}
        cfg = parse_config({"name": name, "user_models": user_models,
                            "models": [model], "batch_sizes": [batch_size], "runtimes": runtimes,
                            "precisions": [precision], "repetitions": repetitions,
                            **({"model_options": {model: options}} if options else {}),
                            "warmup": {"iterations": warmup_iterations},
                            "measure": {"min_iterations": min_iterations, "min_seconds": min_seconds},
                            "baseline": {"seconds": baseline_seconds}}, source="greenrt run")
        the_plan = plan_sweep(cfg, measurement.capabilities)
        if not the_plan.runs:
            reasons = "; ".join(dict.fromkeys(f"{s.cell.runtime}: {s.reason}" for s in the_plan.skipped))
            raise UserError(f"cannot run {', '.join(runtimes)} here: {reasons or the_plan.left_out}")
        for skipped in dict.fromkeys(f"{s.cell.runtime}: {s.reason}" for s in the_plan.skipped):
            err.print(f"[yellow]not measured[/yellow] {skipped}", highlight=False, soft_wrap=True)
        if the_plan.left_out:
            err.print(f"[yellow]not measured[/yellow] {the_plan.left_out}", highlight=False, soft_wrap=True)
        folder = given_out or given_paths.out_folder(str(paths.PROJECT_ROOT / "results" / name),
                                                     "the default results folder")
        _measure(SweepSettings(cfg, folder, launcher, python, gpus), measurement)
        records, _ = read_journal(folder / "runs.jsonl")
        table = generation_table(records)
        if table is not None:
            console.print(table)
