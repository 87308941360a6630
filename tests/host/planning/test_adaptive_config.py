"""`repetitions` as a count (as ever) or as an adaptive table: accepted forms, one line per bad value, the digest of
a fixed count unchanged, and what `greenrt plan` says of an adaptive sweep."""
from __future__ import annotations

import pytest

from orchestrator.errors import UserError
from orchestrator.planning.config import parse_config
from orchestrator.planning.config_sections import AdaptiveRepetitions
from orchestrator.planning.planner import HostCapabilities, adaptive_line, plan_sweep

VALID = {"name": "t", "models": ["mobilenet_v2"], "batch_sizes": [1, 2],
         "runtimes": ["torch/native/cpu", "onnxruntime/onnx-from-torch/cpu"]}


def refusal(repetitions) -> list[str]:
    with pytest.raises(UserError) as caught:
        parse_config({**VALID, "repetitions": repetitions})
    return str(caught.value).splitlines()


def test_both_tables_of_the_issue_are_accepted_and_a_count_is_what_it_was():
    verdict = parse_config({**VALID, "repetitions": {"min": 2, "max": 10, "stop": "verdict", "alpha": 0.05}})
    assert verdict.adaptive == AdaptiveRepetitions(min=2, max=10, stop="verdict")
    assert verdict.max_repetitions == 10 and verdict.adaptive_table["stop"] == "verdict"
    precision = parse_config({**VALID, "repetitions": {"min": 3, "max": 10, "stop": "precision", "target": 0.02}})
    assert precision.adaptive.target == 0.02 and precision.adaptive.alpha == 0.05
    fixed = parse_config({**VALID, "repetitions": 4})
    assert fixed.repetitions == 4 and fixed.adaptive is None and fixed.adaptive_table is None
    assert fixed.max_repetitions == 4 and len(plan_sweep(fixed, HostCapabilities()).runs) == 16
    # A count keeps the digest it had before tables were possible (computed by that version): recorded sweeps resume.
    assert fixed.digest() == "120e7abaf28a06aa" and fixed.model_dump(mode="json")["repetitions"] == 4
    assert verdict.digest() != parse_config({**VALID, "repetitions": 10}).digest()
    assert verdict.digest() != precision.digest()


@pytest.mark.parametrize("repetitions, expected", [
    (0, "config: repetitions = 0: out of range; valid: a count from 1 to 1000, or a table such as {min = 2"),
    (1001, "config: repetitions = 1001: out of range; valid: a count from 1 to 1000"),
    (True, "config: repetitions = True: neither a count nor a table; valid: a count from 1 to 1000"),
    ("3", "config: repetitions = '3': neither a count nor a table"),
    (2.5, "config: repetitions = 2.5: neither a count nor a table"),
    ({"min": 1, "max": 5, "stop": "verdict"}, "config: repetitions.min: Input should be greater than or equal to 2, "
                                              "not 1; valid: from 2 to 1000"),
    ({"min": 2, "max": 5000, "stop": "verdict"}, "config: repetitions.max: Input should be less than or equal to "
                                                 "1000, not 5000; valid: from 2 to 1000"),
    ({"min": 4, "max": 4, "stop": "verdict"}, "config: repetitions.max = 4: not above repetitions.min = 4; valid: a "
                                              "max above min (or repetitions = 4, a fixed count)"),
    ({"min": 2, "max": 5, "stop": "median"}, "config: repetitions.stop: Input should be 'precision' or 'verdict', "
                                             "not 'median'"),
    ({"min": 2, "max": 5, "stop": "precision"}, "config: repetitions.target: required with stop = 'precision'; "
                                                "valid: the relative half-width"),
    ({"min": 2, "max": 5, "stop": "precision", "target": 1.5}, "config: repetitions.target: Input should be less "
                                                               "than 1, not 1.5; valid: above 0 below 1"),
    ({"min": 2, "max": 5, "stop": "verdict", "target": 0.02}, "config: repetitions.target = 0.02: stop = 'verdict' "
                                                              "has no target; valid: leave target out"),
    ({"min": 2, "max": 5, "stop": "verdict", "alpha": 0.0}, "config: repetitions.alpha: Input should be greater "
                                                            "than 0, not 0.0; valid: above 0 to 0.5"),
    ({"min": 2, "max": 5, "stop": "verdict", "alpha": "0.05"}, "config: repetitions.alpha: Input should be a valid "
                                                               "number, not '0.05'"),
    ({"mni": 2, "max": 5, "stop": "verdict"}, "config: repetitions.mni: unknown key; valid keys here: min, max, "
                                              "stop, target, alpha"),
    ({}, "config: repetitions.min: required key missing; valid: a count of runs per cell from 2 to 1000"),
])
def test_each_bad_value_is_one_line_naming_the_valid_choices(repetitions, expected):
    lines = refusal(repetitions)
    assert any(line.startswith(expected) for line in lines), lines
    assert len(lines) <= 3


def test_every_bad_value_of_a_table_is_its_own_line():
    lines = refusal({"min": 0, "max": 0, "stop": "x"})
    assert [line.split(":")[1].strip() for line in lines] == ["repetitions.min", "repetitions.max", "repetitions.stop"]


def test_plan_holds_every_run_up_to_max_and_says_how_many_it_measures_at_least_and_at_most():
    cfg = parse_config({**VALID, "repetitions": {"min": 3, "max": 10, "stop": "precision", "target": 0.02}})
    plan = plan_sweep(cfg, HostCapabilities())
    assert len(plan.runs) == 40 and {r.repetition for r in plan.runs} == set(range(10))
    assert plan.config["repetitions"]["target"] == 0.02  # plan.json keeps the rule
    line = adaptive_line(cfg.adaptive, plan)
    assert line.startswith("adaptive: 12 to 40 runs (4 cells, 3 to 10 repetitions each: stop = 'precision'"), line
