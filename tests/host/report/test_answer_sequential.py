"""The answer table's "confidence" of a verdict-rule adaptive sweep is what the sequential rule decided, in the words
of the report's adaptive repetitions table, not a Mann-Whitney p the rule never tested (orchestrator/report/answer.py).
"""
from __future__ import annotations

import numpy as np
import polars as pl

from orchestrator.analysis.adaptive import plan_rounds, rule_from, sequential_verdicts, stopping_table
from orchestrator.analysis.advice import AdviceRequest, advise
from orchestrator.analysis.stopping import runs_used
from orchestrator.report.answer import answer_table
from orchestrator.report.host_caveats import host_caveats

RUNTIMES = [f"rt{i}/x/cpu" for i in range(9)]
TABLE = {"min": 3, "max": 10, "stop": "verdict", "alpha": 0.05}


def _sweep(truth) -> tuple[dict, pl.DataFrame]:
    """The plan of one 9-runtime group up to max, and the runs the rule let the sweep make (latency only)."""
    rng = np.random.default_rng(7)
    full = {f"m|bs1|{r}|fp32": list(truth(r) * np.exp(rng.normal(0, 0.02, TABLE["max"]))) for r in RUNTIMES}
    used = runs_used(rule_from(TABLE), full)
    plan = {"config": {"repetitions": TABLE},
            "runs": [{"run_id": f"r{k}-{r}", "repetition": k,
                      "cell": {"model": "m", "batch_size": 1, "runtime": r, "precision": "fp32"}}
                     for k in range(TABLE["max"]) for r in RUNTIMES]}
    rows = [{"run_id": f"r{k}-{r}", "status": "ok", "model": "m", "batch_size": 1, "runtime": r, "precision": "fp32",
             "latency_p50_ms": full[f"m|bs1|{r}|fp32"][k], "latency_p99_ms": full[f"m|bs1|{r}|fp32"][k] * 1.1,
             "throughput_per_s": 1000 / full[f"m|bs1|{r}|fp32"][k], "fidelity_faithful": True}
            for r in RUNTIMES for k in range(used[f"m|bs1|{r}|fp32"])]
    return plan, pl.DataFrame(rows)


def _confidence(plan: dict, runs: pl.DataFrame, with_rule: bool) -> str:
    verdicts = sequential_verdicts(plan, runs)
    advice = advise(runs, AdviceRequest(objective="latency", sequential=verdicts if with_rule else {}))
    table = answer_table(advice, host_caveats(advice), verdicts if with_rule else None)
    return table["confidence"][0]


def _whys(plan: dict, runs: pl.DataFrame) -> dict[str, str]:
    frame = stopping_table(plan_rounds(plan, runs))
    return dict(zip(frame["runtime"], frame["stopped_why"]))


def test_a_winner_the_rule_separated_is_told_by_the_look_and_holm_p_of_its_runner_up():
    plan, runs = _sweep(lambda r: 10.0 if r == "rt0/x/cpu" else 14.0 + RUNTIMES.index(r))
    said = _confidence(plan, runs, with_rule=True)
    # rt1 is the runner-up (14 ms); the rule separated it at its first look of 8, with 3 runs
    assert said.startswith("sequential rule: runner-up rt1/x/cpu separated at look 1 of 8 (moderated t-test, Holm p ")
    assert "3 runs), every other runtime too" in said
    why = _whys(plan, runs)["rt1/x/cpu"]  # the adaptive repetitions table says the same p and level
    p_and_level = why[why.index("Holm p ") + len("Holm p "):why.index(")")]
    assert f"Holm p {p_and_level}, 3 runs" in said
    # without the rule's answer the table falls back to the rank test, which cannot separate 3 runs a side
    assert _confidence(plan, runs, with_rule=False).startswith("not significant, Holm p")


def test_a_tie_the_rule_settled_says_why_the_tied_runtime_stopped():
    plan, runs = _sweep(lambda r: 10.0 if r in ("rt0/x/cpu", "rt1/x/cpu") else 20.0)
    verdicts = sequential_verdicts(plan, runs)
    answer = verdicts[("m", 1, "fp32")]
    assert answer.verdict == "tie" and set(answer.tied) | {answer.leader} == {"rt0/x/cpu", "rt1/x/cpu"}
    said = _confidence(plan, runs, with_rule=True)
    whys = _whys(plan, runs)
    assert said.startswith("sequential rule, look ")
    # the words are the stopping table's for the runtime it names
    named = next(r for r in ("rt0/x/cpu", "rt1/x/cpu") if said.startswith(f"{r} ", said.index(": ") + 2))
    assert said.endswith(f"{named} {whys[named]}")
    assert "chance to be separated" in said or "not separated after max" in said
