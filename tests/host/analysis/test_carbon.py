"""Energy as carbon and cost: by hand, the labels name the figures used, and nothing is assumed."""
from __future__ import annotations

import math

import pytest

from orchestrator.analysis.carbon import GridFigures, InvalidGridFigure


def test_carbon_and_cost_per_million_by_hand():
    grid = GridFigures(grid_intensity_g_per_kwh=250.0, pue=1.2, price_per_kwh=0.3)
    # 0.9 J x 1e6 = 9e5 J = 0.25 kWh; x 1.2 = 0.3 kWh; x 250 g = 75 g; x 0.3 = 0.09.
    assert grid.grams_per_million(0.9) == pytest.approx(75.0)
    assert grid.cost_per_million(0.9) == pytest.approx(0.09)
    assert grid.carbon_label() == "gCO2e per million inferences at 250 gCO2e/kWh, PUE 1.2"
    assert grid.cost_label().startswith("cost per million inferences at 0.3 per kWh")


def test_unset_means_not_shown_and_no_pue_is_said():
    assert GridFigures().grams_per_million(1.0) is None and GridFigures().carbon_label() is None
    assert GridFigures().cost_per_million(1.0) is None and GridFigures().cost_label() is None
    only = GridFigures(grid_intensity_g_per_kwh=360.0)
    assert only.grams_per_million(1.0) == pytest.approx(100.0)  # 1e6 J = 1/3.6 kWh, x 360 g
    assert "no PUE (measured energy only)" in only.carbon_label()
    assert only.grams_per_million(None) is None


@pytest.mark.parametrize("figures, words", [
    ({"grid_intensity_g_per_kwh": 0.0}, "not a finite positive number"),
    ({"price_per_kwh": -1.0}, "not a finite positive number"),
    ({"grid_intensity_g_per_kwh": math.inf}, "not a finite positive number"),
    ({"price_per_kwh": math.nan}, "not a finite positive number"),
    ({"pue": 0.8}, "below 1"),
])
def test_invalid_figures_are_refused(figures, words):
    with pytest.raises(InvalidGridFigure, match=words):
        GridFigures(**figures)


def test_command_line_figures_override_the_config_one_by_one():
    config = GridFigures(grid_intensity_g_per_kwh=100.0, pue=1.5)
    merged = config.overridden_by(GridFigures(pue=1.1, price_per_kwh=0.2))
    assert merged == GridFigures(100.0, 1.1, 0.2)


def test_report_section_of_the_config_is_validated_and_left_out_of_the_digest():
    from orchestrator.errors import UserError
    from orchestrator.planning.config import parse_config

    base = {"name": "c", "models": ["mobilenet_v2"], "batch_sizes": [1], "runtimes": ["torch/native/cpu"]}
    with_grid = parse_config({**base, "report": {"grid_intensity_g_per_kwh": 250, "pue": 1.2}})
    assert with_grid.report.grid_intensity_g_per_kwh == 250 and with_grid.report.price_per_kwh is None
    assert with_grid.digest() == parse_config(base).digest()  # shown, not measured: a sweep still resumes
    for bad in ({"pue": 0.9}, {"price_per_kwh": 0}, {"grid_intensity_g_per_kwh": float("inf")}, {"co2": 1}):
        with pytest.raises(UserError, match="report"):
            parse_config({**base, "report": bad})
