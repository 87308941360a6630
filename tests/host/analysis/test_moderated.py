"""The verdict rule's comparisons (analysis/stopping.py): the moderated t-test's variance prior fitted across a
group (limma's empirical Bayes), the power it gives to the first looks, and the paired test of per-round differences.
"""
from __future__ import annotations

import numpy as np
import pytest

from orchestrator.analysis.stopping import NO_PRIOR, StoppingRule, cell_states, group_verdict, runs_used, \
    variance_prior

MODERATED = StoppingRule(2, 10, "verdict", test="moderated")
WELCH = StoppingRule(2, 10, "verdict", test="welch")
PAIRED = StoppingRule(2, 10, "verdict", test="paired")


def _prior_model(rng: np.random.Generator, d0: float, s0: float, d: int, groups: int) -> np.ndarray:
    """Sample variances with d df of true variances drawn from the prior model: s0^2 d0 / chi-square(d0)."""
    truth = s0 * d0 / rng.chisquare(d0, groups)
    return truth * rng.chisquare(d, groups) / d


@pytest.mark.parametrize("d0, d", [(4.0, 2), (2.0, 3)])
def test_the_prior_is_recovered_from_variances_drawn_from_it(d0, d):
    variances = _prior_model(np.random.default_rng(1), d0, 0.04, d, 20_000)
    prior = variance_prior(variances, [d] * variances.size, conservative=False)
    assert prior.df == pytest.approx(d0, rel=0.15)
    assert prior.var == pytest.approx(0.04, rel=0.1)


def test_alike_variances_give_a_prior_worth_every_runtime_s_runs_and_no_more():
    rng = np.random.default_rng(2)
    alike = 0.03 * rng.chisquare(2, 20_000) / 2
    assert variance_prior(alike, [2] * alike.size, conservative=False).df > 100  # no spread beyond the sampling noise
    # a group of nine: the prior is estimated from their 18 df, and is worth no more than those
    assert variance_prior([0.03] * 9, [2] * 9).df == 18
    assert all(variance_prior(alike[i:i + 9], [2] * 9).df <= 18 for i in range(0, 900, 9))


def test_unlike_variances_give_a_weak_prior():
    # spreads from 0.5 % to 65 %, as the recorded runtimes' are: the prior knows little, the test stays Welch's
    variances = np.array([0.005, 0.01, 0.02, 0.04, 0.05, 0.08, 0.12, 0.3, 0.65]) ** 2
    assert variance_prior(variances, [3] * 9).df < 2


def test_too_few_usable_variances_give_no_prior():
    assert variance_prior([0.01, 0.02], [2, 2]) == NO_PRIOR
    assert variance_prior([0.01, 0.0, 0.02, float("nan")], [2, 2, 2, 2]) == NO_PRIOR  # identical values, failed
    assert variance_prior([0.01, 0.02, 0.03], [0, 2, 2]) == NO_PRIOR  # one value: no df


def _group(rng: np.random.Generator, behind: float, cv: float, runtimes: int = 9, n: int = 10) -> dict[str, list]:
    medians = [1.0, 1.0 + behind, *np.linspace(1.5, 2.0, runtimes - 2)]
    return {f"r{i}": (m * np.exp(cv * rng.standard_normal(n))).tolist() for i, m in enumerate(medians)}


def test_a_group_of_alike_spreads_settles_in_fewer_runs_with_the_moderated_test():
    # 9 runtimes of one 3 % spread, the runner-up 15 % behind: on 2 or 3 runs Welch's test has 1 to 4 degrees of
    # freedom, the moderated test those plus the prior's where the group's spreads are alike
    rng = np.random.default_rng(3)
    moderated = welch = 0
    for _ in range(20):
        group = _group(rng, 0.15, 0.03)
        moderated += sum(runs_used(MODERATED, group).values())
        welch += sum(runs_used(WELCH, group).values())
    assert moderated < 0.9 * welch  # 443 against 538 runs here


def test_the_moderated_test_says_so_where_it_separates():
    group = _group(np.random.default_rng(4), 0.3, 0.02)
    states = cell_states(MODERATED, {"g": group})
    assert "moderated t-test, Holm p" in states["r1"].why
    assert group_verdict(MODERATED, {k: v[: states[k].runs] for k, v in group.items()}).verdict == "best"


@pytest.mark.parametrize("rule", [MODERATED, PAIRED], ids=["moderated", "paired"])
def test_no_best_is_claimed_among_equals_of_unlike_spreads_more_often_than_alpha(rule):
    # the global null where the group's spreads differ as much as the recorded ones (0.5 % to 65 %, log sd 0.85):
    # a prior fitted on them must not make the noisy runtimes' variances small enough to separate an equal
    rng = np.random.default_rng(5)
    groups, wrong = 200, 0
    for _ in range(groups):
        scale = np.exp(rng.normal(np.log(0.035), 0.85, 9))
        runs = np.exp(scale[:, None] * rng.standard_t(5, (9, 10)))
        values = {f"r{i}": runs[i].tolist() for i in range(9)}
        used = runs_used(rule, values)
        wrong += group_verdict(rule, {k: v[: used[k]] for k, v in values.items()}).verdict == "best"
    assert wrong / groups <= rule.alpha


def test_the_paired_test_removes_a_drift_shared_by_the_round():
    # two quiet runtimes 3 % apart under a host drift of 5 % a round: each one's own spread is mostly the drift,
    # the per-round difference is not
    rng = np.random.default_rng(6)
    drift = np.cumsum(rng.normal(0, 0.05, 10))
    group = {name: (m * np.exp(0.003 * rng.standard_normal(10) + drift)).tolist()
             for name, m in (("a", 1.0), ("b", 1.03), ("c", 1.6), ("d", 1.7))}
    paired, welch = cell_states(PAIRED, {"g": group})["b"], cell_states(WELCH, {"g": group})["b"]
    assert paired.why.startswith("separated: worse than a (paired t-test")
    assert welch.why.startswith("tied with a")  # its own spread, the drift's, hides the 3 %


@pytest.mark.parametrize("rule", [MODERATED, PAIRED], ids=["moderated", "paired"])
def test_asking_after_every_round_or_once_gives_the_same_states_with_every_test(rule):
    # the prior of a look is fitted on the values seen by that look only, so a replay finds the same decisions
    rng = np.random.default_rng(7)
    group = {f"r{i}": (10 * (1 + 0.04 * i) * np.exp(0.04 * rng.standard_normal(10))).tolist() for i in range(9)}
    used = runs_used(rule, group)
    seen = {name: [] for name in group}
    for _ in range(rule.max_runs):
        states = cell_states(rule, {"g": seen})
        active = [n for n in group if states[n].active]
        if not active:
            break
        for name in active:
            seen[name].append(group[name][len(seen[name])])
    assert used == {name: len(v) for name, v in seen.items()}


def test_an_unknown_test_is_refused_in_one_line():
    with pytest.raises(ValueError, match="test must be one of moderated, welch, paired, limma"):
        StoppingRule(2, 10, "verdict", test="student")  # type: ignore[arg-type]


def test_the_safeguards_are_what_keeps_the_moderated_test_honest_among_unlike_spreads():
    # the same null groups of unlike spreads: limma's moderated t as published (the point estimate of the prior,
    # every variance pulled toward it, the leader's too) calls a "best" among equals many times as often as the
    # safeguarded test, which calls it no more often than Welch's test on each runtime's own variance
    rng = np.random.default_rng(5)
    rules = {test: StoppingRule(2, 10, "verdict", test=test) for test in ("moderated", "limma", "welch")}
    wrong = dict.fromkeys(rules, 0)
    for _ in range(600):
        scale = np.exp(rng.normal(np.log(0.035), 0.85, 9))
        runs = np.exp(scale[:, None] * rng.standard_t(5, (9, 10)))
        values = {f"r{i}": runs[i].tolist() for i in range(9)}
        for test, rule in rules.items():
            used = runs_used(rule, values)
            wrong[test] += group_verdict(rule, {k: v[: used[k]] for k, v in values.items()}).verdict == "best"
    assert wrong["moderated"] <= wrong["welch"]
    assert wrong["limma"] >= 5 * max(1, wrong["moderated"])  # 18 against 2 of 600 here
