"""Tests that run INSIDE the ctranslate2 environment: `$(greenrt env python ctranslate2) -m pytest
tests/ctranslate2`. The checkpoint, its conversions and the reference runs are made once per session
(testkit/generative_tier.py)."""
from __future__ import annotations

from ct2_helpers import TIER
from testkit.generative_tier import checkpoint, converted, made, reference, tier_fixture  # noqa: F401 (fixtures)

tier = tier_fixture(TIER)
fp32, int8 = converted("fp32"), converted("int8")
