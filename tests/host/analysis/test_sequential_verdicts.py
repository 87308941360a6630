"""A verdict-rule adaptive sweep is answered by the test it stopped on (orchestrator/analysis/adaptive.py
sequential_verdicts), not by the fixed design's rank test, which cannot reach alpha with the few runs a separated
runtime keeps: without this, the report and the advice would call a clear winner a tie.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from orchestrator.analysis.adaptive import rule_from, sequential_verdicts
from orchestrator.analysis.advice import AdviceRequest, advise
from orchestrator.analysis.best import best_runtimes
from orchestrator.analysis.stopping import runs_used

RUNTIMES = [f"rt{i}/x/cpu" for i in range(9)]
TABLE = {"min": 3, "max": 10, "stop": "verdict", "alpha": 0.05}


def _truth(runtime: str) -> float:
    return 10.0 if runtime == "rt0/x/cpu" else 14.0 + RUNTIMES.index(runtime)  # rt0 clearly lowest


def sweep(table=TABLE, truth=_truth):
    """The plan of a 9-runtime group up to max, and the runs the rule lets the sweep make (latency only)."""
    rng = np.random.default_rng(7)
    cells = {r: f"m|bs1|{r}|fp32" for r in RUNTIMES}
    full = {cells[r]: list(truth(r) * np.exp(rng.normal(0, 0.02, table["max"]))) for r in RUNTIMES}
    used = runs_used(rule_from(table), full)
    plan = {"config": {"repetitions": table},
            "runs": [{"run_id": f"r{k}-{r}", "repetition": k,
                      "cell": {"model": "m", "batch_size": 1, "runtime": r, "precision": "fp32"}}
                     for k in range(table["max"]) for r in RUNTIMES]}
    rows = [{"run_id": f"r{k}-{r}", "status": "ok", "model": "m", "batch_size": 1, "runtime": r, "precision": "fp32",
             "latency_p50_ms": full[cells[r]][k], "latency_p99_ms": full[cells[r]][k] * 1.1,
             "throughput_per_s": 1000 / full[cells[r]][k], "fidelity_faithful": True}
            for r in RUNTIMES for k in range(used[cells[r]])]
    return plan, pl.DataFrame(rows), used


def test_a_clear_winner_stopped_early_is_best_by_the_rule_where_the_rank_test_says_tie():
    plan, runs, used = sweep()
    assert max(used.values()) < 6  # the rule stopped every cell well before max
    verdicts = sequential_verdicts(plan, runs)
    answer = verdicts[("m", 1, "fp32")]
    assert (answer.verdict, answer.leader, answer.metric) == ("best", "rt0/x/cpu", "latency_p50_ms")
    rank = best_runtimes(runs, objectives={"latency": "latency_p50_ms"}).row(0, named=True)
    assert rank["verdict"] == "tie"  # Mann-Whitney with Holm over 8 comparisons at 3 to 5 runs a side
    seq = best_runtimes(runs, objectives={"latency": "latency_p50_ms"}, sequential=verdicts).row(0, named=True)
    assert (seq["verdict"], seq["best"], seq["tied_with"]) == ("best", "rt0/x/cpu", "")
    assert "sequential test" in seq["note"]
    cell = advise(runs, AdviceRequest(objective="latency", sequential=verdicts)).cells[0]
    assert cell.verdict == "recommended" and cell.recommended == "rt0/x/cpu"


def test_a_true_tie_stays_a_tie_and_fixed_or_precision_sweeps_get_no_sequential_answer():
    plan, runs, _ = sweep(truth=lambda runtime: 10.0)
    answer = sequential_verdicts(plan, runs).get(("m", 1, "fp32"))
    assert answer is None or answer.verdict == "tie"
    for repetitions in (10, {"min": 3, "max": 10, "stop": "precision", "target": 0.02}):
        assert sequential_verdicts({**plan, "config": {"repetitions": repetitions}}, runs) == {}


def test_the_rule_answers_only_for_the_runtimes_it_compared():
    """Advice restricted to fewer runtimes (a constraint, a filter) is not what the rule compared: rank test."""
    plan, runs, _ = sweep()
    verdicts = sequential_verdicts(plan, runs)
    fewer = runs.filter(pl.col("runtime") != "rt8/x/cpu")
    row = best_runtimes(fewer, objectives={"latency": "latency_p50_ms"}, sequential=verdicts).row(0, named=True)
    assert "sequential test" not in row["note"]


def test_a_tie_settled_by_the_rule_is_not_told_to_run_more_repetitions():
    plan, runs, _ = sweep(truth=lambda runtime: 10.0)
    verdicts = sequential_verdicts(plan, runs)
    assert verdicts[("m", 1, "fp32")].verdict == "tie"  # seeded: every cell settled, some at max, some by futility
    cell = advise(runs, AdviceRequest(objective="latency", sequential=verdicts)).cells[0]
    assert cell.verdict == "tie" and "sequential test" in cell.reasons[0]
    assert not any("run at least" in reason for reason in cell.reasons)


def test_the_advice_line_gives_the_rules_own_test_not_a_rank_test_that_contradicts_the_verdict():
    from orchestrator.report.advice_text import separation_words

    plan, runs, _ = sweep()
    cell = advise(runs, AdviceRequest(objective="latency", sequential=sequential_verdicts(plan, runs))).cells[0]
    s = cell.separation
    assert cell.verdict == "recommended" and s.significant is True and s.p_value is None
    assert s.p_holm is not None and "sequential moderated t-test" in s.test and "look 1 of" in s.test
    words = separation_words(cell)
    assert "Mann-Whitney" not in words and words.endswith(": significant")


def test_a_generate_call_group_without_energy_is_judged_on_tpot_the_figure_advise_ranks_it_by():
    """rt0 decodes fastest (lowest TPOT) but prefills slowest, so its whole generate call is the slowest: the rule
    must judge TPOT, or the sweep would stop on one ranking and advise would answer another."""
    rng = np.random.default_rng(3)
    n_new, table = 64, {"min": 3, "max": 6, "stop": "verdict", "alpha": 0.05}
    tpot = {r: 10.0 if r == "rt0/x/cpu" else 14.0 + RUNTIMES.index(r) for r in RUNTIMES}
    ttft = {r: 2000.0 if r == "rt0/x/cpu" else 100.0 for r in RUNTIMES}
    plan = {"config": {"repetitions": table},
            "runs": [{"run_id": f"r{k}-{r}", "repetition": k,
                      "cell": {"model": "m", "batch_size": 1, "runtime": r, "precision": "fp32"}}
                     for k in range(table["max"]) for r in RUNTIMES]}
    rows = []
    for r in RUNTIMES:
        for k in range(table["max"]):
            t = tpot[r] * float(np.exp(rng.normal(0, 0.02)))
            call = ttft[r] + n_new * t
            rows.append({"run_id": f"r{k}-{r}", "status": "ok", "model": "m", "batch_size": 1, "runtime": r,
                         "precision": "fp32", "latency_p50_ms": call, "latency_p99_ms": call * 1.05,
                         "throughput_per_s": 1000 / call, "fidelity_faithful": True, "new_tokens": n_new,
                         "tpot_ms": t, "ttft_ms": ttft[r]})
    runs = pl.DataFrame(rows)
    answer = sequential_verdicts(plan, runs)[("m", 1, "fp32")]
    assert (answer.metric, answer.verdict, answer.leader) == ("tpot_ms", "best", "rt0/x/cpu")
    cell = advise(runs, AdviceRequest(objective="latency", sequential=sequential_verdicts(plan, runs))).cells[0]
    assert cell.metric == "tpot_ms" and cell.verdict == "recommended" and cell.recommended == "rt0/x/cpu"
