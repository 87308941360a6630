"""What `greenrt advise --json` prints: the advice per host, model, batch size and precision, typed.

The JSON schema of `Advice` is docs/advise-schema.json (`python -m orchestrator.analysis.advice_schema` writes it;
a test keeps the two equal). Every figure that could not be measured or computed is null, with the reason in words
beside it: never a zero, never a guess.
"""
from __future__ import annotations

import json
import sys
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
Objective = Literal["energy", "latency", "edp", "carbon", "cost"]
OBJECTIVES: tuple[str, ...] = Objective.__args__  # type: ignore[attr-defined]
# recommended: significantly better than every other candidate; tie: the leader cannot be told apart from the
# runtimes in tied_with; not enough evidence: no comparison could be tested; only candidate: one runtime met the
# constraints; no candidate: none did (or nothing was measured).
Verdict = Literal["recommended", "tie", "not enough evidence", "only candidate", "no candidate"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Estimate(_Model):
    """One runtime's figure over its runs (the sample unit is the run)."""

    metric: str = Field(description="column of the runs table, e.g. j_per_inference, latency_p99_ms")
    unit: str
    runs: int = Field(description="runs with a value")
    median: float | None = Field(description="median over runs: the figure runtimes are ranked and drawn by")
    mean: float | None
    ci_low: float | None = Field(description="95 % percentile-bootstrap interval of the mean over runs")
    ci_high: float | None
    note: str = Field(description="why there is no interval (one run) or no value at all")


class Separation(_Model):
    """The leader against the runner-up: the test that does (or does not) separate them."""

    runner_up: str
    runner_up_median: float
    ratio: float | None = Field(description="runner-up median / leader median (above 1: the leader is lower)")
    test: str = Field(description="the test and its correction")
    comparisons: int = Field(description="tests in the Holm family: the leader against each other candidate")
    p_value: float | None
    p_holm: float | None
    cliffs_delta: float | None = Field(description="P(leader > runner-up) - P(leader < runner-up) over run pairs")
    magnitude: str | None
    significant: bool | None = Field(description="null: not tested (fewer than 2 runs on a side)")
    note: str


class RuntimePoint(_Model):
    runtime: str
    runs: int = Field(description="successful runs")
    failed_runs: int
    energy: Estimate = Field(description="energy per inference (J), all measured domains")
    p99: Estimate = Field(description="p99 latency per batch (ms)")
    p50_ms: float | None = Field(description="median over runs of the p50 latency per batch")
    throughput_per_s: float | None = Field(description="median over runs, inferences per second")
    objective: Estimate | None = Field(description="the figure the cell's objective ranks by; null when the "
                                                   "runtime has no value for it")
    carbon_g_per_million: float | None = Field(description="from the median energy; null unless a grid intensity is set")
    cost_per_million: float | None = Field(description="from the median energy; null unless a price is set")
    fidelity: str = Field(description="faithful, unfaithful, outside quantized bounds (a quantized run outside its "
                          "precision's thresholds), not established, or native (nothing to compare)")
    eligible: bool = Field(description="meets every constraint and has a value for the objective")
    excluded_because: str | None
    on_front: bool | None = Field(description="on the energy-p99 Pareto front of the eligible runtimes; null: "
                                              "not placed (ineligible, or no energy figure)")
    dominated_by: list[str] = Field(description="eligible runtimes at least as good on both figures, better on one")


class ClientChoice(_Model):
    """The client language of the leader's runtime, where the cell measured it from several (runners/clients.py)."""

    base: str = Field(description="the leader's runtime id without its @client suffix")
    clients: list[str] = Field(description="the runtime ids of that base among the candidates, one per client")
    leader: str = Field(description="the client with the lowest median on the cell's objective")
    verdict: Literal["significant", "no difference", "untested"] = Field(
        description="significant: the leader is significantly lower than every other client (Mann-Whitney over "
                    "runs, Holm over its comparisons); no difference: not told apart at this sample size; "
                    "untested: fewer than 2 runs on a side")
    use: str | None = Field(description="the client to deploy: the leader where significant, else null (the "
                                        "client does not matter at this sample size)")
    runner_up: str | None
    ratio: float | None = Field(description="runner-up median / leader median")
    p_holm: float | None
    words: str = Field(description="the choice in one line")


class CellAdvice(_Model):
    host: str = Field(description="host signature the runs were measured on")
    sources: list[str] = Field(description="results directories the runs came from")
    model: str
    batch_size: int
    precision: str
    objective: Objective = Field(description="what was asked")
    objective_used: Objective = Field(description="what was ranked by (latency where energy is unavailable)")
    metric: str
    unit: str
    verdict: Verdict
    recommended: str | None = Field(description="the runtime to deploy; null for a tie, too little evidence or none")
    leader: str | None = Field(description="lowest median among the candidates, whatever the verdict")
    figure: Estimate | None = Field(description="the leader's figure on the objective")
    tied_with: list[str] = Field(description="runtimes the leader is not significantly better than (or untested)")
    separation: Separation | None
    front: list[str] = Field(description="Pareto set on (energy per inference, p99 latency), by increasing energy")
    front_note: str = Field(description="what the front is of, or why there is none")
    runtimes: list[RuntimePoint]
    reasons: list[str] = Field(description="why the evidence is not enough, what was excluded, what fell back")
    client: ClientChoice | None = Field(None, description="which client language to drive the leader's runtime "
                                                          "from; null unless the cell measured it from several")


class HostGroup(_Model):
    signature: str
    sources: list[str]


class Constraints(_Model):
    max_p99_ms: float | None
    min_throughput: float | None
    faithful_only: bool
    precision: str | None
    models: list[str] | None
    batch_sizes: list[int] | None


class Grid(_Model):
    grid_intensity_g_per_kwh: float | None
    pue: float | None
    price_per_kwh: float | None
    carbon_label: str | None = Field(description="the figures carbon was computed with; null: carbon not shown")
    cost_label: str | None = Field(description="the figures cost was computed with; null: cost not shown")


class Advice(_Model):
    schema_version: int = SCHEMA_VERSION
    objective: Objective
    alpha: float
    constraints: Constraints
    grid: Grid
    hosts: list[HostGroup]
    pooling: str = Field(description="which directories were pooled, or why they were compared per host")
    cells: list[CellAdvice]


def json_schema_text() -> str:
    return json.dumps(Advice.model_json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # python -m orchestrator.analysis.advice_schema > docs/advise-schema.json
    sys.stdout.write(json_schema_text())
