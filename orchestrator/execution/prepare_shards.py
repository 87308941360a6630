"""Preparing a sharded sweep's runs on the submitting host: environments, images, ONNX exports and reference
outputs once, in the shared cache, before Slurm starts N shards that would otherwise race to build them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from orchestrator.execution.artifacts import ArtifactCache
from orchestrator.execution.preparation import Preparation
from orchestrator.execution.sweep import launcher_choice, make_launcher, needed_environments, refuse_python
from orchestrator.measurement.probe import Measurement
from orchestrator.planning.config import SweepConfig
from orchestrator.planning.gpus import GpuDescription
from orchestrator.planning.planner import Plan, PlannedRun
from orchestrator.results.store import ResultsDir


@dataclass(frozen=True)
class PrepareHere:
    """The preparation `scheduling.submission.submit_sweep` calls (its PrepareRuns), with this host's launcher."""

    config: SweepConfig
    launcher: str
    python: Optional[str]
    gpus: tuple[GpuDescription, ...]
    measurement: Measurement

    def check(self, plan: Plan) -> None:
        """The launcher's refusals (no Docker engine, an image absent, interpreters it would ignore), raised before
        the submission writes anything."""
        refuse_python(self.python, plan, self.config)
        launcher_choice(self.launcher, needed_environments(plan), self.python, self.config.interpreters)

    def __call__(self, plan: Plan, results: ResultsDir, runs: list[PlannedRun]) -> None:
        launcher = make_launcher(self.launcher, needed_environments(plan), self.python, self.config, self.gpus)
        Preparation(self.config, launcher, ArtifactCache.for_sweep(launcher, self.config)).prepare(runs)
