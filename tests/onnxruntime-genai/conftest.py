"""Tests that run INSIDE the onnxruntime-genai environment: `$(greenrt env python onnxruntime-genai) -m pytest
tests/onnxruntime-genai`. The checkpoint, its conversions and the reference runs are made once per session
(testkit/generative_tier.py)."""
from __future__ import annotations

from genai_helpers import TIER
from testkit.generative_tier import checkpoint, converted, made, reference, tier_fixture  # noqa: F401 (fixtures)

tier = tier_fixture(TIER)
fp32, int4 = converted("fp32"), converted("int4")
