"""greenrt advise: the runtime to deploy per model and batch size, the energy-latency front, carbon and cost."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from orchestrator.analysis.advice import AdviceRequest, advise as make_advice
from orchestrator.analysis.advice_schema import OBJECTIVES, Advice
from orchestrator.analysis.carbon import GridFigures, InvalidGridFigure
from orchestrator.cli.app import app, console, err, user_errors
from orchestrator.errors import UserError
from orchestrator.report.advice_text import advice_lines
from orchestrator.report.pooled import read_directories

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


def _check_present(name: str, asked: list, present: list) -> None:
    missing = [a for a in asked if a not in present]
    if missing:
        raise UserError(f"{name} {', '.join(map(str, missing))}: no run of it in these directories; valid: "
                        f"{', '.join(map(str, sorted(present))) or 'none (no runs)'}")


def compute_advice(directories: list[Path], request_options: dict, given: GridFigures,
                   say_problems: bool = True) -> Advice:
    """Every check first (one line, exit 2), then the advice: nothing is written either way."""
    objective = request_options.get("objective", "energy")
    if objective not in OBJECTIVES:
        raise UserError(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")
    for name in ("max_p99_ms", "min_throughput"):
        value = request_options.get(name)
        if value is not None and not (value > 0 and value != float("inf")):
            raise UserError(f"--{name.replace('_', '-')}: {value!r} is not a finite positive number")
    pooled = read_directories(directories, given)
    for problem in pooled.problems if say_problems else ():
        err.print(f"[yellow]warning:[/yellow] {problem}", highlight=False, soft_wrap=True)
    grid = pooled.grid.overridden_by(given)
    if objective == "carbon" and not grid.carbon_shown:
        raise UserError("--objective carbon needs --grid-intensity-g-per-kwh (or report.grid_intensity_g_per_kwh "
                        "in the sweep's config): greenrt assumes no grid")
    if objective == "cost" and not grid.cost_shown:
        raise UserError("--objective cost needs --price-per-kwh (or report.price_per_kwh in the sweep's config)")
    runs = pooled.runs
    present = {c: (runs[c].unique().to_list() if not runs.is_empty() else []) for c in ("model", "batch_size", "precision")}
    _check_present("--model", request_options.get("models") or [], present["model"])
    _check_present("--batch-size", request_options.get("batch_sizes") or [], present["batch_size"])
    if request_options.get("precision"):
        _check_present("--precision", [request_options["precision"]], present["precision"])
    request = AdviceRequest(objective=objective, max_p99_ms=request_options.get("max_p99_ms"),
                            min_throughput=request_options.get("min_throughput"),
                            faithful_only=request_options.get("faithful_only", True),
                            precision=request_options.get("precision"),
                            models=tuple(request_options["models"]) if request_options.get("models") else None,
                            batch_sizes=(tuple(request_options["batch_sizes"]) if request_options.get("batch_sizes")
                                         else None), grid=grid)
    return make_advice(runs, request)


def print_advice(advice: Advice) -> None:
    for line in advice_lines(advice):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def show_sweep_advice(directory: Path) -> None:
    """What a sweep ends with: the default advice (energy, faithful only) for each model and batch size."""
    with user_errors():
        # The sweep's tables and report have just named any damaged file: not a second time.
        print_advice(compute_advice([directory], {}, GridFigures(), say_problems=False))


@app.command()
def advise(directories: list[Path] = typer.Argument(..., help="Results directories (pooled where the host "
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
        given = grid_from_options(grid_intensity_g_per_kwh, pue, price_per_kwh)
        advice = compute_advice(directories, {"objective": objective, "max_p99_ms": max_p99_ms,
                                              "min_throughput": min_throughput, "faithful_only": faithful_only,
                                              "precision": precision, "models": model, "batch_sizes": batch_size},
                                given)
    if as_json:
        print(json.dumps(advice.model_dump(mode="json"), indent=1))
    else:
        print_advice(advice)
