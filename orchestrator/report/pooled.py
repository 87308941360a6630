"""Reading one or more results directories into one runs table for the advice, each run with its host signature.

A run's host is the signature the merge of a sharded sweep gave it, else that of its directory's host.json; the
advice pools runs only within one signature. Grid figures ([report] in each sweep's config) are read here too:
directories that disagree on one must have it given on the command line, so a figure is never picked silently.
"""
from __future__ import annotations

import os

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from orchestrator.analysis.adaptive import sequential_verdicts
from orchestrator.analysis.carbon import GridFigures, InvalidGridFigure
from orchestrator.errors import UserError
from orchestrator.results.journal import describe_problems
from orchestrator.results.store import ResultsDir, read_json_object
from orchestrator.results.tables import read_runs
from orchestrator.scheduling.merge import host_signature

GRID_NAMES = ("grid_intensity_g_per_kwh", "pue", "price_per_kwh")


@dataclass
class PooledRuns:
    runs: pl.DataFrame
    grid: GridFigures  # the configs' figures, before any command-line option
    problems: list[str] = field(default_factory=list)  # journal lines that could not be read
    # One adaptive sweep's verdict-rule answers (analysis/adaptive.py); {} when pooling several directories, whose
    # runs no single sequential design chose.
    sequential: dict = field(default_factory=dict)


def _host_of(results: ResultsDir) -> str:
    if not os.path.lexists(results.host_path):  # a link loop is there, and unreadable below
        return f"unknown host (no host.json in {results.root.name})"
    host, problem = read_json_object(results.host_path)
    if problem is not None:  # said once by read_directories; the runs still count, under an unknown host
        return f"unknown host (host.json unreadable in {results.root.name})"
    return host_signature(host)


def config_grid(plan: dict, source: str) -> dict[str, float]:
    """The [report] grid figures a sweep's config set (none: an empty dict)."""
    settings = (plan.get("config") or {}).get("report") or {}
    figures = {n: settings[n] for n in GRID_NAMES if settings.get(n) is not None}
    try:
        GridFigures(**figures)
    except InvalidGridFigure as exc:
        raise UserError(f"{source}/plan.json: report.{exc}") from None
    return figures


def _agreed_grid(per_dir: dict[str, dict[str, float]], given: GridFigures) -> GridFigures:
    chosen: dict[str, float] = {}
    for name in GRID_NAMES:
        values = {d: f[name] for d, f in per_dir.items() if name in f}
        if len(set(values.values())) > 1 and getattr(given, name) is None:
            listed = ", ".join(f"{d}: {v:g}" for d, v in values.items())
            raise UserError(f"the directories' report.{name} differ ({listed}); give --{name.replace('_', '-')}")
        if values:
            chosen[name] = next(iter(values.values()))
    return GridFigures(**chosen)


def with_host(table: pl.DataFrame, results: ResultsDir, source: str) -> pl.DataFrame:
    """A directory's runs table with every run's host signature filled in and the directory named as its source."""
    if table.is_empty():
        return table
    if "host" not in table.columns:
        table = table.with_columns(pl.lit(None, pl.String).alias("host"))
    return table.with_columns(pl.col("host").cast(pl.String).fill_null(_host_of(results)),
                              pl.lit(source).alias("source"))


def read_directories(directories: list[Path], given: GridFigures = GridFigures()) -> PooledRuns:
    frames, problems, grids, sequential = [], [], {}, {}
    for directory in directories:
        results = ResultsDir(directory)
        source = str(directory)
        if not results.plan_path.exists():
            raise UserError(f"{directory}: not a greenrt results directory (no plan.json)")
        plan = results.read_plan()
        grids[source] = config_grid(plan, source)  # damaged: one line naming plan.json
        journal = read_runs(results.journal_path, results.root)
        if len(directories) == 1:
            sequential = sequential_verdicts(plan, journal.runs)
        if journal.problems:
            problems.append(f"{source}: {describe_problems(results.journal_path, journal.problems)}")
        results.read_facts(results.host_path, lambda line: problems.append(f"{source}: {line}"))
        table = with_host(journal.runs, results, source)
        if not table.is_empty():
            frames.append(table)
    runs = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    return PooledRuns(runs, _agreed_grid(grids, given), problems, sequential)
