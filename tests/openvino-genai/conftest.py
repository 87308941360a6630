"""Tests that run INSIDE the openvino-genai environment: `$(greenrt env python openvino-genai) -m pytest
tests/openvino-genai`. The checkpoint, its conversions and the reference runs are made once per session
(testkit/generative_tier.py)."""
from __future__ import annotations

from ovgenai_helpers import TIER
from testkit.generative_tier import checkpoint, converted, made, reference, tier_fixture  # noqa: F401 (fixtures)

tier = tier_fixture(TIER)
ir_fp32 = converted("fp32")
