"""The advice over one or more results directories: every check of the request first, then the advice.

What `greenrt advise`, the end of a sweep and the Python API call; nothing is written and nothing is printed: the
journal lines that could not be read come back beside the advice for the caller to show.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import polars as pl

from orchestrator.analysis.advice import AdviceRequest, advise as make_advice
from orchestrator.analysis.advice_schema import OBJECTIVES, Advice
from orchestrator.analysis.carbon import GridFigures
from orchestrator.errors import UserError
from orchestrator.report.pooled import read_directories


@dataclass(frozen=True)
class AdviceOptions:
    """What to advise on: the objective, the constraints and the slice of models, batch sizes and precision."""

    objective: str = "energy"
    max_p99_ms: Optional[float] = None
    min_throughput: Optional[float] = None
    faithful_only: bool = True
    precision: Optional[str] = None
    models: Sequence[str] = ()
    batch_sizes: Sequence[int] = ()


@dataclass(frozen=True)
class AdviceOutcome:
    """The advice and the journal lines of the directories that could not be read (each said once)."""

    advice: Advice
    problems: list[str] = field(default_factory=list)


class AdviceRefused(UserError):
    """A request that the directories cannot answer, with the journal problems read before it was refused."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


def _check_present(name: str, asked: Sequence, present: list) -> None:
    missing = [a for a in asked if a not in present]
    if missing:
        raise UserError(f"{name} {', '.join(map(str, missing))}: no run of it in these directories; valid: "
                        f"{', '.join(map(str, sorted(present))) or 'none (no runs)'}")


def compute_advice(directories: Sequence[Path], options: AdviceOptions = AdviceOptions(),
                   given: GridFigures = GridFigures()) -> AdviceOutcome:
    """Advise which runtime to deploy per model and batch size over `directories` (pooled per host signature).

    given: grid figures from the caller, overriding the sweeps' [report] ones. Every check comes first and raises
    a UserError of one line naming the valid choices (unknown objective, a constraint that is not a finite positive
    number, carbon or cost without its figure, a model, batch size or precision with no run).
    """
    if options.objective not in OBJECTIVES:
        raise UserError(f"unknown objective {options.objective!r}; valid: {', '.join(OBJECTIVES)}")
    for name in ("max_p99_ms", "min_throughput"):
        value = getattr(options, name)
        if value is not None and not (value > 0 and value != float("inf")):
            raise UserError(f"--{name.replace('_', '-')}: {value!r} is not a finite positive number")
    pooled = read_directories(list(directories), given)
    try:
        grid = pooled.grid.overridden_by(given)
        return AdviceOutcome(_advise_pooled(pooled.runs, grid, options, pooled.sequential),
                             list(pooled.problems))
    except UserError as exc:
        raise AdviceRefused(str(exc), list(pooled.problems)) from None


def _advise_pooled(runs: pl.DataFrame, grid: GridFigures, options: AdviceOptions, sequential: dict) -> Advice:
    if options.objective == "carbon" and not grid.carbon_shown:
        raise UserError("--objective carbon needs --grid-intensity-g-per-kwh (or report.grid_intensity_g_per_kwh "
                        "in the sweep's config): greenrt assumes no grid")
    if options.objective == "cost" and not grid.cost_shown:
        raise UserError("--objective cost needs --price-per-kwh (or report.price_per_kwh in the sweep's config)")
    present = {c: (runs[c].unique().to_list() if not runs.is_empty() else []) for c in ("model", "batch_size", "precision")}
    _check_present("--model", options.models, present["model"])
    _check_present("--batch-size", options.batch_sizes, present["batch_size"])
    if options.precision:
        _check_present("--precision", [options.precision], present["precision"])
    request = AdviceRequest(objective=options.objective, max_p99_ms=options.max_p99_ms,
                            min_throughput=options.min_throughput, faithful_only=options.faithful_only,
                            precision=options.precision, models=tuple(options.models) or None,
                            batch_sizes=tuple(options.batch_sizes) or None, grid=grid, sequential=sequential)
    return make_advice(runs, request)
