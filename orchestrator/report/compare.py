"""`greenrt compare A B`: two sweeps side by side, per cell, as markdown and CSV."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from orchestrator.analysis.comparisons import ALPHA
from orchestrator.analysis.sweeps import compare_sweeps
from orchestrator.errors import UserError
from orchestrator.report.document import TableBlock
from orchestrator.report.markdown import table_markdown
from orchestrator.results.journal import describe_problems
from orchestrator.results.store import ResultsDir
from orchestrator.results.tables import read_runs


@dataclass(frozen=True)
class ComparisonFiles:
    markdown: Path
    csv: Path
    table: pl.DataFrame
    warnings: tuple[str, ...] = ()  # damaged files the comparison went on without, one line each


def _load(directory: Path, side: str, warnings: list[str]) -> tuple[pl.DataFrame, dict]:
    results = ResultsDir(directory)
    if not results.root.is_dir():
        raise UserError(f"{side} {directory}: no such directory")
    if not results.plan_path.exists():
        raise UserError(f"{side} {directory}: not a greenrt results directory (no plan.json)")
    results.read_plan()  # a damaged plan.json: one line naming it
    journal = read_runs(results.journal_path, results.root)
    if journal.problems:
        warnings.append(f"{side}: {describe_problems(results.journal_path, journal.problems)}")
    if journal.runs.is_empty():
        raise UserError(f"{side} {directory}: no run recorded yet (runs.jsonl is empty or missing)")
    host = results.read_facts(results.host_path, lambda line: warnings.append(f"{side}: {line}"))
    return journal.runs, host


def _describe(directory: Path, host: dict) -> str:
    nvml = next((s for s in host.get("sensors", []) if s.get("name") == "nvml"), {})
    driver = (nvml.get("details") or {}).get("driver_version")
    return (f"`{directory}`: {host.get('hostname', '?')}, {host.get('cpu_model', '?')}, "
            f"revision {str(host.get('greenrt_revision') or '?')[:12]}" + (f", driver {driver}" if driver else ""))


def write_comparison(a: Path, b: Path, out: Path, alpha: float = ALPHA) -> ComparisonFiles:
    warnings: list[str] = []
    runs_a, host_a = _load(Path(a), "A", warnings)
    runs_b, host_b = _load(Path(b), "B", warnings)
    table = compare_sweeps(runs_a, runs_b, alpha)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / "comparison.csv"
    table.write_csv(csv)
    md = out / "comparison.md"
    text = "\n".join([
        "# greenrt compare", "",
        f"- A: {_describe(Path(a), host_a)}", f"- B: {_describe(Path(b), host_b)}", "",
        "Per cell: medians over runs of p50 latency (ms per batch) and energy per inference (J); ratio = B / A "
        f"(below 1: B is lower). p: two-sided Mann-Whitney U over the runs of each side, Holm-adjusted across "
        f"cells per metric; significant at alpha {alpha}. Cells with fewer than two runs on a side are not tested.",
        "", table_markdown(TableBlock("Side by side", table, csv, max_rows=10_000), out), ""])
    tmp = md.with_name(f".{md.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, md)
    return ComparisonFiles(md, csv, table, tuple(warnings))
