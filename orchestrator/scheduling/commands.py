"""The sharded side of the CLI: submitting a sweep's shards to Slurm, merging them, watching them."""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from orchestrator.errors import UserError
from orchestrator.planning.planner import Plan
from orchestrator.scheduling import slurm
from orchestrator.scheduling.merge import MergeSummary, merge_shards
from orchestrator.scheduling.sharded import (adaptive_line, all_recorded, not_needed, append_submission, latest_submission, progress,
                                             read_manifest, write_manifest)
from orchestrator.scheduling.shards import split_runs
from orchestrator.results.damage import damage
from orchestrator.results.store import ResultsDir

logger = logging.getLogger(__name__)

# The same columns as a local sweep's bar, so a sharded sweep reads like one.
PROGRESS_COLUMNS = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("eta"), TimeRemainingColumn())


def shard_table(plan: Plan, count: int, policy: str) -> Table:
    table = Table(title=f"{count} shards ({policy})", title_justify="left")
    for column in ("shard", "runs", "repetitions", "cells", "runtimes"):
        table.add_column(column)
    for i, runs in enumerate(split_runs(plan, count, policy), start=1):
        reps = sorted({r.repetition for r in runs})
        table.add_row(str(i), str(len(runs)), _ranges(reps), str(len({r.cell.key for r in runs})),
                      ", ".join(sorted({r.cell.runtime for r in runs})))
    return table


def _ranges(values: list[int]) -> str:
    return slurm.array_spec(values) if values else "-"


def active_jobs(out: Path) -> list[str]:
    """Jobs of the latest submission still pending or running: a second submission would share their journals."""
    last = latest_submission(out)
    if last is None:
        return []
    active = []
    for job in (last["array_job"], last["merge_job"]):
        query = slurm.job_states(job)
        if any(not s.finished for s in query.states.values()):
            active.append(job)
    return active


def submit(plan: Plan, results: ResultsDir, count: int, policy: str, command: slurm.ShardCommand,
           options: slurm.SlurmOptions, prepare: Callable[[list], None]) -> tuple[str, str] | None:
    """Prepare here, then submit the shards with pending runs and the merge after them: (array id, merge id), or
    None where every run is recorded already (nothing submitted: the caller merges here)."""
    slurm.check_options(options)
    split = split_runs(plan, count, policy)
    busy = active_jobs(results.root)
    if busy:
        raise UserError(f"{results.root}: jobs {', '.join(busy)} of the last submission are still queued or running; "
                        f"wait (`greenrt status {results.root} --wait`) or scancel them first")
    # Done: recorded, or never to be measured (an adaptive sweep's cells stopped before those rounds).
    recorded = all_recorded(results.root) | not_needed(results.root, plan.to_dict())
    pending = [[r for r in runs if r.run_id not in recorded] for runs in split]
    tasks = [i + 1 for i, runs in enumerate(pending) if runs]
    logger.info(f"sweep [bold]{plan.config_name}[/bold] -> {results.root}: {len(plan.runs)} runs in {count} shards "
                f"({policy}), {len(plan.runs) - sum(map(len, pending))} already recorded")
    if not tasks:
        logger.info("every run is recorded: merging here, nothing to submit")
        return None
    # Environments and ONNX exports once, here, before any shard starts: shards share the cache, and N nodes
    # building one venv or exporting one model at the same moment would race.
    prepare([r for runs in pending for r in runs])
    write_manifest(results.root, count, policy, tasks, command.config)
    array, merge = slurm.submit_shards(results.root, plan.config_name, tasks, command, options, Path.cwd())
    append_submission(results.root, array, merge)
    logger.info(f"submitted shards {slurm.array_spec(tasks)} of {count} as array job {array} (one exclusive node "
                f"each), merge job {merge} after them; scripts in {results.root / 'shards'}/")
    logger.info(f"watch: greenrt status {results.root} --wait")
    return array, merge


def merge(results: ResultsDir, console: Console) -> MergeSummary:
    results.read_plan()  # one line naming plan.json when it is damaged, before anything is written
    if read_manifest(results.root) is None:
        raise UserError(f"{results.root}: not a sharded sweep (no shards/shards.json); `greenrt report {results.root}` "
                        "writes a single host's tables")
    last = latest_submission(results.root)
    query = slurm.job_states(last["array_job"]) if last else slurm.JobQuery(problem="no submission recorded")
    summary = merge_shards(results.root, query.states, query.problem,
                           warn=lambda line: console.print(f"[yellow]warning:[/yellow] {escape(line)}",
                                                           highlight=False, soft_wrap=True))
    table = Table(title=f"shards: {summary.recorded} of {summary.planned} runs recorded, {summary.missing} missing",
                  title_justify="left")
    for column in ("shard", "state", "exit code", "node", "runs", "missing"):
        table.add_column(column)
    for s in summary.shards:
        table.add_row(str(s.index), s.state, s.exit_code or "-", s.node or "-", f"{s.recorded}/{s.planned}",
                      str(s.missing))
    console.print(table)
    for signature, shards in summary.hosts.items():
        console.print(f"host {signature}: shards {', '.join(map(str, shards))}", highlight=False)
    if len(summary.hosts) > 1:
        console.print(f"[yellow]warning:[/yellow] shards ran on {len(summary.hosts)} different kinds of host; the "
                      "report flags cells whose repetitions mix them")
    return summary


def _states(out: Path) -> tuple[dict, slurm.TaskState | None, str | None]:
    last = latest_submission(out)
    if last is None:
        return {}, None, "no Slurm submission recorded"
    array = slurm.job_states(last["array_job"])
    merge_query = slurm.job_states(last["merge_job"])
    merge_state = merge_query.states.get(None) or next(iter(merge_query.states.values()), None)
    return array.states, merge_state, array.problem


def status(results: ResultsDir, wait: bool, interval_s: float, console: Console) -> int:
    """Per shard its Slurm state and progress; with wait, until the merge job has finished. 0 when it completed."""
    root = results.root
    plan = Plan.from_dict(results.read_plan())
    damaged = damage(results)  # one line per damaged file, whatever else status can say
    for line in damaged:
        console.print(f"[yellow]damaged:[/yellow] {escape(line)}", highlight=False, soft_wrap=True)
    manifest = read_manifest(root)
    if manifest is None:  # a single host's sweep: its progress from the journal
        done = results.recorded_run_ids()
        skip = not_needed(root, plan.to_dict())
        left = sum(1 for r in plan.runs if r.run_id not in done and r.run_id not in skip)
        adaptive = adaptive_line(root, plan.to_dict())
        at_most = adaptive is not None and left > 0  # an adaptive sweep's later rounds may not be needed
        console.print(f"{root}: {len(plan.runs) - len(skip) - left} of {'at most ' if at_most else ''}"
                      f"{len(plan.runs) - len(skip)} runs recorded, {'up to ' if at_most else ''}{left} left"
                      + (f" (`greenrt sweep --out {root}` with its config measures them)" if left else "")
                      + (f"; {len(skip)} planned runs not needed (their cells stopped)" if skip else ""),
                      highlight=False, soft_wrap=True)
    else:
        adaptive = adaptive_line(root, plan.to_dict())
    if adaptive:
        console.print(adaptive, highlight=False, soft_wrap=True)
    if manifest is None:
        return 0
    last = latest_submission(root) or {}
    with Progress(*PROGRESS_COLUMNS, console=console, transient=False,
                  auto_refresh=sys.stdout.isatty()) as bar:
        tasks: dict[int, int] = {}
        while True:
            states, merge_state, problem = _states(root)
            for row in progress(root):
                state = states.get(row.index)
                label = (state.state if state else "not submitted" if row.index not in manifest["tasks"]
                         else f"unknown ({problem or slurm.NOT_KNOWN})")
                if state and state.exit_code and state.finished:
                    label += f" exit {state.exit_code}"
                description = f"shard {row.index}/{manifest['count']} {label:<12} {row.node or '':<8}"
                if row.failed:
                    description += f" ({row.failed} failed)"
                if row.index not in tasks:
                    tasks[row.index] = bar.add_task(description, total=row.planned)
                bar.update(tasks[row.index], description=description, completed=row.recorded)
            merge_label = merge_state.state if merge_state else "unknown"
            if not wait or (merge_state is not None and merge_state.finished) or merge_state is None:
                break
            bar.refresh()
            time.sleep(interval_s)
    console.print(f"merge job {last.get('merge_job', '-')}: {merge_label}"
                  + (f" (exit {merge_state.exit_code})" if merge_state and merge_state.finished else ""))
    if merge_state is not None and merge_state.state == "COMPLETED":
        console.print(f"tables: {root / 'tables'}/, report: {root / 'report' / 'report.md'}")
    if not wait:
        return 0
    return 0 if merge_state is not None and merge_state.state == "COMPLETED" else 1
