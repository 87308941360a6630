"""The verbs that read results: report, merge, status, compare; and how what a sweep ends with is shown."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli import given_paths
from orchestrator.cli.advise import GRID_HELP, grid_from_options, print_advice
from orchestrator.cli.app import app, console, err, fmt, user_errors
from orchestrator.errors import UserError
from orchestrator.report.finish import Finished, finish
from orchestrator.results.store import ResultsDir
from orchestrator.scheduling import commands as sharded


def show_finished(done: Finished) -> None:
    """What `finish` wrote and found, as the terminal has always shown it; exit 2 where the advice was refused."""
    for again in done.reaccounted:
        console.print(f"accounted again: {again.run_id}: {again.status} ({again.detail})", markup=False)
    if done.journal_warning:
        err.print(f"[yellow]warning:[/yellow] {escape(done.journal_warning)}", highlight=False, soft_wrap=True)
    if done.busy:  # once, above the cells: the runs measured on a busy host
        err.print(f"[yellow]busy host:[/yellow] {escape(done.busy)}", highlight=False, soft_wrap=True)
    caveats = done.report.caveats  # what holds for every row below, said once here and in no row
    for line in caveats:
        if line == done.busy:
            continue  # said above, in yellow
        console.print(f"caveat: {line}", markup=False, highlight=False, soft_wrap=True)
    if not done.summary.is_empty():
        table = Table(title="cells (median over repetitions)", title_justify="left")
        adaptive = "stopped_by" in done.summary.columns  # an adaptive sweep: what stopped each cell
        for column in ("model", "batch", "runtime", "precision", "ok/runs", "failed", "p50 ms", "inferences/s",
                       "J/inference", *(["stopped by"] if adaptive else [])):
            table.add_column(column)
        for row in done.summary.iter_rows(named=True):
            energy = (f"{row['j_per_inference']:.4g}" if row["j_per_inference"] is not None
                      else "n/a" if done.report.energy_note else f"n/a ({row['energy_status']})")
            stopped = [f"{row['stopped_by'] or 'active'} after {row['runs_used']}"] if adaptive else []
            table.add_row(row["model"], str(row["batch_size"]), row["runtime"], row["precision"],
                          f"{row['ok']}/{row['runs']}", str(row["failed"]),
                          fmt(row["latency_p50_ms"]), fmt(row["throughput_per_s"]), energy, *stopped)
        console.print(table)
    console.print(f"tables: {done.tables_dir}/ ({', '.join(done.tables)})")
    files = done.report
    for line in files.warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(line)}", highlight=False, soft_wrap=True)
    console.print("[bold]top findings[/bold]")
    for line in files.findings:
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"report: {files.markdown} and {files.html.name} ({len(files.figures)} figures, "
                  f"{len(files.tables)} tables as CSV under {files.markdown.parent / 'tables'}/)")
    if done.advice is not None:
        print_advice(done.advice, said=caveats)
    if done.advice_error is not None:
        with user_errors():
            raise UserError(done.advice_error)


def merge_and_finish(directory: Path) -> None:
    """A sharded sweep's shards merged into one journal (the shards' table shown), then finished."""
    results = ResultsDir(directory)
    results.read_plan()  # one line naming plan.json when it is missing or damaged
    sharded.merge(results, console)
    show_finished(finish(directory))


@app.command()
def merge(directory: str = typer.Argument(..., metavar="DIR", help="A sharded sweep's results directory.")) -> None:
    """Union the shards' journals into DIR/runs.jsonl (Slurm state and missing runs per shard), then tables and report."""
    with user_errors():
        merge_and_finish(given_paths.results_folder(directory, writes=True))


@app.command()
def status(directory: str = typer.Argument(..., metavar="DIR", help="A sweep's results directory (sharded or not)."),
           wait: bool = typer.Option(False, help="Block until the merge job has finished (exit 0: it completed)."),
           interval: float = typer.Option(5.0, min=0.1, help="Seconds between polls with --wait.")) -> None:
    """Progress (per shard: its Slurm state and its journal's) and one line per damaged file of the directory."""
    with user_errors():
        code = sharded.status(ResultsDir(given_paths.results_folder(directory, writes=False)), wait, interval, console)
    raise typer.Exit(code)


@app.command()
def report(directory: str = typer.Argument(..., metavar="DIR", help="A sweep's results directory."),
           trace_run: Optional[str] = typer.Option(None, help="Run id whose power trace is drawn "
                                                                 "(default: the first run with samples)."),
           grid_intensity_g_per_kwh: Optional[float] = typer.Option(None, help=GRID_HELP["grid_intensity_g_per_kwh"]),
           pue: Optional[float] = typer.Option(None, help=GRID_HELP["pue"]),
           price_per_kwh: Optional[float] = typer.Option(None, help=GRID_HELP["price_per_kwh"])) -> None:
    """Merge a sweep's journal into tables, write DIR/report/ (report.md, report.html, figures, CSV), show findings."""
    with user_errors():
        folder = given_paths.results_folder(directory, writes=True)
        trace_run = given_paths.run_id(trace_run, "--trace-run")
        grid = grid_from_options(grid_intensity_g_per_kwh, pue, price_per_kwh)
        done = finish(folder, trace_run=trace_run, grid=grid, reaccount=True)
    show_finished(done)


@app.command()
def compare(a: str = typer.Argument(..., metavar="A", help="Results directory of sweep A."),
            b: str = typer.Argument(..., metavar="B", help="Results directory of sweep B."),
            out: Optional[str] = typer.Option(None, "--out", "-o", metavar="DIR",
                                               help="Where comparison.md and .csv go (default: B/compare-<A's name>).")
            ) -> None:
    """Two sweeps side by side (two hosts, two driver versions): per cell medians, ratio B/A, significance."""
    with user_errors():
        from orchestrator.report.compare import write_comparison

        first, second = (given_paths.results_folder(folder, writes=False) for folder in (a, b))
        target = given_paths.out_folder(out if out is not None else str(second / f"compare-{first.resolve().name}"))
        files = write_comparison(first, second, target)
        for line in files.warnings:
            err.print(f"[yellow]warning:[/yellow] {escape(line)}", highlight=False, soft_wrap=True)
        table = files.table
        tested = table.filter(table["latency_significant"].is_not_null())
        console.print(f"{table.height} cells; latency differs significantly in "
                      f"{int(tested['latency_significant'].sum())} of {tested.height} tested")
        console.print(f"comparison: {files.markdown} and {files.csv.name}")
