"""greenrt advise: the runtime to deploy per model and batch size, the energy-latency front, carbon and cost."""
from __future__ import annotations

import json
from typing import Optional

import typer

from orchestrator.analysis.advice_schema import OBJECTIVES, Advice
from orchestrator.analysis.carbon import GridFigures, InvalidGridFigure
from orchestrator.cli import given_paths
from orchestrator.cli.app import app, console, err, user_errors
from orchestrator.errors import UserError
from orchestrator.report.advice_text import advice_lines
from orchestrator.report.advising import AdviceOptions, AdviceRefused, compute_advice

GRID_HELP = {"grid_intensity_g_per_kwh": "Your grid's carbon intensity, gCO2e per kWh: shows carbon per million "
                                         "inferences (unset: not shown; overrides report.* in the sweep's config).",
             "pue": "Power usage effectiveness (facility / IT energy, at least 1) applied to carbon and cost "
                    "(unset: the measured energy alone, said so).",
             "price_per_kwh": "Electricity price per kWh, in your currency: shows cost per million inferences "
                              "(unset: not shown)."}


def grid_from_options(grid_intensity_g_per_kwh: Optional[float], pue: Optional[float],
                      price_per_kwh: Optional[float]) -> GridFigures:
    try:
        return GridFigures(grid_intensity_g_per_kwh, pue, price_per_kwh)
    except InvalidGridFigure as exc:
        raise UserError(f"--{str(exc).replace('_', '-')}") from None


def print_advice(advice: Advice, said: tuple[str, ...] = ()) -> None:
    """The advice; said: the caveats shown already above it (the end of a sweep shows them first)."""
    for line in advice_lines(advice, said):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def _warn(problems: list[str]) -> None:
    for problem in problems:
        err.print(f"[yellow]warning:[/yellow] {problem}", highlight=False, soft_wrap=True)


@app.command()
def advise(directories: list[str] = typer.Argument(..., metavar="DIR",
                                                   help="Results directories (pooled where the host "
                                                        "signatures match, else compared per host)."),
           model: Optional[list[str]] = typer.Option(None, "--model", help="Only this model (repeatable)."),
           batch_size: Optional[list[int]] = typer.Option(None, "--batch-size", help="Only this batch size (repeatable)."),
           objective: str = typer.Option("energy", help=f"What to minimise: {', '.join(OBJECTIVES)} (energy per "
                                                         "inference; latency where energy is unavailable, said so)."),
           max_p99_ms: Optional[float] = typer.Option(None, help="Exclude runtimes whose median p99 latency per "
                                                                 "batch is above this (ms)."),
           min_throughput: Optional[float] = typer.Option(None, help="Exclude runtimes whose median throughput is "
                                                                     "below this (inferences/s)."),
           faithful_only: bool = typer.Option(True, help="Exclude converted or compiled runtimes whose outputs are "
                                                         "not faithful to their framework's (or not established)."),
           precision: Optional[str] = typer.Option(None, help="Only this precision (default: each on its own)."),
           grid_intensity_g_per_kwh: Optional[float] = typer.Option(None, help=GRID_HELP["grid_intensity_g_per_kwh"]),
           pue: Optional[float] = typer.Option(None, help=GRID_HELP["pue"]),
           price_per_kwh: Optional[float] = typer.Option(None, help=GRID_HELP["price_per_kwh"]),
           as_json: bool = typer.Option(False, "--json", help="Print the advice as JSON (schema: "
                                                             "docs/advise-schema.json).")) -> None:
    """Which runtime to deploy per model and batch size, with its interval, the test against the runner-up, the
    energy-p99 Pareto front, and why the evidence is not enough where it is not."""
    with user_errors():
        folders = given_paths.folders(directories, "results folder")
        given = grid_from_options(grid_intensity_g_per_kwh, pue, price_per_kwh)
        options = AdviceOptions(objective, max_p99_ms, min_throughput, faithful_only, precision, model or (),
                                batch_size or ())
        try:
            outcome = compute_advice(folders, options, given)
        except AdviceRefused as exc:
            _warn(exc.problems)
            raise
        _warn(outcome.problems)
        advice = outcome.advice
    if as_json:
        print(json.dumps(advice.model_dump(mode="json"), indent=1))
    else:
        print_advice(advice)
