"""greenrt's command line: doctor, plan, sweep, run, report, env."""
from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from orchestrator import host, paths
from orchestrator.execution.artifacts import ArtifactCache
from orchestrator.provisioning.base_image import DEFAULT_MIRROR, DEFAULT_SUITE, DEFAULT_TAG, base_exists, build_base
from orchestrator.measurement.baseline import describe_baseline
from orchestrator.planning.config import SweepConfig, load_config, parse_config
from orchestrator.provisioning.environments import EnvironmentBuildError, EnvironmentManager
from orchestrator.errors import UserError
from orchestrator.measurement.gpu import ALL_GPUS, GpuDescription, GpuSelectionError, select_gpus
from orchestrator.measurement.gpu import from_details as gpu_descriptions
from orchestrator.execution.guard import SweepGuard
from orchestrator.provisioning.images import FLAVORS, LABEL_PREFIX, ImageBuildError, ImageManager, docker_client, image_names
from orchestrator.execution.launchers.base import Launcher
from orchestrator.execution.launchers.choice import LAUNCHERS, choose_launcher
from orchestrator.execution.launchers.docker import DockerLauncher
from orchestrator.execution.launchers.local import LocalLauncher
from orchestrator.planning.planner import HostCapabilities, Plan, plan_sweep, protocol_warnings
from orchestrator.execution.reaccount import reaccount_failed
from orchestrator.planning.runtimes import all_runtime_names, parse_runtime
from orchestrator.scheduling import commands as sharded
from orchestrator.scheduling.sharded import begin_shard, end_shard
from orchestrator.scheduling.shards import DEFAULT_POLICY, POLICIES, ShardSpec, check_policy, parse_shard
from orchestrator.scheduling.slurm import ShardCommand, SlurmOptions, check_options as check_slurm_options
from orchestrator.measurement.sensors import SensorStatus, discover_sensors
from orchestrator.measurement.sensors.rapl import pyrapl_verdict, resolve_powercap_root
from orchestrator.results.store import ResultsDir
from orchestrator.execution.sweep import Measurement, SweepRunner
from orchestrator.results.tables import cell_summary, runs_table, write_tables

app = typer.Typer(help="Energy and latency of DL inference across runtime infrastructures.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
env_app = typer.Typer(help="The runtimes' environments (venvs built from images/<env>/requirements.txt).",
                      no_args_is_help=True)
app.add_typer(env_app, name="env")
images_app = typer.Typer(help="The runtimes' Docker images (images/<env>/Dockerfile), built from this checkout.",
                         no_args_is_help=True)
app.add_typer(images_app, name="images")
# Logs of a sweep are read in files and CI output: don't fold them at 80 columns when not on a terminal.
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

POWERCAP_HELP = "Root of the powercap sysfs tree (default: $GREENRT_POWERCAP_ROOT, else /sys/class/powercap)."
PYTHON_HELP = "Run every runtime in this existing interpreter instead of building venvs (e.g. a cluster module)."
LAUNCHER_HELP = ("docker: each run in a container of its runtime's image; local: a process in the runtime's venv "
                 "(or --python); auto: docker where the engine and every needed image are ready, else local.")
GPUS_HELP = ("GPUs given to each run of a GPU runtime (both launchers): all, or comma-separated NVML indices (as "
             "nvidia-smi numbers them), UUIDs or PCI bus ids. Energy per inference counts these GPUs; the node's "
             "others are kept in their own column.")
SHARD_POLICY_HELP = (f"How runs split into shards: {POLICIES[0]} (every shard runs every cell and the repetitions "
                     f"are divided, so comparisons stay paired within a host) or {POLICIES[1]}.")
SCHEDULERS = ("none", "slurm")
BASE_IMAGE_HELP = "Base image to build FROM (default: each Dockerfile's pinned NVIDIA CUDA image)."


@contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except (UserError, EnvironmentBuildError, ImageBuildError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _measurement(powercap_root: Optional[str]) -> Measurement:
    sensors, statuses = discover_sensors(resolve_powercap_root(powercap_root))
    return Measurement(sensors, statuses, host.capabilities(statuses).gpus)


def default_config(caps: HostCapabilities) -> tuple[Path, str]:
    if caps.gpus:
        return paths.PROJECT_ROOT / "configs/study.toml", f"NVIDIA GPU found ({', '.join(caps.gpu_names)})"
    return paths.PROJECT_ROOT / "configs/quick.toml", f"no NVIDIA GPU ({caps.gpu_reason}): CPU runtimes, quick budget"


def _config_or_default(config: Optional[Path], measurement: Measurement, say: Callable[[str], None]) -> Path:
    """The config asked for, or the one `make sweep` uses on this host (and why, said once)."""
    if config is not None:
        return config
    path, why = default_config(host.capabilities(measurement.statuses))
    say(f"config: {path.relative_to(paths.PROJECT_ROOT)} ({why})")
    return path


def _run_gpus(spec: str, measurement: Measurement) -> tuple[GpuDescription, ...]:
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


def _gpu_table(statuses: list[SensorStatus]) -> Optional[Table]:
    nvml = next((s for s in statuses if s.name == "nvml" and s.available), None)
    if nvml is None:
        return None
    table = Table(title=f"NVIDIA GPUs (driver {nvml.details.get('driver_version')})", title_justify="left")
    for column in ("index", "name", "UUID", "PCI bus id", "energy counter", "power reading"):
        table.add_column(column)
    for g in gpu_descriptions(nvml.details.get("gpus", [])):
        table.add_row(str(g.index), g.name, g.uuid or "-", g.pci_bus_id or "-",
                      "yes" if g.energy_counter else "[yellow]no[/yellow]: power samples integrated",
                      "1-s average" if g.power_is_1s_average else "instantaneous")
    return table


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
        measurement = _measurement(powercap_root)
        info = host.describe(measurement.statuses)
        console.print(f"[bold]host[/bold] {info['hostname']}: {info['cpu_model']}, {info['logical_cpus']} logical CPUs, "
                      f"{(info['memory_bytes'] or 0) / 2**30:.1f} GiB, {info['os']}, Python {info['python']}")
        sensors = Table(title="energy sensors", title_justify="left")
        for column in ("sensor", "readable", "channels", "why"):
            sensors.add_column(column)
        for s in measurement.statuses:
            sensors.add_row(s.name, "yes" if s.available else "[red]no[/red]", ", ".join(s.channels) or "-", s.reason)
        sensors.add_row("pyRAPL", "", "", pyrapl_verdict())
        console.print(sensors)
        gpu_table = _gpu_table(measurement.statuses)
        if gpu_table is not None:
            console.print(gpu_table)
        engine = info["container_engine"]
        console.print(f"[bold]container engine[/bold]: {engine['reason']}")
        if engine["available"]:
            images = ImageManager()
            for name in image_names():
                state = images.state(name)
                console.print(f"  image {state.reference}: {state.state} ({state.detail})")
        caps = host.capabilities(measurement.statuses)
        envs = EnvironmentManager(default_interpreter=python)
        runtimes = Table(title="runtimes", title_justify="left")
        for column in ("runtime", "runs here", "environment"):
            runtimes.add_column(column)
        for name in all_runtime_names():
            runtime = parse_runtime(name)
            reason = runtime.not_implemented_reason() or (
                f"needs an NVIDIA GPU: {caps.gpu_reason}" if runtime.needs_gpu and not caps.gpus else None)
            state = envs.state(runtime.environment) if not reason else None
            runtimes.add_row(name, f"[red]no[/red]: {reason}" if reason else "yes",
                             f"{runtime.environment}: {state.state} ({state.detail})" if state else "-")
        console.print(runtimes)
        path, why = default_config(caps)
        console.print(f"[bold]make sweep[/bold] would use {path.relative_to(paths.PROJECT_ROOT)}: {why}")


@app.command()
def plan(config: Optional[Path] = typer.Option(None, "--config", "-c",
                                              help="Sweep config (TOML); default: the one `make sweep` uses here."),
         powercap_root: Optional[str] = typer.Option(None, help=POWERCAP_HELP),
         python: Optional[str] = typer.Option(None, help=PYTHON_HELP),
         launcher: str = typer.Option("auto", help=LAUNCHER_HELP),
         as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
         shards: Optional[int] = typer.Option(None, help="Show how the runs split into this many shards."),
         shard_policy: str = typer.Option(DEFAULT_POLICY, help=SHARD_POLICY_HELP)) -> None:
    """Dry run: the config and launcher a sweep would use, the runs in order, every skipped cell with its reason."""
    with user_errors():
        _check_launcher(launcher)
        measurement = _measurement(powercap_root)
        chosen: list[str] = []
        config = _config_or_default(config, measurement, chosen.append)
        cfg = load_config(config)
        check_policy(shard_policy)
        the_plan = plan_sweep(cfg, host.capabilities(measurement.statuses))
        split = sharded.split_runs(the_plan, shards, shard_policy) if shards is not None else None
        name, why, _ = _launcher_choice(launcher, _needed_environments(the_plan), python)
        for warning in protocol_warnings(cfg):
            err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
        if as_json:
            print(json.dumps({**the_plan.to_dict(), "config_path": str(config), "launcher": {"name": name, "why": why},
                              **({"shards": [[r.run_id for r in runs] for runs in split]}
                                 if split is not None else {})}, indent=1))
        else:
            for line in chosen:
                console.print(line)
            console.print(f"launcher: [bold]{name}[/bold] ({why})")
            _print_plan(the_plan)
            if shards is not None:
                console.print(sharded.shard_table(the_plan, shards, shard_policy))


def _launcher_choice(requested: str, environments: set[str], python: Optional[str]
                     ) -> tuple[str, str, Optional[ImageManager]]:
    """(launcher, why, the image manager when Docker answered): what a sweep would use, nothing started."""
    if python and requested == "docker":
        raise UserError("--python runs runtimes in an existing interpreter: it needs --launcher local (or auto)")
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
    name, why = choose_launcher(requested, engine_problem, states, environments)
    return name, why, images


def _launcher(requested: str, environments: set[str], python: Optional[str], cfg: SweepConfig,
              gpus: tuple[GpuDescription, ...]) -> Launcher:
    name, why, images = _launcher_choice(requested, environments, python)
    console.print(f"launcher: [bold]{name}[/bold] ({why})")
    if gpus:
        console.print("GPUs given to GPU runtimes: " + ", ".join(f"{g.label()} ({g.uuid or g.pci_bus_id})" for g in gpus))
    if name == "docker":
        return DockerLauncher(images, gpus=gpus or None, log=console.print,
                              build=lambda env: images.rebuild(env, progress=console.print))
    return LocalLauncher(EnvironmentManager(cfg.interpreters, python, log=console.print), gpus=gpus or None)


def _engine_for_leftovers(launcher: Launcher) -> object | None:
    """The Docker engine whatever this sweep's launcher: a container orphaned by a killed Docker sweep must not
    run beside a local sweep's measurements either."""
    if isinstance(launcher, DockerLauncher):
        return launcher.images.client
    try:
        return docker_client(timeout=3)
    except UserError:
        return None


def _needed_environments(plan: Plan) -> set[str]:
    """Each planned run's environment, and the source frameworks' (exports and reference outputs run there)."""
    needed = set()
    for run in plan.runs:
        runtime = parse_runtime(run.cell.runtime)
        needed |= {runtime.environment, *([runtime.source_framework] if runtime.source_framework else [])}
    return needed


def _execute(cfg: SweepConfig, out: Path, measurement: Measurement, python: Optional[str], launcher_name: str = "auto",
             gpus: str = "all", shard: Optional[ShardSpec] = None, shard_policy: str = DEFAULT_POLICY,
             fresh: bool = False) -> None:
    the_plan = plan_sweep(cfg, host.capabilities(measurement.statuses))
    run_gpus = _run_gpus(gpus, measurement)
    # One sweep per host (the lock), a clean stop on SIGINT/SIGTERM or a full disk: orchestrator/execution/guard.py.
    with SweepGuard(out, console.print, _stop_line) as guard:
        results = ResultsDir(out, shard=shard.index if shard else None)
        if fresh and results.plan_path.exists():
            console.print(f"--fresh: the results in {out} were moved to {results.set_aside()}")
        results.open_for(the_plan)
        if shard:
            the_plan = begin_shard(results, the_plan, shard, shard_policy)
        if not results.host_path.exists():
            results.write_json(results.host_path, host.describe(measurement.statuses))
        launcher = _launcher(launcher_name, _needed_environments(the_plan), python, cfg, run_gpus)
        guard.end_leftovers(_engine_for_leftovers(launcher))
        runner = SweepRunner(cfg, the_plan, results, launcher, measurement,
                             ArtifactCache(launcher, timeout_s=cfg.timeout_seconds), log=console.print,
                             run_gpus=run_gpus)
        pending = runner.pending()
        console.print(f"sweep [bold]{cfg.name}[/bold] -> {out}: {len(the_plan.runs)} runs planned, "
                      f"{len(the_plan.runs) - len(pending)} already recorded, {len(the_plan.skipped)} cells skipped "
                      f"(see `greenrt plan`)")
        if not any(s.available for s in measurement.statuses):
            console.print("[yellow]energy: unavailable on this host[/yellow] ("
                          + "; ".join(f"{s.name}: {s.reason}" for s in measurement.statuses)
                          + "): latency and throughput are measured, energy columns stay empty")
        if pending:
            for warning in protocol_warnings(cfg):  # before preparing, which can take minutes
                err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
            runner.prepare(pending)
            baseline = runner.measure_baseline()
            if baseline["status"] == "ok":
                console.print(f"idle baseline: {describe_baseline(baseline)}")
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       TextColumn("eta"), TimeRemainingColumn())
            failed = 0
            with Progress(*columns, console=console) as progress:
                task = progress.add_task("runs", total=len(pending))
                for run in pending:
                    progress.update(task, description=f"{run.cell.model} bs{run.cell.batch_size} {run.cell.runtime}")
                    rechecked = runner.recheck_baseline()
                    if rechecked is not None:
                        progress.console.print(f"idle baseline re-measured: {describe_baseline(rechecked)}")
                    record = guard.execute(runner, run)
                    record["protocol"] = runner.protocol_facts()
                    guard.append(results, record)
                    if record["status"] != "ok":
                        failed += 1
                        progress.console.print(f"[red]failed[/red] {run.run_id}: {record['failure']['kind']}: "
                                               f"{record['failure']['message'][:300]}")
                    progress.advance(task)
                    if run is not pending[-1]:
                        runner.cooldown()
            console.print(f"{len(pending) - failed} runs ok, {failed} failed")
        if shard:  # shards write their journals concurrently; the merge writes the tables once, from all of them
            end_shard(results)
            console.print(f"shard {shard} done: {results.journal_path}; `greenrt merge {out}` writes the tables")
            return
        _write_and_show_tables(results)


def _stop_line(message: str) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)


def _write_and_show_tables(results: ResultsDir, trace_run: Optional[str] = None) -> None:
    records, problems = results.records()
    for problem in problems:
        err.print(f"[yellow]warning:[/yellow] {problem.message}")
    plan_data = json.loads(results.plan_path.read_text())
    written = write_tables(results.tables_dir, records, plan_data)
    summary = cell_summary(runs_table(records))
    if not summary.is_empty():
        table = Table(title="cells (median over repetitions)", title_justify="left")
        for column in ("model", "batch", "runtime", "ok/runs", "failed", "p50 ms", "inferences/s", "J/inference"):
            table.add_column(column)
        for row in summary.iter_rows(named=True):
            energy = f"{row['j_per_inference']:.4g}" if row["j_per_inference"] is not None else f"n/a ({row['energy_status']})"
            table.add_row(row["model"], str(row["batch_size"]), row["runtime"], f"{row['ok']}/{row['runs']}", str(row["failed"]),
                          _fmt(row["latency_p50_ms"]), _fmt(row["throughput_per_s"]), energy)
        console.print(table)
    console.print(f"tables: {results.tables_dir}/ ({', '.join(sorted(written))})")
    _write_and_show_report(results, trace_run)


def _write_and_show_report(results: ResultsDir, trace_run: Optional[str]) -> None:
    from orchestrator.report.build import build_report  # matplotlib loads in seconds: only when a report is made

    files = build_report(results.root, trace_run=trace_run)
    console.print("[bold]top findings[/bold]")
    for line in files.findings:
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"report: {files.markdown} and {files.html.name} ({len(files.figures)} figures, "
                  f"{len(files.tables)} tables as CSV under {files.markdown.parent / 'tables'}/)")


def _fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3g}" if value < 100 else f"{value:.0f}"


@app.command()
def sweep(config: Optional[Path] = typer.Option(None, "--config", "-c",
                                                help="Sweep config (TOML); default: the one that fits this host."),
          out: Optional[Path] = typer.Option(None, "--out", "-o", help="Results directory (resumed if it exists)."),
          powercap_root: Optional[str] = typer.Option(None, help=POWERCAP_HELP),
          python: Optional[str] = typer.Option(None, help=PYTHON_HELP),
          launcher: Optional[str] = typer.Option(None, help=LAUNCHER_HELP + " Default: auto; local for Slurm shards."),
          gpus: str = typer.Option("all", help=GPUS_HELP),
          scheduler: str = typer.Option("none", help="none: measure here; slurm: submit --shards N as a job array."),
          shards: Optional[int] = typer.Option(None, help="With --scheduler slurm: how many shards (array tasks)."),
          shard: Optional[str] = typer.Option(None, help="i/N: measure only shard i of N (what each array task runs)."),
          shard_policy: str = typer.Option(DEFAULT_POLICY, help=SHARD_POLICY_HELP),
          partition: Optional[str] = typer.Option(None, help="Slurm partition of the shards and the merge."),
          gpus_per_node: Optional[int] = typer.Option(None, help="GPUs each shard's node is allocated (--gres=gpu:G)."),
          time_limit: Optional[str] = typer.Option(None, "--time", help="Slurm time limit per shard, e.g. 04:00:00."),
          sbatch_arg: Optional[list[str]] = typer.Option(None, help="Another sbatch option for the shards (repeatable)."),
          fresh: bool = typer.Option(False, help="Start over in --out: its old results are moved to a sibling "
                                                 "folder (named in the output), never deleted.")
          ) -> None:
    """Plan and measure a sweep, then merge its tables; re-running into the same --out resumes it."""
    with user_errors():
        if scheduler not in SCHEDULERS:
            raise UserError(f"unknown scheduler {scheduler!r}; valid: {', '.join(SCHEDULERS)}")
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
        measurement = _measurement(powercap_root)
        config = _config_or_default(config, measurement, console.print)
        _check_launcher(launcher)
        cfg = load_config(config)
        out = (out or paths.PROJECT_ROOT / "results" / cfg.name).absolute()
        if scheduler == "slurm":
            _submit_slurm(cfg, config, out, measurement, python, launcher, gpus, shards, shard_policy,
                          SlurmOptions(partition, gpus_per_node, time_limit, tuple(sbatch_arg or ())), powercap_root)
            return
        _execute(cfg, out, measurement, python, launcher, gpus, spec, shard_policy, fresh=fresh)


def _submit_slurm(cfg: SweepConfig, config: Path, out: Path, measurement: Measurement, python: Optional[str],
                  launcher_name: str, gpus: str, shards: int, policy: str, options: SlurmOptions,
                  powercap_root: Optional[str]) -> None:
    the_plan = plan_sweep(cfg, host.capabilities(measurement.statuses))
    sharded.split_runs(the_plan, shards, policy)  # refuse an impossible split before anything is written
    check_slurm_options(options)
    run_gpus = _run_gpus(gpus, measurement)
    results = ResultsDir(out)
    results.open_for(the_plan)

    def prepare(runs: list) -> None:
        launcher = _launcher(launcher_name, _needed_environments(the_plan), python, cfg, run_gpus)
        SweepRunner(cfg, the_plan, results, launcher, measurement, ArtifactCache(launcher, timeout_s=cfg.timeout_seconds),
                    log=console.print, run_gpus=run_gpus).prepare(runs)

    # This installation's own entry point: the nodes see it at the same path on the shared filesystem.
    entry = Path(sys.executable).with_name("greenrt")
    command = ShardCommand(str(entry) if entry.exists() else "greenrt", config.absolute(), out, shards, policy,
                           launcher_name, python, powercap_root, gpus)
    sharded.submit(the_plan, results, shards, policy, command, options, prepare, lambda: merge(out), console)


@app.command()
def merge(directory: Path = typer.Argument(..., help="A sharded sweep's results directory.")) -> None:
    """Union the shards' journals into DIR/runs.jsonl (Slurm state and missing runs per shard), then tables and report."""
    with user_errors():
        results = ResultsDir(directory)
        if not results.plan_path.exists():
            raise UserError(f"{directory}: not a greenrt results directory (no plan.json)")
        sharded.merge(results, console)
        _write_and_show_tables(results)


@app.command()
def status(directory: Path = typer.Argument(..., help="A sharded sweep's results directory."),
           wait: bool = typer.Option(False, help="Block until the merge job has finished (exit 0: it completed)."),
           interval: float = typer.Option(5.0, min=0.1, help="Seconds between polls with --wait.")) -> None:
    """Per shard: its Slurm state and its progress from its journal."""
    with user_errors():
        code = sharded.status(ResultsDir(directory), wait, interval, console)
    raise typer.Exit(code)


@app.command()
def run(runtime: str = typer.Option(..., help="framework/format/provider, e.g. onnxruntime/onnx-from-torch/cpu"),
        model: str = typer.Option(..., help="resnet50, mobilenet_v2 or bert-base-uncased"),
        batch_size: int = typer.Option(1, min=1),
        precision: str = typer.Option("fp32"),
        repetitions: int = typer.Option(1, min=1),
        warmup_iterations: int = typer.Option(5, min=0),
        min_iterations: int = typer.Option(20, min=1),
        min_seconds: float = typer.Option(2.0, min=0),
        baseline_seconds: float = typer.Option(5.0, min=0),
        out: Optional[Path] = typer.Option(None, "--out", "-o"),
        powercap_root: Optional[str] = typer.Option(None, help=POWERCAP_HELP),
        python: Optional[str] = typer.Option(None, help=PYTHON_HELP),
        launcher: str = typer.Option("auto", help=LAUNCHER_HELP),
        gpus: str = typer.Option("all", help=GPUS_HELP)) -> None:
    """Measure one cell ad hoc, through the same path as a sweep."""
    with user_errors():
        _check_launcher(launcher)
        name = f"adhoc-{datetime.now():%Y%m%d-%H%M%S}"
        cfg = parse_config({"name": name, "models": [model], "batch_sizes": [batch_size], "runtimes": [runtime],
                            "precisions": [precision], "repetitions": repetitions,
                            "warmup": {"iterations": warmup_iterations},
                            "measure": {"min_iterations": min_iterations, "min_seconds": min_seconds},
                            "baseline": {"seconds": baseline_seconds}}, source="greenrt run")
        measurement = _measurement(powercap_root)
        the_plan = plan_sweep(cfg, host.capabilities(measurement.statuses))
        if not the_plan.runs:
            raise UserError(f"cannot run {runtime} here: {the_plan.skipped[0].reason}")
        _execute(cfg, out or paths.PROJECT_ROOT / "results" / name, measurement, python, launcher, gpus)


@app.command()
def report(directory: Path = typer.Argument(..., help="A sweep's results directory."),
           trace_run: Optional[str] = typer.Option(None, help="Run id whose power trace is drawn "
                                                                 "(default: the first run with samples).")) -> None:
    """Merge a sweep's journal into tables, write DIR/report/ (report.md, report.html, figures, CSV), show findings."""
    with user_errors():
        results = ResultsDir(directory)
        if not results.plan_path.exists():
            raise UserError(f"{directory}: not a greenrt results directory (no plan.json)")
        for done in reaccount_failed(results):
            console.print(f"accounted again: {done.run_id}: {done.status} ({done.detail})", markup=False)
        _write_and_show_tables(results, trace_run)


@app.command()
def compare(a: Path = typer.Argument(..., help="Results directory of sweep A."),
            b: Path = typer.Argument(..., help="Results directory of sweep B."),
            out: Optional[Path] = typer.Option(None, "--out", "-o",
                                               help="Where comparison.md and .csv go (default: B/compare-<A's name>).")
            ) -> None:
    """Two sweeps side by side (two hosts, two driver versions): per cell medians, ratio B/A, significance."""
    with user_errors():
        from orchestrator.report.compare import write_comparison

        files = write_comparison(a, b, out or b / f"compare-{a.resolve().name}")
        table = files.table
        tested = table.filter(table["latency_significant"].is_not_null())
        console.print(f"{table.height} cells; latency differs significantly in "
                      f"{int(tested['latency_significant'].sum())} of {tested.height} tested")
        console.print(f"comparison: {files.markdown} and {files.csv.name}")


def _check_launcher(name: str) -> None:
    if name not in LAUNCHERS:
        raise UserError(f"unknown launcher {name!r}; valid: {', '.join(LAUNCHERS)}")


@images_app.command("list")
def images_list() -> None:
    """Each image: ready (built from this checkout), stale, or absent."""
    with user_errors():
        images = ImageManager(docker_client())
        for name in image_names():
            state = images.state(name)
            console.print(f"{state.reference}: {state.state} ({state.detail})")


@images_app.command("build")
def images_build(names: Optional[list[str]] = typer.Argument(None, help="Images to build (default: all)."),
                 base_image: Optional[str] = typer.Option(None, help=BASE_IMAGE_HELP),
                 flavor: str = typer.Option("cuda", help=f"Which build: {', '.join(FLAVORS)} (cpu with a non-CUDA base)."),
                 wheelhouse: Optional[list[Path]] = typer.Option(
                     None, help="Folder of local wheels; those the image's requirements name are preferred (repeatable)."),
                 force: bool = typer.Option(False, help="Rebuild even when the image is up to date.")) -> None:
    """Build images from this checkout (Docker's layer cache keeps rebuilds quick)."""
    with user_errors():
        images = ImageManager(docker_client(), log=console.print)
        for name in names or image_names():
            state = images.state(name)
            built_otherwise = state.flavor != flavor or (base_image or "dockerfile default") != state.labels.get(
                LABEL_PREFIX + "base-image")
            if force or state.state != "ready" or built_otherwise:
                state = images.build(name, base_image=base_image, flavor=flavor, wheelhouses=wheelhouse or [])
            console.print(f"{state.reference}: {state.state} ({state.detail})")


@images_app.command("base")
def images_base(tag: str = typer.Option(DEFAULT_TAG, help="Tag of the base image."),
                suite: str = typer.Option(DEFAULT_SUITE, help="Debian suite to bootstrap."),
                mirror: str = typer.Option(DEFAULT_MIRROR, help="Debian mirror."),
                force: bool = typer.Option(False, help="Rebuild even when the tag exists.")) -> None:
    """Build a local Debian base with Python (debootstrap + import), for CPU images where no registry is reachable."""
    with user_errors():
        client = docker_client()
        if base_exists(client, tag) and not force:
            console.print(f"{tag}: present")
            return
        seconds = build_base(client, tag, suite, mirror, log=console.print)
        console.print(f"{tag}: built in {seconds:.0f} s")


@env_app.command("list")
def env_list(python: Optional[str] = typer.Option(None, help=PYTHON_HELP)) -> None:
    """Each environment and whether it is built, stale or absent."""
    with user_errors():
        envs = EnvironmentManager(default_interpreter=python)
        for name in paths.environment_names():
            state = envs.state(name)
            console.print(f"{name}: {state.state} ({state.detail})")


@env_app.command("build")
def env_build(names: list[str] = typer.Argument(..., help="Environment names (folders of images/)."),
              force: bool = typer.Option(False, help="Rebuild even when up to date.")) -> None:
    """Build environments now (otherwise they are built on first use)."""
    with user_errors():
        envs = EnvironmentManager(log=console.print)
        for name in names:
            state = envs.state(name)
            if force or state.state in ("absent", "stale"):
                envs.build(name)
            console.print(f"{name}: ready ({envs.state(name).python})")


@env_app.command("python")
def env_python(name: str = typer.Argument(...)) -> None:
    """Print the interpreter of an environment, building it if needed (for scripts: `$(greenrt env python torch)`)."""
    with user_errors():
        print(EnvironmentManager(log=lambda m: err.print(m)).python_for(name))


def main() -> None:  # pragma: no cover - console script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
