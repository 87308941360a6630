"""Energy per inference as carbon and cost per million inferences, from the user's own grid figures.

Nothing here has a default: a grid's carbon intensity and an electricity price are the user's facts, and a
country's average passed off as theirs would be a guess presented as a measurement. Unset means not shown.
PUE (facility energy / IT energy, at least 1) scales the measured energy up to what the building drew; unset, the
figures are of the measured energy alone, and their label says so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

J_PER_KWH = 3.6e6
PER = 1_000_000  # figures are per million inferences: per-inference grams and prices are unreadably small
# What a million counts: inferences (a forward pass of one sample), or output tokens for a generate call's cell,
# whose energy figure is per output token (analysis/advice.py GENERATIVE_METRICS).
INFERENCES, OUTPUT_TOKENS = "inferences", "output tokens"


class InvalidGridFigure(ValueError):
    """A grid figure that is not a finite positive number (or a PUE below 1)."""


def check_figure(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InvalidGridFigure(f"{name}: {value!r} is not a finite positive number")
    if name == "pue" and value < 1:
        raise InvalidGridFigure(f"pue: {value!r} is below 1 (PUE is facility energy / IT energy, at least 1)")
    return float(value)


@dataclass(frozen=True)
class GridFigures:
    grid_intensity_g_per_kwh: float | None = None
    pue: float | None = None
    price_per_kwh: float | None = None

    def __post_init__(self) -> None:
        for name in ("grid_intensity_g_per_kwh", "pue", "price_per_kwh"):
            check_figure(name, getattr(self, name))

    def overridden_by(self, other: GridFigures) -> GridFigures:
        """These figures with each one `other` sets replacing ours (command-line options over the config)."""
        return GridFigures(*(getattr(other, n) if getattr(other, n) is not None else getattr(self, n)
                             for n in ("grid_intensity_g_per_kwh", "pue", "price_per_kwh")))

    @property
    def carbon_shown(self) -> bool:
        return self.grid_intensity_g_per_kwh is not None

    @property
    def cost_shown(self) -> bool:
        return self.price_per_kwh is not None

    def _kwh_per_million(self, j_per_inference: float) -> float:
        return j_per_inference * PER / J_PER_KWH * (self.pue or 1.0)

    def grams_per_million(self, j_per_inference: float | None) -> float | None:
        if j_per_inference is None or self.grid_intensity_g_per_kwh is None:
            return None
        return self._kwh_per_million(j_per_inference) * self.grid_intensity_g_per_kwh

    def cost_per_million(self, j_per_inference: float | None) -> float | None:
        if j_per_inference is None or self.price_per_kwh is None:
            return None
        return self._kwh_per_million(j_per_inference) * self.price_per_kwh

    def _pue_words(self) -> str:
        return f"PUE {self.pue:g}" if self.pue is not None else "no PUE (measured energy only)"

    def carbon_label(self, per: str = INFERENCES) -> str | None:
        if self.grid_intensity_g_per_kwh is None:
            return None
        return f"gCO2e per million {per} at {self.grid_intensity_g_per_kwh:g} gCO2e/kWh, {self._pue_words()}"

    def cost_label(self, per: str = INFERENCES) -> str | None:
        if self.price_per_kwh is None:
            return None
        return (f"cost per million {per} at {self.price_per_kwh:g} per kWh (the price's currency), "
                f"{self._pue_words()}")
