"""The runtime to deploy, per host, model, batch size and precision: a pure function of the runs table.

The runs table is orchestrator.results.tables.runs_table's, with a `host` column (the host signature) and,
where several results directories were read, a `source` column. Runs of different hosts are never pooled: each
host gets its own advice.

Per group, the candidates are the runtimes that meet the constraints (faithful outputs, p99 latency, throughput:
each judged on the runtime's median over runs). The leader, the tie and the test are best.py's (lowest median;
two-sided Mann-Whitney U over runs against each other candidate, Holm-adjusted over those comparisons), so `advise`
and the report's "Which runtime is best" can never disagree on the same runs. The Pareto front is over the candidates on (energy per inference,
p99 latency).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from orchestrator.analysis.advice_schema import (OBJECTIVES, Advice, CellAdvice, ClientChoice, Constraints, Estimate,
                                                 Grid, HostGroup, RuntimePoint, Separation)
from orchestrator.analysis.best import best_runtimes
from orchestrator.analysis.carbon import GridFigures
from orchestrator.analysis.clients import client_label, ordered_clients, size_words
from orchestrator.analysis.comparisons import ALPHA, MIN_RUNS, compare_runtimes
from orchestrator.analysis.frames import GROUP_KEYS, energy_reason, ok_runs, unavailable_text, with_derived
from orchestrator.analysis.pareto import Point, dominated_by, pareto_front
from orchestrator.analysis.stats import summarize
from runners.clients import split_client

UNKNOWN_HOST = "unknown host"
ENERGY_BASED = ("energy", "edp", "carbon", "cost")
# objective -> (column of the runs table it ranks by, unit). Each is one number per run, so the run stays the
# sample unit of the test. EDP is energy per inference times the p50 latency per batch.
METRICS = {"energy": ("j_per_inference", "J per inference"),
           "latency": ("latency_p50_ms", "ms per batch (p50)"),
           "edp": ("edp_j_s", "J·s (J per inference × p50 s per batch)"),
           "carbon": ("gco2e_per_million", "gCO2e per million inferences"),
           "cost": ("cost_per_million", "cost per million inferences")}
# A generative cell (its runs have `new_tokens`: one generate call of B sequences, P prompt tokens, N new tokens
# per iteration) is ranked by the same runs and the same test, in per-token units: the request's energy / N
# orders the runtimes of a group exactly as energy per inference does (B, P and N are the group's), and the
# latency fallback is the time per output token (TPOT), the decode's own pace.
GENERATIVE_METRICS = {"energy": ("j_per_token", "J per output token (request energy / N)"),
                      "latency": ("tpot_ms", "ms per output token (TPOT)"),
                      "edp": ("edp_j_s", "J·s (J per output token × TPOT s)"),
                      "carbon": ("gco2e_per_million", "gCO2e per million output tokens"),
                      "cost": ("cost_per_million", "cost per million output tokens")}
OUTSIDE_BOUNDS = "outside quantized bounds"
NATIVE_NOTE = "not a converted model"  # tables.run_row's fidelity note for a run nothing was compared for


@dataclass(frozen=True)
class AdviceRequest:
    objective: str = "energy"
    max_p99_ms: float | None = None
    min_throughput: float | None = None
    faithful_only: bool = True
    precision: str | None = None
    models: tuple[str, ...] | None = None
    batch_sizes: tuple[int, ...] | None = None
    grid: GridFigures = field(default_factory=GridFigures)
    alpha: float = ALPHA
    seed: int = 0
    # An adaptive sweep's verdict-rule answers per (model, batch size, precision) (analysis/adaptive.py), which
    # replace the rank test for the metric the rule judged; empty for fixed sweeps and pooled directories.
    sequential: Mapping = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; valid: {', '.join(OBJECTIVES)}")
        if self.objective == "carbon" and not self.grid.carbon_shown:
            raise ValueError("objective carbon needs the grid's carbon intensity (grid_intensity_g_per_kwh)")
        if self.objective == "cost" and not self.grid.cost_shown:
            raise ValueError("objective cost needs the electricity price (price_per_kwh)")


def with_objective_columns(runs: pl.DataFrame, grid: GridFigures) -> pl.DataFrame:
    """The derived runs table plus one column per objective; carbon and cost stay null where their figure is unset.

    A generative run's (one with `new_tokens`) objectives are per output token: `j_per_token` (its energy per
    request / N), EDP over TPOT, carbon and cost per million output tokens."""
    runs = with_derived(runs)
    for column in ("new_tokens", "tpot_ms"):
        if column not in runs.columns:
            runs = runs.with_columns(pl.lit(None, dtype=pl.Float64).alias(column))
    generative = pl.col("new_tokens").is_not_null()
    per_token = pl.col("j_per_inference") / pl.col("new_tokens")
    j = pl.when(generative).then(per_token).otherwise(pl.col("j_per_inference"))
    seconds = pl.when(generative).then(pl.col("tpot_ms")).otherwise(pl.col("latency_p50_ms")) / 1e3
    scale_c = grid.grams_per_million(1.0)
    scale_p = grid.cost_per_million(1.0)
    return runs.with_columns(
        pl.when(generative).then(per_token).otherwise(None).alias("j_per_token"),
        (j * seconds).alias("edp_j_s"),
        (j * scale_c if scale_c is not None else pl.lit(None, pl.Float64)).alias("gco2e_per_million"),
        (j * scale_p if scale_p is not None else pl.lit(None, pl.Float64)).alias("cost_per_million"))


def is_generative(group: pl.DataFrame) -> bool:
    """Whether a group's runs are generate calls (they carry new_tokens): its figures are per output token."""
    return "new_tokens" in group.columns and not group["new_tokens"].drop_nulls().is_empty()


def per_output_token(cell: CellAdvice) -> bool:
    """Whether an advice cell is a generative one (its energy figures per output token)."""
    return any(point.energy.metric == "j_per_token" for point in cell.runtimes)


def min_runs_to_separate(comparisons: int, alpha: float = ALPHA) -> int:
    """The fewest runs per runtime with which the exact two-sided Mann-Whitney test can reach alpha after Holm.

    With n runs a side and no ties, the smallest two-sided p is 2 / C(2n, n); Holm multiplies the family's smallest
    p by the number of comparisons (the leader against each other candidate), so the leader can be separated from
    every other runtime only if comparisons * 2 / C(2n, n) < alpha (3 runs a side never reach 0.05: 2/20 = 0.1).
    """
    n = MIN_RUNS
    while max(comparisons, 1) * 2 / math.comb(2 * n, n) >= alpha:
        n += 1
    return n


def _estimate(frame: pl.DataFrame, column: str, unit: str, seed: int, missing: str) -> Estimate:
    values = frame[column].drop_nulls().to_numpy().astype(np.float64) if column in frame.columns else np.array([])
    s = summarize(values, seed, missing)
    return Estimate(metric=column, unit=unit, runs=s.n, median=s.median, mean=s.mean, ci_low=s.ci_low,
                    ci_high=s.ci_high, note=s.note)


def _median(frame: pl.DataFrame, column: str) -> float | None:
    values = frame[column].drop_nulls()
    return float(values.median()) if not values.is_empty() else None


def _fidelity(ok: pl.DataFrame) -> tuple[str, str]:
    """(faithful | unfaithful | outside quantized bounds | not established | native, the words) for one runtime's
    successful runs. A quantized run is never faithful, but one outside its precision's thresholds (the
    quantized criterion's `acceptable`) is not a deployable answer either: with faithful outputs only, it is out."""
    if "fidelity_faithful" not in ok.columns or ok.is_empty():
        return "native", ""
    if "fidelity_acceptable" in ok.columns and any(v is False for v in ok["fidelity_acceptable"].to_list()):
        outside = ok.filter(pl.col("fidelity_acceptable").eq(False))
        words = outside["fidelity_verdict"].drop_nulls() if "fidelity_verdict" in ok.columns else None
        said = (words[0] if words is not None and len(words) else
                "quantized outputs outside their precision's thresholds")
        return OUTSIDE_BOUNDS, f"in {outside.height} of {ok.height} runs, {said}"
    verdicts = ok["fidelity_faithful"].to_list()
    notes = ok["fidelity_note"].to_list() if "fidelity_note" in ok.columns else [""] * ok.height
    if any(v is False for v in verdicts):
        bad = sum(v is False for v in verdicts)
        worst = ok["fidelity_max_abs_error"].drop_nulls().max() if "fidelity_max_abs_error" in ok.columns else None
        return "unfaithful", (f"outputs not faithful to the reference in {bad} of {ok.height} runs"
                              + (f" (max abs error {worst:.3g})" if worst is not None else ""))
    if all(v is True for v in verdicts):
        return "faithful", ""
    unknown = sorted({n for v, n in zip(verdicts, notes) if v is None and n and n != NATIVE_NOTE})
    if unknown:
        return "not established", "fidelity not established: " + "; ".join(unknown)
    if any(v is True for v in verdicts):
        return "faithful", ""
    return "native", ""


def _exclusion(point: dict, request: AdviceRequest) -> str | None:
    if request.faithful_only and point["fidelity"] in ("unfaithful", OUTSIDE_BOUNDS, "not established"):
        return point["fidelity_words"] + " (--no-faithful-only admits it)"
    p99 = point["p99"].median
    if request.max_p99_ms is not None and p99 is not None and p99 > request.max_p99_ms:
        return f"p99 {p99:.4g} ms is above the limit of {request.max_p99_ms:g} ms"
    thr = point["throughput"]
    if request.min_throughput is not None and thr is not None and thr < request.min_throughput:
        return f"throughput {thr:.4g}/s is below the minimum of {request.min_throughput:g}/s"
    return None


def _repetitions_reason(candidates: dict[str, int], alpha: float) -> str | None:
    """Why no test can separate the candidates with the runs there are, or None when enough were made."""
    if len(candidates) < 2:
        return None
    fewest = min(candidates.values())
    needed = min_runs_to_separate(len(candidates) - 1, alpha)
    if fewest >= needed:
        return None
    return (f"{fewest} repetition{'s' if fewest != 1 else ''}: run at least {needed} (with {len(candidates)} "
            f"runtimes, fewer runs can never be significant at alpha {alpha:g} after Holm)")


def _sequential_separation(best: dict, answer, mann_whitney: Separation) -> Separation:
    """The leader against the runner-up as the adaptive sweep's verdict rule tested them (its answer replaced the
    rank test): its Holm p at the look that stopped the runner-up, against that look's level."""
    stop = answer.stops.get(best["runner_up"])
    look = f", look {stop.look} of {answer.looks}" if stop is not None and stop.look else ""
    level = stop.level if stop is not None else None
    p_holm = best["runner_up_p_holm"]
    return mann_whitney.model_copy(update={
        "test": (f"the adaptive sweep's sequential {answer.test} on log values, Holm over the leader's comparisons"
                 f"{look}" + (f", level {level:.3g}" if level is not None else "")),
        "p_value": None, "p_holm": p_holm,
        "significant": None if p_holm is None or level is None else p_holm < level,
        "note": stop.why if stop is not None and p_holm is None else ""})


def _separation(pairs: pl.DataFrame, best: dict, alpha: float) -> Separation:
    leader, runner_up = best["best"], best["runner_up"]
    leader_median, runner_up_median = best["median"], best["runner_up_median"]
    row = pairs.filter(((pl.col("runtime_a") == leader) & (pl.col("runtime_b") == runner_up))
                       | ((pl.col("runtime_a") == runner_up) & (pl.col("runtime_b") == leader)))
    test = row.row(0, named=True) if row.height else {}
    delta = test.get("cliffs_delta")
    if delta is not None and test.get("runtime_a") != leader:
        delta = -delta  # the table's delta is a's against b's: turned to read as the leader's against the runner-up's
    return Separation(runner_up=runner_up, runner_up_median=runner_up_median,
                      ratio=runner_up_median / leader_median if leader_median else None,
                      test="two-sided Mann-Whitney U over runs, Holm-adjusted over the leader's comparisons",
                      comparisons=best["comparisons"], p_value=test.get("p_value"), p_holm=best["runner_up_p_holm"],
                      cliffs_delta=delta, magnitude=test.get("magnitude"),
                      significant=None if best["runner_up_p_holm"] is None else best["runner_up_p_holm"] < alpha,
                      note=test.get("note") or "")


def _cell(group: pl.DataFrame, host: str, request: AdviceRequest) -> CellAdvice:
    first = group.row(0, named=True)
    key = {k: first[k] for k in GROUP_KEYS}
    sources = sorted({s for s in group["source"].to_list() if s}) if "source" in group.columns else []
    ok = ok_runs(group)
    reasons: list[str] = []
    objective = request.objective
    energy_missing = ok.is_empty() or ok["j_per_inference"].drop_nulls().is_empty()
    generative = is_generative(group)
    if objective in ENERGY_BASED and energy_missing and not ok.is_empty():
        latency = "time per output token (TPOT)" if generative else "latency (p50)"
        reasons.append(f"{unavailable_text(energy_reason(group))}; ranked by {latency} instead of {objective}")
        objective = "latency"
    metric, unit = (GENERATIVE_METRICS if generative else METRICS)[objective]
    energy_column, energy_unit = ("j_per_token", "J per output token") if generative else ("j_per_inference", "J")

    points: dict[str, dict] = {}
    for runtime in sorted(group["runtime"].unique().to_list()):
        all_runs = group.filter(pl.col("runtime") == runtime)
        mine = ok.filter(pl.col("runtime") == runtime)
        fidelity, fidelity_words = _fidelity(mine)
        energy_words = unavailable_text(energy_reason(all_runs)) if mine.height else "no successful run"
        energy = _estimate(mine, energy_column, energy_unit, request.seed, energy_words)
        points[runtime] = {
            "runs": mine.height, "failed": all_runs.height - mine.height, "energy": energy,
            "p99": _estimate(mine, "latency_p99_ms", "ms", request.seed, "no successful run"),
            "p50": _median(mine, "latency_p50_ms") if mine.height else None,
            "throughput": _median(mine, "throughput_per_s") if mine.height else None,
            "objective": _estimate(mine, metric, unit, request.seed, "no value") if mine.height else None,
            "fidelity": fidelity, "fidelity_words": fidelity_words}
        if all_runs.height > mine.height:
            kinds = all_runs.filter(pl.col("status") != "ok")["failure_kind"].cast(pl.String).fill_null("unknown")
            reasons.append(f"{runtime}: {all_runs.height - mine.height} of {all_runs.height} runs failed "
                           f"({', '.join(sorted(set(kinds.to_list())))})")

    for runtime, point in points.items():
        why = None
        if point["runs"] == 0:
            why = "no successful run"
        elif point["objective"] is None or point["objective"].median is None:
            why = (f"no {objective} figure: {point['energy'].note}" if objective in ENERGY_BASED
                   else f"no {objective} figure")
        point["excluded"] = why or _exclusion(point, request)
    candidates = {r: p["objective"].runs for r, p in points.items() if p["excluded"] is None}
    for runtime, point in points.items():
        if point["excluded"]:
            reasons.append(f"{runtime} excluded: {point['excluded']}")

    # The front: the candidates with both figures. Where energy is missing, there is no front to draw.
    placed = [Point(r, points[r]["energy"].median, points[r]["p99"].median) for r in candidates
              if points[r]["energy"].median is not None and points[r]["p99"].median is not None]
    front = pareto_front(placed)
    front_names = [p.runtime for p in front]
    if energy_missing:
        front_note = (unavailable_text(energy_reason(group)) if not ok.is_empty() else "no successful run")
        front_note = f"no front: {front_note}"
    elif not placed:
        front_note = "no front: no candidate has both an energy and a p99 figure"
    else:
        front_note = (f"{len(front)} of {len(placed)} candidate(s) on the front of (median energy per "
                      f"{'output token' if generative else 'inference'}, median p99 latency"
                      f"{' per request' if generative else ''}): no other candidate is at least as good on both and "
                      "better on one")

    verdict, recommended, leader, figure, tied, separation, client = "no candidate", None, None, None, [], None, None
    if not candidates:
        reasons.insert(0, "no runtime meets the constraints" if points and ok.height else "no successful run")
    else:
        chosen = group.filter(pl.col("runtime").is_in(list(candidates)))
        chosen = with_objective_columns(chosen, request.grid)
        pairs = compare_runtimes(chosen, {objective: metric}, request.alpha)[0]
        sequential = _per_token_answers(request.sequential) if generative else request.sequential
        best = best_runtimes(chosen, pairs, {objective: metric}, request.alpha, sequential).row(0, named=True)
        leader = best["best"]
        figure = points[leader]["objective"]
        tied = [t for t in best["tied_with"].split(", ") if t] if best["tied_with"] else []
        answer = sequential.get((key["model"], key["batch_size"], key["precision"]))
        if best["runner_up"] is not None:
            separation = _separation(pairs, best, request.alpha)
            if answer is not None and answer.note == best["note"]:
                separation = _sequential_separation(best, answer, separation)
        verdict = {"best": "recommended", "tie": "tie", "untested": "not enough evidence",
                   "only runtime": "only candidate"}[best["verdict"]]
        if verdict == "not enough evidence":
            tied = [r for r in candidates if r != leader]
        recommended = leader if verdict in ("recommended", "only candidate") else None
        client = _client_choice(chosen, leader, objective, metric, request.alpha)
        if verdict == "only candidate":
            reasons.insert(0, "one runtime meets the constraints: nothing to compare it with")
        elif verdict != "recommended":
            # An adaptive sweep's rule chose how many runs each runtime got: its own note says why they stand tied.
            answer = request.sequential.get((key["model"], key["batch_size"], key["precision"]))
            by_rule = answer is not None and answer.note == best["note"]
            lacking = None if by_rule else _repetitions_reason(candidates, request.alpha)
            reasons.insert(0, lacking or best["note"] + ("" if by_rule else ": more repetitions may separate them"))
    runtimes = []
    for runtime, p in points.items():
        median_energy = p["energy"].median
        on = None if p["excluded"] or median_energy is None or p["p99"].median is None else runtime in front_names
        mine = next((q for q in placed if q.runtime == runtime), None)
        runtimes.append(RuntimePoint(
            runtime=runtime, runs=p["runs"], failed_runs=p["failed"], energy=p["energy"], p99=p["p99"],
            p50_ms=p["p50"], throughput_per_s=p["throughput"], objective=p["objective"],
            carbon_g_per_million=request.grid.grams_per_million(median_energy),
            cost_per_million=request.grid.cost_per_million(median_energy), fidelity=p["fidelity"],
            eligible=p["excluded"] is None, excluded_because=p["excluded"], on_front=on,
            dominated_by=dominated_by(mine, placed) if mine else []))
    return CellAdvice(host=host, sources=sources, **key, objective=request.objective, objective_used=objective,
                      metric=metric, unit=unit, verdict=verdict, recommended=recommended, leader=leader,
                      figure=figure, tied_with=tied, separation=separation, front=front_names,
                      front_note=front_note, runtimes=runtimes, reasons=reasons, client=client)


_BEST_CLIENT = {"latency": "fastest", "energy": "lowest-energy", "edp": "lowest-EDP", "carbon": "lowest-carbon",
                "cost": "cheapest"}


def _client_choice(chosen: pl.DataFrame, leader: str, objective: str, metric: str,
                   alpha: float) -> ClientChoice | None:
    """Which client to drive the leader's runtime from, where the candidates hold several clients of its base: the
    clients ranked and tested as best.py ranks and tests runtimes (lowest median; Mann-Whitney over runs against each
    other client, Holm over those comparisons). None where the cell measured one client of it."""
    base = split_client(leader)[0]
    clients = ordered_clients([r for r in chosen["runtime"].unique().to_list() if split_client(r)[0] == base])
    if len(clients) < 2:
        return None
    runs = chosen.filter(pl.col("runtime").is_in(clients))
    objectives = {objective: metric}
    best = best_runtimes(runs, compare_runtimes(runs, objectives, alpha)[0], objectives, alpha).row(0, named=True)
    if best["best"] is None or best["runner_up"] is None:
        return None  # one client has a figure: nothing to choose between
    label = {r: client_label(r, clients) for r in clients}
    first, second = best["best"], best["runner_up"]
    ratio = best["runner_up_median"] / best["median"] if best["median"] else None
    p = f"Holm p {best['runner_up_p_holm']:.2g}" if best["runner_up_p_holm"] is not None else "untested"
    size = size_words(ratio) if ratio and ratio != 1 else ""
    gap = (f"{label[second]} {size} higher" if size.endswith("%") else f"{label[second]} {size}" if size
           else f"{label[second]} the same median")
    verdict = {"best": "significant", "tie": "no difference", "untested": "untested"}[best["verdict"]]
    if verdict == "significant":
        words = (f"client: drive {base} from {label[first]} ({first}), its {_BEST_CLIENT[objective]} client: "
                 f"{gap} ({p}{', every other client too' if len(clients) > 2 else ''})")
    elif verdict == "no difference":
        words = (f"client: does not matter at this sample size for {base}: {', '.join(label[r] for r in clients)} "
                 f"not told apart (lowest {label[first]}, {gap}, {p})")
    else:
        words = (f"client: not tested for {base} (fewer than {MIN_RUNS} runs on a side); lowest median "
                 f"{label[first]}")
    return ClientChoice(base=base, clients=clients, leader=first, verdict=verdict,
                        use=first if verdict == "significant" else None, runner_up=second, ratio=ratio,
                        p_holm=best["runner_up_p_holm"], words=words)


def _per_token_answers(sequential: Mapping) -> dict:
    """An adaptive sweep's verdict-rule answers on energy per inference, read as answers on energy per output
    token: within a group N is one number, and dividing every run's figure by it changes neither the order nor the
    rule's test (its statistic is scale-free), so its answer is the per-token ranking's."""
    return {key: replace(answer, metric="j_per_token") if getattr(answer, "metric", None) == "j_per_inference"
            else answer for key, answer in sequential.items()}


def _selected(runs: pl.DataFrame, request: AdviceRequest) -> pl.DataFrame:
    if request.models is not None:
        runs = runs.filter(pl.col("model").is_in(list(request.models)))
    if request.batch_sizes is not None:
        runs = runs.filter(pl.col("batch_size").is_in(list(request.batch_sizes)))
    if request.precision is not None:
        runs = runs.filter(pl.col("precision") == request.precision)
    return runs


def host_groups(runs: pl.DataFrame) -> list[HostGroup]:
    if runs.is_empty():
        return []
    hosts = runs["host"].fill_null(UNKNOWN_HOST) if "host" in runs.columns else pl.Series([UNKNOWN_HOST] * runs.height)
    sources = runs["source"] if "source" in runs.columns else pl.Series([None] * runs.height, dtype=pl.String)
    seen: dict[str, set[str]] = {}
    for h, s in zip(hosts.to_list(), sources.to_list()):
        seen.setdefault(h, set()).update([s] if s else [])
    return [HostGroup(signature=h, sources=sorted(s)) for h, s in sorted(seen.items())]


def pooling_text(hosts: list[HostGroup]) -> str:
    sources = sorted({s for h in hosts for s in h.sources})
    if len(hosts) > 1:
        return (f"{len(hosts)} hosts (their signatures differ): advice per host, runs never pooled across hosts")
    if len(sources) > 1:
        return f"{len(sources)} directories pooled: one host signature"
    return "one host"


def advise(runs: pl.DataFrame, request: AdviceRequest = AdviceRequest()) -> Advice:
    selected = _selected(runs, request) if not runs.is_empty() else runs
    cells = []
    if not selected.is_empty():
        selected = with_objective_columns(selected, request.grid)
        if "host" not in selected.columns:
            selected = selected.with_columns(pl.lit(UNKNOWN_HOST).alias("host"))
        selected = selected.with_columns(pl.col("host").fill_null(UNKNOWN_HOST))
        keys = ["host", *GROUP_KEYS]
        for key, group in sorted(selected.group_by(keys), key=lambda kg: tuple(str(k) for k in kg[0])):
            cells.append(_cell(group, key[0], request))
    hosts = host_groups(selected)
    grid = request.grid
    return Advice(objective=request.objective, alpha=request.alpha,
                  constraints=Constraints(max_p99_ms=request.max_p99_ms, min_throughput=request.min_throughput,
                                          faithful_only=request.faithful_only, precision=request.precision,
                                          models=list(request.models) if request.models is not None else None,
                                          batch_sizes=list(request.batch_sizes) if request.batch_sizes is not None
                                          else None),
                  grid=Grid(grid_intensity_g_per_kwh=grid.grid_intensity_g_per_kwh, pue=grid.pue,
                            price_per_kwh=grid.price_per_kwh, carbon_label=grid.carbon_label(),
                            cost_label=grid.cost_label()),
                  hosts=hosts, pooling=pooling_text(hosts), cells=cells)
