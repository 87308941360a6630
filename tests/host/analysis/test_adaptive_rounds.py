"""An adaptive sweep's rounds replayed from a runs table (orchestrator/analysis/adaptive.py): which cells each round
measures, decided from the rounds before it alone, so that a resumed sweep, a shard and the report agree.

The rules (analysis/stopping.py) are the stopping module's to test; here a scripted rule stands in where a test is
about the rounds themselves, and the real one where it is about what a sweep does with it.
"""
from __future__ import annotations

import polars as pl
import pytest

from orchestrator.analysis import adaptive
from orchestrator.analysis.adaptive import Slot, plan_rounds, plan_slots, replay, rule_from
from orchestrator.analysis.stopping import CellState
from orchestrator.planning.config import parse_config
from orchestrator.planning.planner import HostCapabilities, plan_sweep

FAST, SLOW, OTHER = "m|bs1|fast/x/cpu|fp32", "m|bs1|slow/x/cpu|fp32", "m|bs2|fast/x/cpu|fp32"
CELLS = (FAST, SLOW, OTHER)
RULE = rule_from({"min": 2, "max": 5, "stop": "verdict"})


def slots(cells=CELLS, rounds=5) -> list[Slot]:
    return [Slot(f"r{r}-{c}", r, c) for r in range(rounds) for c in cells]


def table(values: dict[str, tuple[str, float | None, float | None]]) -> pl.DataFrame:
    """A runs table: run id -> (status, energy per inference, latency p50)."""
    rows = [{"run_id": k, "status": s, "j_per_inference": e, "latency_p50_ms": t} for k, (s, e, t) in values.items()]
    return pl.DataFrame(rows, schema={"run_id": pl.String, "status": pl.String, "j_per_inference": pl.Float64,
                                      "latency_p50_ms": pl.Float64})


def measured(cells, rounds, value=lambda cell, r: 1.0 + r / 100, status="ok"):
    return {f"r{r}-{c}": (status, value(c, r), value(c, r) * 10) for r in rounds for c in cells}


@pytest.fixture
def scripted(monkeypatch):
    """A rule that stops SLOW once it has 2 values and OTHER once its values average below 1.5; records each call."""
    calls = []

    def cell_states(rule, groups):
        # Asked one group at a time, its cells named by runtime (adaptive._states_by_runtime): keyed back to cells
        # here so that the script and the tests speak of whole cells.
        def cell_of(group, runtime):
            model, batch, precision = group.split("|")
            return f"{model}|{batch}|{runtime}|{precision}"

        asked = {g: {cell_of(g, c): list(v) for c, v in cells.items()} for g, cells in groups.items()}
        if calls and not set(asked) & set(calls[-1]):  # another group of the same look
            calls[-1].update(asked)
        else:
            calls.append(asked)
        states = {}
        for group, cells in groups.items():
            for runtime, values in cells.items():
                cell = cell_of(group, runtime)
                stop = (cell == SLOW and len(values) >= 2) or (cell == OTHER and values
                                                               and sum(values) / len(values) < 1.5)
                states[runtime] = CellState(not stop, len(values), "verdict" if stop else None, "scripted")
        return states

    monkeypatch.setattr(adaptive, "cell_states", cell_states)
    return calls


def test_round_zero_measures_every_cell_and_a_stopped_cell_leaves_the_later_rounds(scripted):
    rounds = replay(RULE, slots(), table({}))
    assert rounds.active == (frozenset(CELLS),) and rounds.complete == 0 and not rounds.finished
    two = replay(RULE, slots(), table(measured(CELLS, range(2))))
    assert two.complete == 2
    assert two.active[2] == {FAST}  # SLOW had 2 runs; OTHER's values averaged 1.0 < 1.5
    assert two.measured(Slot("r2-" + SLOW, 2, SLOW)) is False and two.measured(Slot("r2-" + FAST, 2, FAST))
    assert two.measured(Slot("r3-" + FAST, 3, FAST)) is None  # round 3 is not decided before round 2 is recorded
    assert (two.cells[SLOW].stopped_by, two.cells[SLOW].runs) == ("verdict", 2)
    assert two.cells[FAST].stopped_by is None


def test_each_round_is_decided_by_the_rounds_before_it_alone(scripted):
    """A sweep killed anywhere and resumed replays the same rounds: round r's cells do not depend on what was
    recorded in round r or after it."""
    rising = lambda cell, r: 1.0 + r  # noqa: E731
    # What the sweep measured: OTHER stopped after round 0 (average 1.0), SLOW after round 1, FAST never.
    every = {**measured((FAST,), range(5), rising), **measured((SLOW,), range(2), rising),
             **measured((OTHER,), range(1), rising)}
    full = replay(RULE, slots(), table(every))
    assert full.active == (frozenset(CELLS), frozenset({FAST, SLOW}), *[frozenset({FAST})] * 3)
    for upto in range(5):
        before = {k: v for k, v in every.items() if int(k[1]) < upto}
        partial = replay(RULE, slots(), table(before))
        assert partial.active == full.active[:upto + 1] and partial.complete == upto, upto
        # Killed in the middle of round `upto`: its first record decides nothing about it.
        first = next(k for k in every if int(k[1]) == upto)
        assert replay(RULE, slots(), table({**before, first: every[first]})).active[:upto + 1] == partial.active


def test_an_interrupted_run_leaves_its_round_open_and_a_failed_run_closes_it_without_a_value(scripted):
    records = measured(CELLS, range(1))
    records[f"r0-{FAST}"] = ("interrupted", None, None)
    assert replay(RULE, slots(), table(records)).complete == 0
    records[f"r0-{FAST}"] = ("failed", None, None)
    rounds = replay(RULE, slots(), table(records))
    assert rounds.complete == 1 and scripted[-1]["m|bs1|fp32"][FAST] == []
    assert rounds.cells[FAST].runs == 1  # a failed run is a run used


def test_a_cell_that_never_succeeds_stops_after_min_rounds(scripted):
    records = {**measured((SLOW, OTHER), range(2)), **measured((FAST,), range(2), status="failed")}
    rounds = replay(RULE, slots(), table(records))
    assert rounds.cells[FAST].stopped_by == "failed" and FAST not in rounds.active[2]


def test_the_rule_judges_energy_where_every_run_of_the_group_has_it_else_latency(scripted):
    records = measured(CELLS, range(1))
    records[f"r0-{OTHER}"] = ("ok", None, 42.0)  # the bs2 group has a run without energy: judged on latency
    rounds = replay(RULE, slots(), table(records))
    groups = scripted[-1]
    assert groups["m|bs1|fp32"] == {FAST: [1.0], SLOW: [1.0]} and groups["m|bs2|fp32"] == {OTHER: [42.0]}
    assert rounds.cells[FAST].metric == "j_per_inference" and rounds.cells[OTHER].metric == "latency_p50_ms"


def test_a_cell_still_active_at_max_is_stopped_by_max_and_the_sweep_is_finished(scripted):
    rule = rule_from({"min": 2, "max": 3, "stop": "verdict"})
    nine = lambda c, r: 9.0  # noqa: E731
    records = {**measured((FAST, OTHER), range(3), nine), **measured((SLOW,), range(2), nine)}
    rounds = replay(rule, slots(rounds=3), table(records))
    assert rounds.finished and rounds.complete == 3
    assert rounds.cells[FAST].stopped_by == "max" and rounds.cells[FAST].runs == 3
    assert rounds.cells[SLOW].runs == 2  # stopped by the rule after round 2: its round-3 run never measured


def test_every_cell_stopped_finishes_the_sweep_before_max(scripted):
    only = (SLOW,)
    rounds = replay(RULE, slots(only), table(measured(only, range(2))))
    assert rounds.finished and rounds.complete == 2 and rounds.active[2] == frozenset()


def test_the_plan_keeps_every_round_up_to_max_and_the_rule_in_its_config():
    cfg = parse_config({"name": "a", "models": ["mobilenet_v2"], "batch_sizes": [1, 2],
                        "runtimes": ["torch/native/cpu", "onnxruntime/onnx-from-torch/cpu"],
                        "repetitions": {"min": 2, "max": 6, "stop": "precision", "target": 0.02}})
    fixed = parse_config({**cfg.model_dump(mode="json"), "repetitions": 6})
    plan = plan_sweep(cfg, HostCapabilities()).to_dict()
    # The same runs, ids and seeded order per repetition as a fixed sweep of max repetitions.
    assert plan["runs"] == plan_sweep(fixed, HostCapabilities()).to_dict()["runs"]
    assert plan["config"]["repetitions"] == {"min": 2, "max": 6, "stop": "precision", "target": 0.02, "alpha": 0.05}
    assert [s.cell for s in plan_slots(plan)[:4]] == [r["cell"]["model"] + f"|bs{r['cell']['batch_size']}|"
                                                      f"{r['cell']['runtime']}|{r['cell']['precision']}"
                                                      for r in plan["runs"][:4]]
    rounds = plan_rounds(plan, table({}))
    assert rounds is not None and rounds.rule.max_runs == 6 and rounds.rule.target == 0.02
    assert plan_rounds(plan_sweep(fixed, HostCapabilities()).to_dict(), table({})) is None


def test_with_the_real_rule_a_clear_winner_ends_its_group_early_and_a_runtime_that_always_fails_does_not_hold_it():
    broken = "m|bs1|broken/x/cpu|fp32"
    cells = (FAST, SLOW, broken)
    rule = rule_from({"min": 3, "max": 10, "stop": "verdict"})
    spread = lambda base: (lambda c, r: base * (1 + 0.01 * (r % 3)))  # noqa: E731
    records = {**measured((FAST,), range(3), spread(1.0)), **measured((SLOW,), range(3), spread(10.0)),
               **measured((broken,), range(3), status="failed")}
    rounds = replay(rule, slots(cells, rounds=10), table(records))
    assert rounds.finished and rounds.complete == 3  # 9 runs of the 30 planned
    assert {c: rounds.cells[c].stopped_by for c in cells} == {FAST: "verdict", SLOW: "verdict", broken: "failed"}
