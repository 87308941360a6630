"""How a sweep's results directory is finished: read the journal once, account again the runs whose accounting
failed, write the tables, write the report, advise.

`greenrt sweep`, `merge`, `report` and the Slurm path call `finish` and present what it returns; the Python API
calls it too. Nothing here prints: warnings and findings come back as lines.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import polars as pl

from orchestrator.analysis.advice_schema import Advice
from orchestrator.analysis.carbon import GridFigures
from orchestrator.errors import UserError
from orchestrator.analysis.adaptive import plan_rounds
from orchestrator.execution.reaccount import Reaccounted, reaccount_failed
from orchestrator.execution.rounds import write_stopping
from orchestrator.report.advising import compute_advice
from orchestrator.report.busy_text import busy_line
from orchestrator.report.stopping_section import with_stopping
from orchestrator.results.journal import describe_problems
from orchestrator.results.store import ResultsDir
from orchestrator.results.tables import cell_summary, read_runs, write_tables

if TYPE_CHECKING:  # matplotlib loads in seconds: build.py is imported only when a report is made
    from orchestrator.report.report_files import ReportFiles


@dataclass(frozen=True)
class Finished:
    """What finishing a results directory wrote and found, for the caller to present."""

    root: Path
    tables_dir: Path
    tables: list[str]  # the names written under tables_dir, sorted
    summary: pl.DataFrame  # per cell: runs ok/failed, median latency, throughput, energy per inference
    report: "ReportFiles"  # report.md/.html, figures, CSV tables, findings and the report's own warnings
    reaccounted: list[Reaccounted] = field(default_factory=list)
    journal_warning: Optional[str] = None  # the journal lines that could not be read, in one line
    advice: Optional[Advice] = None  # the default advice (energy, faithful only), when it was asked for
    advice_error: Optional[str] = None  # why there is no advice, when it was asked for and refused
    busy: Optional[str] = None  # the runs measured on a busy host, in one line (report/busy_text.py)

    @property
    def warnings(self) -> list[str]:
        """Every warning, in the order the CLI shows them."""
        return ([self.journal_warning] if self.journal_warning else []) + ([self.busy] if self.busy else []) \
            + list(self.report.warnings)


def finish(directory: Path | str, *, trace_run: Optional[str] = None, grid: Optional[GridFigures] = None,
           reaccount: bool = False, advise: bool = False) -> Finished:
    """Finish a results directory: tables (parquet + csv under tables/), the report (report/), and optionally the
    re-accounting of runs whose accounting failed (appended to the journal) and the default advice.

    Raises UserError (one line) when the directory has no readable plan.json, its journal is not a regular file, or
    trace_run names no run of the journal, before anything is written.
    """
    from orchestrator.report.build import build_report

    results = ResultsDir(Path(directory))
    plan = results.read_plan()
    # The journal is read once for the tables, the summary and the report (200,000 runs: a gigabyte of JSON).
    journal = read_runs(results.journal_path, results.root, trace_run)
    if trace_run is not None and not any(r.run_id == trace_run for r in journal.shown):
        # Refused before anything is written (tables, report, a re-accounted record).
        raise UserError(f"--trace-run {trace_run}: no such run in {results.journal_path}; valid: a run id of "
                        f"that journal (`greenrt status {results.root}` lists the runs)")
    redone = reaccount_failed(results, journal.accounting_failed) if reaccount else []
    if any(done.status != "failed-again" for done in redone):  # the journal has grown: read it again
        journal = read_runs(results.journal_path, results.root, trace_run)
    warning = describe_problems(results.journal_path, journal.problems) if journal.problems else None
    written = write_tables(results.tables_dir, [], plan, runs=journal.runs)
    rounds = plan_rounds(plan, journal.runs)
    if rounds is not None:  # derived, written again from the whole journal (a merge's, a resumed sweep's)
        write_stopping(results.root, rounds)
    summary = with_stopping(cell_summary(journal.runs), rounds)
    files = build_report(results.root, trace_run=trace_run, grid=grid, journal=journal)
    advice = advice_error = None
    if advise:
        try:  # the tables and report have just named any damaged file: their problems are not repeated
            advice = compute_advice([results.root]).advice
        except UserError as exc:
            advice_error = str(exc)
    return Finished(results.root, results.tables_dir, sorted(written), summary, files, redone, warning, advice,
                    advice_error, busy_line(journal.runs))
