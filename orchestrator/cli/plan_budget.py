"""`greenrt plan`'s time estimate: what preparation still has to make (the environments and the artifact cache,
looked at, never built), what earlier runs on this host measured (results folders given with --history), the pure
estimate over them (planning/time_budget.py), and its lines: the total first, then the split.

The cache is matched by folder name (source, model, format) without the key a sweep computes from the source
environment's versions, which would mean starting each environment: a cached item whose key no longer matches is
made again by the sweep, and the estimate says so ("looked up by name").
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Iterable

from orchestrator import paths
from orchestrator.execution.sweep import needed_environments
from orchestrator.measurement.probe import Measurement
from orchestrator.planning.config import SweepConfig
from orchestrator.planning.planner import Plan
from orchestrator.planning.runtimes import parse_runtime
from orchestrator.provisioning.environments import EnvironmentManager
from orchestrator.provisioning.images import ImageManager
from orchestrator.planning.time_budget import MeasuredRun, PrepItem, TimeBudget, estimate, span
from orchestrator.results.run_times import measured_run
from orchestrator.results.store import ResultsDir
from runners.protocol import ExportResult, ProtocolError, QuantizeResult, read_json

KEY = r"[0-9a-f]{16}"


def _cached(root: Path, prefix: str, inside: str) -> tuple[bool, float | None]:
    """Whether a folder <prefix>-<key> under root holds `inside`, and the seconds its result file says it took."""
    pattern = re.compile(re.escape(prefix) + "-" + KEY)
    best: tuple[bool, float | None] = (False, None)
    for folder in sorted(root.glob(f"{prefix}-*")) if root.is_dir() else ():
        if not pattern.fullmatch(folder.name) or not (folder / inside).exists():
            continue
        seconds = None
        result_cls = {"export.json": ExportResult, "quantize.json": QuantizeResult}.get(inside)
        if result_cls is not None:
            try:
                seconds = read_json(result_cls, folder / inside).seconds
            except ProtocolError:
                continue
        best = (True, seconds if seconds is not None else best[1])
    return best


def preparation_items(plan: Plan, environments: Iterable[str], ready: Callable[[str], bool],
                      cache: Path | None = None,
                      built_in: Callable[[str], float | None] = lambda env: None) -> list[PrepItem]:
    """What a sweep of `plan` must make before its first run, each cached or not (by name), with measured times;
    ready: whether an environment (venv or image) is built; built_in: how long its last build here took."""
    cache = cache or paths.cache_dir()
    items = [PrepItem("environment", env, ready(env), built_in(env)) for env in sorted(environments)]
    exports, int8, references = set(), set(), set()
    for run in plan.runs:
        runtime, model = parse_runtime(run.cell.runtime), run.cell.model
        if runtime.source_framework is not None:
            target = runtime.target_format or "onnx"
            prefix = f"{runtime.source_framework}-{model}" + ("" if target == "onnx" else f"-{target}")
            exports.add(prefix)
            if run.cell.precision == "int8":
                int8.add(f"{runtime.source_framework}-{model}-int8")
        if runtime.reference_framework is not None:
            references.add(((runtime.reference_framework, model), run.cell.batch_size))
    for kind, prefixes, folder, inside in (("export", exports, "artifacts", "export.json"),
                                           ("int8", int8, "quantized", "quantize.json")):
        for prefix in sorted(prefixes):
            cached, seconds = _cached(cache / folder, prefix, inside)
            items.append(PrepItem(kind, prefix, cached, seconds))
    for (framework, model), batch in sorted(references):
        prefix = f"{framework}-{model}"
        cached, _ = _cached(cache / "references", prefix, f"reference-bs{batch}-seed{plan.seed}.npz")
        items.append(PrepItem("reference", f"{prefix} bs{batch}", cached,
                              cell=f"{model}|bs{batch}|{framework}/native/cpu|fp32"))
    return items


def history_runs(folders: Iterable[Path], say: Callable[[str], None] = lambda line: None) -> list[MeasuredRun]:
    """Every readable record of the results folders, as phases (unreadable lines are left out here); a folder
    with none is said (via say), since the estimate then goes without it."""
    runs = []
    for folder in folders:
        records, _ = ResultsDir(folder).records()
        if not records:
            say(f"--history {folder}: no readable run record (runs.jsonl) there; the estimate goes without it")
        runs += [measured_run(r) for r in records]
    return runs


def budget_for(cfg: SweepConfig, plan: Plan, history: list[MeasuredRun], prep: list[PrepItem],
               measurement: Measurement) -> TimeBudget:
    """The host's GPUs (an adaptive cooldown watches them, else it waits its minimum) and energy sensors (without
    one there is no idle baseline to measure) come from its probe; the CPU cores a run may use (a CPU cell's guessed
    latency) from this process's affinity."""
    cells = list(dict.fromkeys(run.cell.key for run in plan.runs))
    return estimate(cfg, cells, history, prep, gpus=bool(measurement.gpus),
                    sensors=bool(measurement.sensors), cores=len(os.sched_getaffinity(0)))


def plan_estimate(cfg: SweepConfig, plan: Plan, history: list[Path], images: ImageManager | None,
                  envs: EnvironmentManager, measurement: Measurement, say: Callable[[str], None]) -> TimeBudget:
    """`greenrt plan`'s estimate: images: the Docker launcher's (its images are the environments), else None."""
    if images is not None:
        ready: Callable[[str], bool] = lambda env: images.state(env).state == "ready"  # noqa: E731
    else:
        ready = lambda env: envs.state(env).state in ("ready", "interpreter")  # noqa: E731
    environments = needed_environments(plan)
    prep = preparation_items(plan, environments, ready, built_in=envs.build_seconds)
    return budget_for(cfg, plan, history_runs(history, say), prep, measurement)


def budget_lines(budget: TimeBudget, history_folders: int) -> list[str]:
    """The estimate, compactly: the total and the runs first, then one line per part with its source."""
    runs = (f"{budget.runs_low} runs" if budget.runs_low == budget.runs_high
            else f"{budget.runs_low} to {budget.runs_high} runs (adaptive repetitions)")
    where = f", from {history_folders} earlier results folder(s)" if history_folders else ""
    lines = [f"[bold]time estimate[/bold]: {span(budget.low, budget.high)} for {runs}{where}"]
    for part in budget.parts:
        if part.high > 0 or part.name in ("window",):
            lines.append(f"  {part.name}: {span(part.low, part.high)} ({part.source})")
    if budget.guessed:
        lines.append(f"  guessed, not measured: {', '.join(budget.guessed)} (`--history DIR` of an earlier "
                     f"sweep on this host measures the per-run parts)")
    return lines


def run_estimate(cfg: SweepConfig, plan: Plan, out: Path, measurement: Measurement) -> float:
    """One run's estimated seconds (its cooldown included) for a sweep's ETA: from the runs already in `out` where
    it is resumed, else from the config."""
    history = history_runs([out]) if ResultsDir(out).journal_path.exists() else []
    return budget_for(cfg, plan, history, [], measurement).run_seconds
