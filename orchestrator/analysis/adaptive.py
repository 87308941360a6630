"""An adaptive sweep's rounds, replayed from its runs table: which cells each round measures, and what stopped each.

Pure: a function of the plan's runs (run id, repetition, cell key) and the runs table so far. A round is one
repetition of every cell still active; the cells active in round r follow from the runs of rounds before r alone,
so the sweep that measures them, a sweep resumed after SIGKILL, a shard, a merge and `greenrt report` all find the
same rounds from the same records. The rules themselves are analysis/stopping.py's.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from orchestrator.analysis.frames import ok_runs
from orchestrator.analysis.stopping import CellState, StoppingRule, cell_states, group_verdict

ENERGY, LATENCY = "j_per_inference", "latency_p50_ms"
# A generate call's latency stand-in is its time per output token (TPOT), as advise ranks it (analysis/advice.py
# GENERATIVE_METRICS): the rule must judge the figure the answer is given in, or a verdict it settled on the p50 of
# whole generate calls would be asked again by a rank test on too few runs, and read as a tie.
TPOT = "tpot_ms"
# One successful run as the rule sees it: (energy per inference, its latency stand-in, whether it is a generate call)
RunFigures = tuple[float | None, float | None, bool]


@dataclass(frozen=True)
class Slot:
    """One planned run as the rounds see it."""

    run_id: str
    repetition: int
    cell: str  # model|bs<b>|runtime|precision (planning.planner.Cell.key)


@dataclass(frozen=True)
class CellStop:
    """What an adaptive sweep did with one cell: its runs so far, and the rule that stopped it (None: active)."""

    runs: int  # runs recorded (successful or failed)
    stopped_by: str | None  # "precision", "verdict", "max", "failed" (no successful run in `min` rounds); None
    why: str
    metric: str  # the column the rule judged: energy per inference, else latency p50 (a generate call's: TPOT)


@dataclass(frozen=True)
class Rounds:
    rule: StoppingRule
    active: tuple[frozenset[str], ...]  # the cells of each round decided so far (round 0: every cell)
    complete: int  # rounds whose every run is recorded
    cells: dict[str, CellStop]

    @property
    def finished(self) -> bool:
        """Nothing more to measure: the last planned round is recorded, or every cell stopped before it."""
        return self.complete == self.rule.max_runs or (self.complete < len(self.active)
                                                       and not self.active[self.complete])

    def measured(self, slot: Slot) -> bool | None:
        """Whether the slot's run belongs to the sweep: True/False once its round is decided, None before (a cell
        once stopped is never measured again, and nothing is after the sweep has finished)."""
        if slot.repetition < len(self.active):
            return slot.cell in self.active[slot.repetition]
        return False if self.finished or slot.cell not in self.active[-1] else None


def adaptive_table(plan: Mapping) -> dict | None:
    """The adaptive repetitions table of a plan (plan.json's object: its config keeps it); None for a fixed count."""
    table = (plan.get("config") or {}).get("repetitions")
    return dict(table) if isinstance(table, Mapping) else None


def plan_slots(plan: Mapping) -> list[Slot]:
    """The slots of plan.json's runs (the cell key as planning.planner.Cell.key writes it)."""
    return [Slot(r["run_id"], int(r["repetition"]), "|".join((r["cell"]["model"], f"bs{r['cell']['batch_size']}",
                                                               r["cell"]["runtime"], r["cell"]["precision"])))
            for r in plan.get("runs", [])]


def plan_rounds(plan: Mapping, runs: pl.DataFrame) -> Rounds | None:
    """The rounds of an adaptive plan (plan.json's object) as the runs table decides them; None: a fixed count."""
    table = adaptive_table(plan)
    return replay(rule_from(table), plan_slots(plan), runs) if table else None


def rule_from(table: Mapping) -> StoppingRule:
    """The stopping rule of a config's repetitions table (as plan.json keeps it)."""
    return StoppingRule(min_runs=int(table["min"]), max_runs=int(table["max"]), stop=table["stop"],
                        target=table.get("target"), alpha=float(table.get("alpha", 0.05)))


def runtime_of(cell: str) -> str:
    return cell.split("|")[2]


def group_of(cell: str) -> str:
    model, batch, _runtime, precision = cell.split("|")
    return f"{model}|{batch}|{precision}"


def _run_facts(runs: pl.DataFrame) -> tuple[set[str], dict[str, RunFigures]]:
    """(run ids recorded and done, {run id of a successful run: (energy per inference, latency p50 or a generate
    call's TPOT, generative)})."""
    if runs.is_empty():
        return set(), {}
    done = set(runs.filter(pl.col("status") != "interrupted")["run_id"].to_list())
    ok = ok_runs(runs)
    generative = pl.col("new_tokens").is_not_null() if "new_tokens" in ok.columns else pl.lit(False)
    latency = (pl.when(generative).then(pl.col(TPOT)).otherwise(pl.col(LATENCY)) if TPOT in ok.columns
               else pl.col(LATENCY))
    ok = ok.select("run_id", ENERGY, latency.alias(LATENCY), generative.alias("generative"))
    return done, {row[0]: (row[1], row[2], row[3]) for row in ok.iter_rows()}


def _groups(slots: Sequence[Slot], through: int, values: dict[str, RunFigures]
            ) -> tuple[dict[str, dict[str, list[float]]], dict[str, str]]:
    """The per-run values of rounds 0..through per group and cell (run order), and each group's metric: energy
    where every successful run of the group so far has it, else latency (a generate call's: TPOT)."""
    seen: dict[str, dict[str, list[RunFigures]]] = {}
    for slot in sorted(slots, key=lambda s: s.repetition):
        cells = seen.setdefault(group_of(slot.cell), {}).setdefault(slot.cell, [])
        if slot.repetition <= through and slot.run_id in values:
            cells.append(values[slot.run_id])
    groups, metrics = {}, {}
    for group, cells in seen.items():
        pairs = [p for runs in cells.values() for p in runs]
        energy = bool(pairs) and all(p[0] is not None for p in pairs)
        metrics[group] = ENERGY if energy else TPOT if any(p[2] for p in pairs) else LATENCY
        groups[group] = {cell: [float(p[0] if energy else p[1]) for p in runs if (p[0] if energy else p[1]) is not None]
                         for cell, runs in cells.items()}
    return groups, metrics


def _states_by_runtime(rule: StoppingRule, groups: Mapping[str, Mapping[str, Sequence[float]]]) -> dict[str, CellState]:
    """cell_states, each group asked on its own with its cells named by runtime (the one part of the key that differs
    within a group), so that each `why` names the leader as a reader knows it: "tied with onnxruntime/onnx/cpu"."""
    states: dict[str, CellState] = {}
    for group, cells in groups.items():
        cell_of = {runtime_of(cell): cell for cell in cells}
        answer = cell_states(rule, {group: {runtime: cells[cell] for runtime, cell in cell_of.items()}})
        states.update({cell_of[runtime]: state for runtime, state in answer.items()})
    return states


def replay(rule: StoppingRule, slots: Sequence[Slot], runs: pl.DataFrame) -> Rounds:
    """The rounds decided by the runs recorded so far (see the module's docstring)."""
    done, values = _run_facts(runs)
    cells = list(dict.fromkeys(s.cell for s in sorted(slots, key=lambda s: (s.repetition, s.cell))))
    by_round: dict[int, list[Slot]] = {}
    for slot in slots:
        by_round.setdefault(slot.repetition, []).append(slot)
    active = frozenset(cells)
    decided, complete = [active], 0
    stops: dict[str, tuple[str | None, str]] = {cell: (None, "") for cell in cells}
    metrics: dict[str, str] = {}
    for r in range(rule.max_runs):
        if not active:  # every cell stopped: no round after this one
            break
        if any(s.run_id not in done for s in by_round.get(r, []) if s.cell in active):
            break
        complete = r + 1
        groups, metrics = _groups(slots, r, values)
        # A cell none of whose runs succeeded in `min` rounds stops, and leaves its group: it has no value that
        # could change the group's verdict, and would hold the leader until max.
        failed = {cell for cells in groups.values() for cell, got in cells.items()
                  if not got and complete >= rule.min_runs}
        states = _states_by_runtime(rule, {g: {c: v for c, v in cells.items() if c not in failed}
                                           for g, cells in groups.items()})
        still = set()
        for cell in active:
            state: CellState | None = states.get(cell)
            if cell in failed or state is None:
                stops[cell] = ("failed", f"no successful run in {complete} round(s)")
            elif not state.active:
                stops[cell] = (state.stopped_by or "max", state.why)
            elif complete >= rule.max_runs:
                stops[cell] = ("max", f"max = {rule.max_runs} runs reached")
            else:
                stops[cell] = (None, state.why)
                still.add(cell)
        active = frozenset(still)
        if complete < rule.max_runs:
            decided.append(active)
    used = {cell: 0 for cell in cells}
    for slot in slots:
        used[slot.cell] += slot.run_id in done
    summary = {cell: CellStop(used[cell], stops[cell][0], stops[cell][1], metrics.get(group_of(cell), LATENCY))
               for cell in cells}
    return Rounds(rule, tuple(decided), complete, summary)


def stopping_table(rounds: Rounds) -> pl.DataFrame:
    """Per cell: the columns the cells table gains (runs_used, stopped_by) and why, keyed like the cells table."""
    rows = []
    for cell, stop in rounds.cells.items():
        model, batch, runtime, precision = cell.split("|")
        rows.append({"model": model, "batch_size": int(batch.removeprefix("bs")), "runtime": runtime,
                     "precision": precision, "runs_used": stop.runs, "stopped_by": stop.stopped_by,
                     "stopped_why": stop.why, "stopped_metric": stop.metric})
    schema = {"model": pl.String, "batch_size": pl.Int64, "runtime": pl.String, "precision": pl.String,
              "runs_used": pl.Int64, "stopped_by": pl.String, "stopped_why": pl.String, "stopped_metric": pl.String}
    return pl.DataFrame(rows, schema=schema)


@dataclass(frozen=True)
class SequentialVerdict:
    """The verdict rule's final answer for one group (model, batch size, precision): the test the sweep stopped
    on, valid under its looks after every round. The fixed design's Mann-Whitney cannot reach alpha with the 3 to 5
    runs a separated runtime keeps (its smallest two-sided p is 0.1 at 3 against 3), so the report and the advice
    take this answer for the metric the rule judged, and the rank test everywhere else."""

    metric: str
    verdict: str  # "best" or "tie"
    leader: str  # a runtime
    tied: tuple[str, ...]  # runtimes not separated from the leader
    runtimes: frozenset[str]  # the runtimes the rule compared (those with a successful run)
    note: str
    stops: Mapping[str, CellState]  # per runtime: after how many runs the rule stopped it, and why (its look)
    looks: int  # the looks the rule planned (its max - min + 1)
    test: str = "t-test"  # the test of its comparisons, as the report names it (StoppingRule.test_name)


def sequential_verdicts(plan: Mapping, runs: pl.DataFrame) -> dict[tuple[str, int, str], SequentialVerdict]:
    """{(model, batch size, precision): verdict} of a `stop = "verdict"` sweep's settled groups; {} otherwise."""
    table = adaptive_table(plan)
    if not table or table.get("stop") != "verdict" or runs.is_empty():
        return {}
    rule, slots = rule_from(table), plan_slots(plan)
    _, values = _run_facts(runs)
    groups, metrics = _groups(slots, rule.max_runs, values)
    found = {}
    for group, cells in groups.items():
        measured = {cell: got for cell, got in cells.items() if got}
        answer = group_verdict(rule, measured) if measured else None
        if answer is None or answer.verdict == "open" or answer.leader is None:
            continue
        stops = _states_by_runtime(rule, {group: measured})
        model, batch, precision = group.split("|")
        tied = tuple(runtime_of(c) for c in answer.tied)
        how = (f"the adaptive sweep's sequential test: {rule.test_name} on log values, alpha {rule.alpha} spent over "
               f"{rule.looks} looks, Holm over the leader's comparisons (docs/statistics.md)")
        note = (f"separated from every other runtime by {how}" if answer.verdict == "best"
                else f"not separated from {', '.join(tied)} by {how}")
        found[(model, int(batch.removeprefix("bs")), precision)] = SequentialVerdict(
            metrics[group], answer.verdict, runtime_of(answer.leader), tied, frozenset(runtime_of(c) for c in measured),
            note, {runtime_of(cell): state for cell, state in stops.items()}, rule.looks, rule.test_name)
    return found
