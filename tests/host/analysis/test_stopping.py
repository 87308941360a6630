"""The adaptive stopping rules (analysis/stopping.py) on synthetic values: who stops, when, and why."""
from __future__ import annotations

import numpy as np
import pytest

from orchestrator.analysis.stopping import StoppingRule, cell_states, group_verdict, runs_used

VERDICT = StoppingRule(min_runs=3, max_runs=10, stop="verdict")


def _cell(rng: np.random.Generator, median: float, cv: float, n: int = 10) -> list[float]:
    return (median * np.exp(cv * rng.standard_normal(n))).tolist()


def _rounds(rule: StoppingRule, group: dict[str, list[float]]) -> dict[str, list[float]]:
    """What the sweep loop does: a round gives one more run to every active cell, then asks the rule again."""
    seen: dict[str, list[float]] = {name: [] for name in group}
    for round_ in range(rule.max_runs):
        states = cell_states(rule, {"m|1|fp32": seen})
        active = [n for n in group if states[n].active]
        if not active:
            break
        for name in active:
            seen[name].append(group[name][len(seen[name])])
    return seen


def test_a_clear_winner_stops_early_and_is_called_best():
    rng = np.random.default_rng(1)
    group = {"fast": _cell(rng, 10, 0.03), **{f"slow{i}": _cell(rng, 15 + i, 0.03) for i in range(8)}}
    seen = _rounds(VERDICT, group)
    assert sum(map(len, seen.values())) <= 0.4 * 9 * 10
    states = cell_states(VERDICT, {"g": seen})
    assert all(not s.active and s.stopped_by == "verdict" for s in states.values())
    assert "separated" in states["slow0"].why
    assert group_verdict(VERDICT, seen).verdict == "best" and group_verdict(VERDICT, seen).leader == "fast"


def test_a_tie_of_one_truth_is_never_separated_and_ends_as_a_tie():
    # two runtimes of one truth, far ahead of a third: the third leaves; the two stop tied (at max, or earlier
    # once separating them by max has under 30 % chance), and the answer is a tie of the two
    rng = np.random.default_rng(2)
    group = {"a": _cell(rng, 10, 0.03), "b": _cell(rng, 10, 0.03), "c": _cell(rng, 30, 0.03)}
    seen = _rounds(VERDICT, group)
    states = cell_states(VERDICT, {"g": seen})
    assert states["c"].stopped_by == "verdict" and states["c"].runs < 5
    assert {states["a"].active, states["b"].active} == {False}
    answer = group_verdict(VERDICT, seen)
    assert answer.verdict == "tie" and set((answer.leader, *answer.tied)) == {"a", "b"}


def test_a_tie_runs_to_max_when_it_could_still_be_separated(monkeypatch):
    # with the futility stop switched off (every comparison kept as if it could still be separated), a tie is
    # settled only at max
    import orchestrator.analysis.stopping as stopping

    monkeypatch.setattr(stopping, "FUTILITY", 0.0)
    rng = np.random.default_rng(3)
    group = {"a": _cell(rng, 10, 0.05), "b": _cell(rng, 10, 0.05)}
    seen = _rounds(VERDICT, group)
    states = cell_states(VERDICT, {"g": seen})
    assert [s.runs for s in states.values()] == [10, 10]
    assert {s.stopped_by for s in states.values()} == {"max"}


def test_a_noisy_cell_gets_more_runs_than_a_quiet_one_under_the_precision_rule():
    rule = StoppingRule(min_runs=3, max_runs=10, stop="precision", target=0.05)
    rng = np.random.default_rng(4)
    seen = _rounds(rule, {"quiet": _cell(rng, 10, 0.005), "noisy": _cell(rng, 10, 0.04)})
    states = cell_states(rule, {"g": seen})
    assert states["quiet"].runs == 3 and states["quiet"].stopped_by == "precision"
    assert states["noisy"].runs > states["quiet"].runs


@pytest.mark.parametrize("rule", [VERDICT, StoppingRule(3, 10, "precision", target=0.5)])
def test_cells_below_min_never_stop(rule):
    # even a runtime 100x slower, and a cell of identical values, stay active below min_runs
    group = {"a": [1.0, 1.0], "b": [100.0, 101.0], "c": [5.0]}
    assert all(s.active and s.stopped_by is None for s in cell_states(rule, {"g": group}).values())


def test_asking_after_every_round_or_once_gives_the_same_states():
    rng = np.random.default_rng(5)
    group = {f"r{i}": _cell(rng, 10 * (1 + 0.04 * i), 0.04) for i in range(9)}
    seen = _rounds(VERDICT, group)
    assert runs_used(VERDICT, group) == {name: len(v) for name, v in seen.items()}
    once = cell_states(VERDICT, {"g": seen})
    assert once == cell_states(VERDICT, {"g": {k: list(v) for k, v in seen.items()}})
    # a stopped cell stays stopped with its reason when it is shown more values (a resumed or merged sweep)
    more = {name: group[name][: len(v) + 1] if not once[name].active else v for name, v in seen.items()}
    again = cell_states(VERDICT, {"g": more})
    assert all(again[n].stopped_by == once[n].stopped_by and again[n].why == once[n].why for n in once)


def test_bad_rules_are_refused_in_one_line():
    with pytest.raises(ValueError, match="2 <= min <= max"):
        StoppingRule(1, 10, "verdict")
    with pytest.raises(ValueError, match="needs a target"):
        StoppingRule(3, 10, "precision")
    with pytest.raises(ValueError, match="'precision' or 'verdict'"):
        StoppingRule(3, 10, "fastest")  # type: ignore[arg-type]


def test_no_best_is_claimed_where_every_runtime_is_the_same_more_often_than_alpha():
    # the global null with the sequential looks: any "best" is wrong; the rule looks up to 8 times per group
    rng = np.random.default_rng(6)
    groups = 150
    wrong = 0
    for _ in range(groups):
        runs = np.exp(0.04 * rng.standard_t(5, (9, 10)))
        values = {f"r{i}": runs[i].tolist() for i in range(9)}
        used = runs_used(VERDICT, values)
        wrong += group_verdict(VERDICT, {k: v[: used[k]] for k, v in values.items()}).verdict == "best"
    assert wrong / groups <= VERDICT.alpha


def test_a_near_tie_for_first_is_rarely_called_for_the_wrong_runtime():
    # the true best is 1 % ahead of the second, at 4 % spread: calling the second best is the wrong verdict
    rng = np.random.default_rng(7)
    groups, wrong = 150, 0
    for _ in range(groups):
        medians = np.array([1.0, 1.01, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9])
        runs = medians[:, None] * np.exp(0.04 * rng.standard_t(5, (9, 10)))
        values = {f"r{i}": runs[i].tolist() for i in range(9)}
        used = runs_used(VERDICT, values)
        answer = group_verdict(VERDICT, {k: v[: used[k]] for k, v in values.items()})
        wrong += answer.verdict == "best" and answer.leader != "r0"
    assert wrong / groups <= VERDICT.alpha / 2


def test_the_nominal_levels_spend_alpha_over_every_look_together():
    # fresh normal walks (another seed than the levels were found on): crossing any look's level happens with
    # probability alpha in all, where one level of alpha at each of the 8 looks would cross far more often
    from scipy import special

    from orchestrator.analysis.stopping import RHO, nominal_levels

    levels = np.array(nominal_levels(3, 10, 0.05, RHO))
    assert np.all(levels > 0.05 / 8) and np.all(levels < 0.05)
    walks = np.random.default_rng(99).standard_normal((100_000, 10)).cumsum(axis=1)
    z = np.abs(walks[:, 2:] / np.sqrt(np.arange(3, 11)))
    crossed = (z >= special.ndtri(1 - levels / 2)).any(axis=1).mean()
    assert 0.045 < crossed < 0.055
    assert (z >= special.ndtri(1 - 0.05 / 2)).any(axis=1).mean() > 0.12


def test_values_at_or_under_zero_are_compared_on_their_own_scale():
    # idle-subtracted energy can be zero or negative: no log, no crash, a clear loser still leaves
    group = {"a": [0.0, 0.01, -0.01, 0.0], "b": [5.0, 5.1, 4.9, 5.05]}
    states = cell_states(VERDICT, {"g": group})
    assert states["b"].stopped_by == "verdict" and "separated" in states["b"].why


def test_the_leader_of_a_group_settled_in_one_look_is_best_not_tied_with_the_runtime_it_separated():
    rule = StoppingRule(min_runs=2, max_runs=10, stop="verdict")
    states = cell_states(rule, {"g": {"a": [1.0, 1.01], "b": [5.0, 5.1]}})
    assert not states["b"].active and states["b"].why.startswith("separated")
    assert not states["a"].active and states["a"].why.startswith("best")
