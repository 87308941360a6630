"""The best runtime per model, batch size and objective, and which runtimes it cannot be told apart from.

The leader is the runtime with the lowest median (p50 latency; energy per inference). It is called best only when
its two-sided Mann-Whitney test against every other runtime is significant after Holm's correction over those
tests: one per other runtime (many-to-one, the leader against each, as in a comparison with the best). The claim
"best" is made of those k - 1 comparisons and of no other, so they are its family; the report's pairwise table,
a claim about every pair, keeps all k(k - 1)/2 pairs in one Holm family. Runtimes the leader is not significantly
lower than are listed as tied with it (verdict "tie"). When no comparison could be tested (fewer than two runs
per runtime), the verdict is "untested": the leader is only the lowest single measurement.

An adaptive sweep stopped by the verdict rule is answered by that rule's own test for the metric it judged
(`sequential`, analysis/adaptive.py), for the runtimes it compared: its runs were chosen by that test.

A generate call's cell is ranked on latency by its time per output token (TPOT), as advise ranks it and the verdict
rule judges it (`best_runtimes_by_kind`); its energy per request orders the runtimes as energy per token does.
"""
from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from orchestrator.analysis.comparisons import ALPHA, OBJECTIVES, compare_runtimes, holm
from orchestrator.analysis.frames import GROUP_KEYS, energy_reason, ok_runs

GENERATIVE_OBJECTIVES = {"latency": "tpot_ms", "energy": "j_per_inference"}


def _leader_vs(pairs: pl.DataFrame, leader: str, other: str) -> dict | None:
    row = pairs.filter(((pl.col("runtime_a") == leader) & (pl.col("runtime_b") == other))
                       | ((pl.col("runtime_a") == other) & (pl.col("runtime_b") == leader)))
    return row.row(0, named=True) if row.height else None


def _sequential_answer(sequential: Mapping, key: tuple, column: str, runtimes: list[str]):
    """The verdict rule's answer for this group and metric, where it compared exactly these runtimes; else None."""
    answer = sequential.get(key)
    if answer is None or answer.metric != column or answer.runtimes != frozenset(runtimes):
        return None
    return answer


def best_runtimes(runs: pl.DataFrame, pairs: pl.DataFrame | None = None,
                  objectives: dict[str, str] = OBJECTIVES, alpha: float = ALPHA,
                  sequential: Mapping | None = None) -> pl.DataFrame:
    if pairs is None:
        pairs = compare_runtimes(runs, objectives, alpha)[0]
    ok = ok_runs(runs)
    rows = []
    for key, group in sorted(ok.group_by(list(GROUP_KEYS)), key=lambda kg: tuple(str(k) for k in kg[0])):
        cell = dict(zip(GROUP_KEYS, key))
        for objective, column in objectives.items():
            medians = (group.group_by("runtime").agg(pl.col(column).median().alias("median"),
                                                     pl.col(column).drop_nulls().len().alias("n"))
                       .filter(pl.col("n") > 0).sort(["median", "runtime"]))
            base = {**cell, "objective": objective, "metric": column}
            if medians.is_empty():
                why = "energy unavailable: " + energy_reason(group) if objective == "energy" else "no successful run"
                rows.append({**base, "best": None, "median": None, "runner_up": None, "runner_up_median": None,
                             "runner_up_p_holm": None, "comparisons": 0, "verdict": "no data", "tied_with": "",
                             "note": why})
                continue
            leader, leader_median = medians.row(0)[0], medians.row(0)[1]
            others = medians["runtime"].to_list()[1:]
            family = pairs.filter(*(pl.col(k) == v for k, v in base.items()))
            raw = [(_leader_vs(family, leader, other) or {}).get("p_value") for other in others]
            adjusted = dict(zip(others, holm(raw)))
            untested = [other for other in others if adjusted[other] is None]
            tied = [other for other in others if adjusted[other] is not None and adjusted[other] >= alpha]
            if not others:
                verdict, note = "only runtime", "no other runtime measured here"
            elif untested and len(untested) == len(others):
                verdict, note = "untested", "lowest median; not tested: fewer than 2 runs in the leader or every other runtime"
            elif tied or untested:
                verdict = "tie"
                note = f"not significantly lower (Mann-Whitney, Holm over the leader's comparisons, alpha {alpha})"
                if untested:
                    note += f"; not tested against {', '.join(untested)}"
            else:
                verdict, note = "best", (f"significantly lower than every other runtime (Mann-Whitney, Holm over "
                                         f"the leader's comparisons, alpha {alpha})")
            answer = _sequential_answer(sequential or {}, key, column, medians["runtime"].to_list())
            if answer is not None:
                leader = answer.leader
                leader_median = medians.filter(pl.col("runtime") == leader)["median"][0]
                others = [r for r in medians["runtime"].to_list() if r != leader]
                verdict, note, tied, untested = answer.verdict, answer.note, list(answer.tied), []
                # the rule's own Holm p at the look that stopped each runtime, not the rank test's it replaced
                adjusted = {r: getattr(answer.stops.get(r), "p_holm", None) for r in others}
                medians = medians.filter(pl.col("runtime") == leader).vstack(medians.filter(pl.col("runtime") != leader))
            runner_up = medians.row(1) if medians.height > 1 else (None, None)
            rows.append({**base, "best": leader, "median": leader_median, "runner_up": runner_up[0],
                         "runner_up_median": runner_up[1],
                         "runner_up_p_holm": adjusted.get(runner_up[0]) if runner_up[0] else None,
                         "comparisons": len(others) - len(untested), "verdict": verdict,
                         "tied_with": "" if verdict == "untested" else ", ".join(tied + untested), "note": note})
    schema = {"model": pl.String, "batch_size": pl.Int64, "precision": pl.String, "objective": pl.String,
              "metric": pl.String, "best": pl.String, "median": pl.Float64, "runner_up": pl.String,
              "runner_up_median": pl.Float64, "runner_up_p_holm": pl.Float64, "comparisons": pl.Int64,
              "verdict": pl.String, "tied_with": pl.String, "note": pl.String}
    return pl.DataFrame(rows, schema=schema)


def best_runtimes_by_kind(runs: pl.DataFrame, pairs: pl.DataFrame, alpha: float = ALPHA,
                          sequential: Mapping | None = None) -> pl.DataFrame:
    """best_runtimes, a generate call's cells (runs with new_tokens) on GENERATIVE_OBJECTIVES, the rest as always."""
    generative = (pl.col("new_tokens").is_not_null() if "new_tokens" in runs.columns and "tpot_ms" in runs.columns
                  else pl.lit(False))
    forward, calls = runs.filter(~generative), runs.filter(generative)
    parts = [best_runtimes(forward, pairs, alpha=alpha, sequential=sequential)] if forward.height else []
    if calls.height:
        call_pairs = compare_runtimes(calls, GENERATIVE_OBJECTIVES, alpha)[0]
        parts.append(best_runtimes(calls, call_pairs, GENERATIVE_OBJECTIVES, alpha, sequential))
    return pl.concat(parts) if parts else best_runtimes(runs, pairs, alpha=alpha, sequential=sequential)
