"""A sweep submitted to Slurm in one call: planned, split into shards, its results directory opened, its
environments and artifacts prepared here, then the array of shards and the merge job after them.

The preparation is the caller's (the execution room's, which runs below no scheduler): `submit_sweep` receives it
as a callable, so this room stays free of launchers.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol

from orchestrator.planning.config import SweepConfig
from orchestrator.errors import UserError
from orchestrator.planning.planner import HostCapabilities, Plan, PlannedRun, empty_plan_refusal, plan_sweep
from orchestrator.results.store import ResultsDir
from orchestrator.scheduling import commands
from orchestrator.scheduling.shards import split_runs
from orchestrator.scheduling.slurm import ShardCommand, SlurmOptions, check_options, require_tool

logger = logging.getLogger(__name__)


class PrepareRuns(Protocol):
    """Makes the runs' environments, images and artifacts ready on this host, before any shard starts."""

    def check(self, plan: Plan) -> None:
        """Raise the UserError preparing would end in (the launcher's own refusals), before anything is written."""

    def __call__(self, plan: Plan, results: ResultsDir, runs: list[PlannedRun]) -> None: ...


@dataclass(frozen=True)
class SlurmSweep:
    """A sweep as `greenrt sweep --scheduler slurm` asks for it; the array tasks run the same config."""

    config: SweepConfig
    config_path: Path
    out: Path
    shards: int
    policy: str
    options: SlurmOptions
    launcher: str = "local"
    python: Optional[str] = None
    powercap_root: Optional[str] = None
    gpus: str = "all"


@dataclass(frozen=True)
class Submission:
    """The jobs submitted; none where every run was recorded already (then the caller merges here)."""

    results: ResultsDir
    array_job: Optional[str] = None
    merge_job: Optional[str] = None

    @property
    def submitted(self) -> bool:
        return self.array_job is not None


def greenrt_entry() -> str:
    """This installation's own entry point: the nodes see it at the same path on the shared filesystem."""
    entry = Path(sys.executable).with_name("greenrt")
    return str(entry) if entry.exists() else "greenrt"


def submit_sweep(sweep: SlurmSweep, capabilities: HostCapabilities, prepare: PrepareRuns) -> Submission:
    """Plan the sweep, refuse an impossible split or a bad sbatch option before anything is written, open the
    results directory, prepare here and submit the shards with pending runs and a merge job after them."""
    the_plan = plan_sweep(sweep.config, capabilities)
    empty = empty_plan_refusal(the_plan)
    if empty:
        raise UserError(empty)
    split_runs(the_plan, sweep.shards, sweep.policy)  # refuse an impossible split before anything is written
    check_options(sweep.options)
    require_tool("sbatch")  # the shard files and plan.json appear only where they can be submitted
    prepare.check(the_plan)
    results = ResultsDir(sweep.out)
    extended = results.open_for(the_plan)
    if extended:
        logger.info(extended)
    command = ShardCommand(greenrt_entry(), sweep.config_path.absolute(), sweep.out, sweep.shards, sweep.policy,
                           sweep.launcher, sweep.python, sweep.powercap_root, sweep.gpus)
    jobs = commands.submit(the_plan, results, sweep.shards, sweep.policy, command, sweep.options,
                           lambda runs: prepare(the_plan, results, runs))
    return Submission(results, *(jobs or (None, None)))
