"""greenrt from Python (a notebook, a script): the same functions the command line calls, so the two cannot drift.

    from orchestrator import api
    runs = api.load_runs("results/study")        # one row per run (polars)
    cells = api.load_cells("results/study")      # per cell and metric: median, IQR, mean with its 95% interval
    advice = api.advise(["results/study"])      # which runtime to deploy, per model and batch size

Reading: `load_runs`, `load_cells`, `load_samples`. Measuring: `plan`, `sweep`. Deciding: `advise`, and `finish`
(tables, report and advice of a results directory, as `greenrt report` writes them). Mistakes raise
`orchestrator.errors.UserError` with one line each, the lines the command line prints. Progress lines of a sweep go to
the `orchestrator` logger (`logging.basicConfig(level=logging.INFO)` shows them).
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import polars as pl

from orchestrator.analysis.advice_schema import Advice
from orchestrator.analysis.carbon import GridFigures
from orchestrator.analysis.stats import cell_statistics
from orchestrator.errors import UserError
from orchestrator.execution.sweep import SweepSettings, run_gpus, run_sweep, selected_capabilities
from orchestrator.measurement.probe import probe
from orchestrator.planning.config import SweepConfig, load_config, parse_config
from orchestrator.planning.planner import Plan, PlannedRun, plan_sweep
from orchestrator.report.advising import AdviceOptions, compute_advice
from orchestrator.report.finish import Finished, finish
from orchestrator.results.record import RunRecord
from orchestrator.results.store import ResultsDir
from orchestrator.results.results_files import samples_file
from orchestrator.results.tables import read_runs

__all__ = ["AdviceOptions", "Finished", "UserError", "advise", "finish", "load_cells", "load_runs", "load_samples",
           "plan", "sweep"]

logger = logging.getLogger(__name__)
ConfigLike = Union[str, Path, dict, SweepConfig]


def _results(directory: Union[str, Path]) -> ResultsDir:
    results = ResultsDir(Path(directory))
    results.read_plan()  # one line naming plan.json when this is not a results directory
    return results


def load_runs(directory: Union[str, Path]) -> pl.DataFrame:
    """One row per run of a results directory; the latest record of each run wins.

    Columns: cell keys, status, failure, latency percentiles, throughput, energy per channel and per inference,
    fidelity; the table `greenrt report` writes to tables/runs.parquet.
    """
    results = _results(directory)
    return read_runs(results.journal_path, results.root).runs


def load_cells(directory: Union[str, Path], seed: int = 0) -> pl.DataFrame:
    """Per cell (model, batch size, runtime, precision) and metric, over its successful repetitions.

    n, median, q1/q3/IQR, mean and its 95% bootstrap interval (ci_low, ci_high), and a note where a value is missing
    and why. Long format: one row per cell and metric; `metric` names the runs table's column and `unit` its unit.
    """
    return cell_statistics(load_runs(directory), seed=seed)


def load_samples(directory: Union[str, Path], run_id: str) -> pl.DataFrame:
    """The raw sensor samples of one run.

    Columns: t_ns on the host's monotonic clock, channel, domain, energy_j, power_w, temperature, clocks, throttle
    reasons. A UserError names the run ids where the run or its samples are absent.
    """
    results = _results(directory)
    journal = read_runs(results.journal_path, results.root, trace_run=run_id)
    record: Optional[RunRecord] = next((r for r in reversed(journal.shown) if r.run_id == run_id), None)
    if record is None:
        known = journal.runs["run_id"].to_list() if not journal.runs.is_empty() else []
        raise UserError(f"run {run_id!r}: not in {results.journal_path}; valid: "
                        f"{', '.join(known[:10]) or 'none (no runs)'}{' ...' if len(known) > 10 else ''}")
    path, refused = samples_file(results.root, record.samples_path)
    if refused:  # outside the results folder, a link, a FIFO: never read
        raise UserError(f"run {run_id!r}: {refused}")
    if path is None:
        raise UserError(f"run {run_id!r}: no samples kept ({record.status}; energy "
                        f"{record.energy.status})")
    return pl.read_parquet(path)


def _config(config: ConfigLike) -> SweepConfig:
    if isinstance(config, SweepConfig):
        return config
    if isinstance(config, dict):
        return parse_config(config, source="api")
    return load_config(config)


def plan(config: ConfigLike, powercap_root: Optional[str] = None, gpus: str = "all",
         skip_oversized: bool = False) -> Plan:
    """What a sweep of `config` (a TOML path, a dict shaped like one, or a SweepConfig) would measure on this host.

    `plan.runs` in their seeded order, `plan.skipped` with the reason of each cell that cannot run here.
    """
    cfg = _config(config)
    measurement = probe(powercap_root)
    return plan_sweep(cfg, selected_capabilities(measurement, run_gpus(gpus, measurement)), skip_oversized)


class _LoggedSweep:
    """A sweep's progress on the `orchestrator.api` logger (no progress bar; the sweep's lines are logged too)."""

    @contextmanager
    def runs(self, total: int) -> Iterator["_LoggedSweep"]:
        yield self

    def starting(self, run: PlannedRun) -> None:
        logger.info("run %s: %s bs%d %s", run.run_id, run.cell.model, run.cell.batch_size, run.cell.runtime)

    def finished(self, run: PlannedRun, record: RunRecord) -> None:
        if not record.ok and record.failure:
            logger.warning("failed %s: %s: %s", run.run_id, record.failure.kind, record.failure.message[:300])


def sweep(config: ConfigLike, out: Union[str, Path], launcher: str = "auto", python: Optional[str] = None,
          gpus: str = "all", powercap_root: Optional[str] = None, fresh: bool = False,
          skip_oversized: bool = False) -> Finished:
    """Measure a sweep into `out` (resumed where it has runs already), then finish it as `greenrt sweep` does.

    Finishing writes the tables, the report and the default advice (`Finished.advice`). A signal or a full disk
    stops it: the stop line is logged as an error and click's Exit carries the status the command line would exit
    with (`exit_code`).
    """
    settings = SweepSettings(_config(config), Path(out).absolute(), launcher, python, gpus, fresh=fresh,
                             skip_oversized=skip_oversized)
    outcome = run_sweep(settings, probe(powercap_root), _LoggedSweep())
    return finish(outcome.results.root, advise=True)


def advise(directories: Union[str, Path, Sequence[Union[str, Path]]], objective: str = "energy",
           max_p99_ms: Optional[float] = None, min_throughput: Optional[float] = None, faithful_only: bool = True,
           precision: Optional[str] = None, models: Sequence[str] = (), batch_sizes: Sequence[int] = (),
           grid_intensity_g_per_kwh: Optional[float] = None, pue: Optional[float] = None,
           price_per_kwh: Optional[float] = None) -> Advice:
    """Which runtime to deploy per model and batch size, as `greenrt advise` answers it.

    `objective` is energy, latency, carbon or cost; runs are pooled across directories only where their hosts
    match. The Advice's `model_dump()` is the JSON of `greenrt advise --json` (docs/advise-schema.json).
    """
    if isinstance(directories, (str, Path)):
        directories = [directories]
    grid = GridFigures(grid_intensity_g_per_kwh, pue, price_per_kwh)
    options = AdviceOptions(objective, max_p99_ms, min_throughput, faithful_only, precision, tuple(models),
                            tuple(batch_sizes))
    outcome = compute_advice([Path(d) for d in directories], options, grid)
    for problem in outcome.problems:
        logger.warning(problem)
    return outcome.advice
