"""The adaptive stopping rules (analysis/stopping.py) on synthetic values: who stops, when, and why."""
from __future__ import annotations

import numpy as np
import pytest

from orchestrator.analysis.stopping import StoppingRule, cell_states, group_verdict, runs_used

VERDICT = StoppingRule(min_runs=3, max_runs=10, stop="verdict")
FROM_TWO = StoppingRule(min_runs=2, max_runs=10, stop="verdict")  # the simulation's design: separation from 2 runs


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


@pytest.mark.parametrize("rule", [VERDICT, FROM_TWO], ids=["min 3", "min 2"])
def test_a_clear_winner_stops_early_and_is_called_best(rule):
    rng = np.random.default_rng(1)
    group = {"fast": _cell(rng, 10, 0.03), **{f"slow{i}": _cell(rng, 15 + i, 0.03) for i in range(8)}}
    seen = _rounds(rule, group)
    assert sum(map(len, seen.values())) <= 0.4 * 9 * 10
    assert len(seen["fast"]) < rule.max_runs
    states = cell_states(rule, {"g": seen})
    assert all(not s.active and s.stopped_by == "verdict" for s in states.values())
    assert "separated" in states["slow0"].why
    assert group_verdict(rule, seen).verdict == "best" and group_verdict(rule, seen).leader == "fast"


def test_a_tie_of_one_truth_is_never_separated_and_ends_as_a_tie():
    # two runtimes of one truth, far ahead of a third: the third leaves; the two stop tied (at max, or earlier
    # once separating them by max has under FUTILITY chance), and the answer is a tie of the two
    rng = np.random.default_rng(2)
    group = {"a": _cell(rng, 10, 0.03), "b": _cell(rng, 10, 0.03), "c": _cell(rng, 30, 0.03)}
    seen = _rounds(VERDICT, group)
    states = cell_states(VERDICT, {"g": seen})
    assert states["c"].stopped_by == "verdict" and states["c"].runs < 5
    assert {states["a"].active, states["b"].active} == {False}
    answer = group_verdict(VERDICT, seen)
    assert answer.verdict == "tie" and set((answer.leader, *answer.tied)) == {"a", "b"}


def test_a_tie_runs_to_max_when_it_could_still_be_separated():
    # with the futility stop switched off (every comparison kept as if it could still be separated), a tie is
    # settled only at max
    rule = StoppingRule(min_runs=3, max_runs=10, stop="verdict", futility=0.0)
    rng = np.random.default_rng(3)
    group = {"a": _cell(rng, 10, 0.05), "b": _cell(rng, 10, 0.05)}
    seen = _rounds(rule, group)
    states = cell_states(rule, {"g": seen})
    assert [s.runs for s in states.values()] == [10, 10]
    assert {s.stopped_by for s in states.values()} == {"max"}
    assert group_verdict(rule, seen).verdict == "tie"


def test_a_noisy_runtime_gets_more_runs_than_a_quiet_one_as_far_behind_under_the_verdict_rule():
    # both 30 % behind the leader: the quiet one is separated at once, the noisy one needs more runs to be
    rng = np.random.default_rng(8)
    group = {"lead": _cell(rng, 10, 0.02), "quiet": _cell(rng, 13, 0.02), "noisy": _cell(rng, 13, 0.15),
             **{f"far{i}": _cell(rng, 30 + i, 0.02) for i in range(3)}}
    seen = _rounds(VERDICT, group)
    states = cell_states(VERDICT, {"g": seen})
    assert states["quiet"].runs == VERDICT.min_runs and "separated" in states["quiet"].why
    assert states["noisy"].runs > states["quiet"].runs
    assert states["lead"].runs >= states["noisy"].runs  # the leader measures while a comparison is open


def test_a_cell_that_cannot_reach_its_target_runs_to_max_under_the_precision_rule():
    rule = StoppingRule(min_runs=3, max_runs=10, stop="precision", target=0.01)
    rng = np.random.default_rng(9)
    seen = _rounds(rule, {"quiet": _cell(rng, 10, 0.001), "noisy": _cell(rng, 10, 0.2)})
    states = cell_states(rule, {"g": seen})
    assert (states["noisy"].runs, states["noisy"].stopped_by) == (10, "max")
    assert states["quiet"].runs == 3 and states["quiet"].stopped_by == "precision"


def test_a_runtime_stopped_as_tied_that_later_has_the_lowest_median_is_never_the_one_compared_with():
    # b stops at its first look, tied with the leader a (under the futility threshold); d, noisy and about 10 %
    # behind, keeps a comparison open. a's later runs are much higher (a host's drift, a slow start): a's median
    # rises above b's frozen three. b is never the runtime compared with: its runs are of earlier rounds and it
    # gains no more, so a test against it would separate d (or a, the very runtime b was found tied with) on b's
    # three frozen values; the leader compared with is always one still measuring, and b stays in the tie.
    rule = StoppingRule(min_runs=3, max_runs=10, stop="verdict")
    group = {"a": [1.00, 1.01, 0.99, 1.40, 1.41, 1.39, 1.40, 1.42, 1.38, 1.40],
             "b": [1.005, 0.995, 1.00],
             "c": [3.0, 3.01, 2.99],
             "d": [1.15, 0.98, 1.10, 1.2, 1.0, 1.12, 1.18, 1.05, 1.1, 1.1]}
    used = runs_used(rule, group)
    seen = {name: v[: used[name]] for name, v in group.items()}
    states = cell_states(rule, {"g": seen})
    assert states["b"].why.startswith("tied with a") and states["b"].runs == 3
    assert "separated" in states["c"].why
    assert not any(s.why.startswith("separated: worse than b") for s in states.values())
    answer = group_verdict(rule, seen)
    assert answer.verdict == "tie" and "b" in (answer.leader, *answer.tied)


def test_a_best_is_called_only_where_every_other_runtime_was_separated():
    # seeded groups with near-ties at the top and a host drift: whenever a runtime stopped as tied (for futility
    # or at max), the answer is a tie, whichever runtime has the lowest median at the end
    rng = np.random.default_rng(10)
    bests = ties = 0
    for _ in range(60):
        medians = np.array([1.0, 1.0 + rng.uniform(0, 0.1), *rng.uniform(1.0, 1.5, 5)])
        drift = np.cumsum(rng.normal(0, 0.03, 10))
        runs = medians[:, None] * np.exp(0.04 * rng.standard_t(5, (7, 10)) + drift[None, :])
        values = {f"r{i}": runs[i].tolist() for i in range(7)}
        used = runs_used(VERDICT, values)
        seen = {k: v[: used[k]] for k, v in values.items()}
        answer, states = group_verdict(VERDICT, seen), cell_states(VERDICT, {"g": seen})
        stopped_tied = [n for n, s in states.items() if s.why.startswith("tied with")]
        if answer.verdict == "best":
            bests += 1
            assert not stopped_tied
            assert all(s.why.startswith("separated") for n, s in states.items() if n != answer.leader)
        else:
            ties += 1
            assert set(stopped_tied) <= {answer.leader, *answer.tied}
    assert bests and ties  # both kinds of answer were exercised


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


@pytest.mark.parametrize("rule", [VERDICT, FROM_TWO], ids=["min 3", "min 2"])
def test_no_best_is_claimed_where_every_runtime_is_the_same_more_often_than_alpha(rule):
    # the global null with the sequential looks: any "best" is wrong; the rule looks up to 8 times per group
    rng = np.random.default_rng(6)
    groups = 150
    wrong = 0
    for _ in range(groups):
        runs = np.exp(0.04 * rng.standard_t(5, (9, 10)))
        values = {f"r{i}": runs[i].tolist() for i in range(9)}
        used = runs_used(rule, values)
        wrong += group_verdict(rule, {k: v[: used[k]] for k, v in values.items()}).verdict == "best"
    assert wrong / groups <= rule.alpha


@pytest.mark.parametrize("rule", [VERDICT, FROM_TWO], ids=["min 3", "min 2"])
def test_a_near_tie_for_first_is_rarely_called_for_the_wrong_runtime(rule):
    # the true best is 1 % ahead of the second, at 4 % spread: calling the second best is the wrong verdict
    rng = np.random.default_rng(7)
    groups, wrong = 150, 0
    for _ in range(groups):
        medians = np.array([1.0, 1.01, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9])
        runs = medians[:, None] * np.exp(0.04 * rng.standard_t(5, (9, 10)))
        values = {f"r{i}": runs[i].tolist() for i in range(9)}
        used = runs_used(rule, values)
        answer = group_verdict(rule, {k: v[: used[k]] for k, v in values.items()})
        wrong += answer.verdict == "best" and answer.leader != "r0"
    assert wrong / groups <= rule.alpha / 2


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
