"""Tests that run INSIDE the llama-cpp environment: `$(greenrt env python llama-cpp) -m pytest
tests/llama-cpp`. The checkpoint, its conversions and the reference runs are made once per session
(testkit/generative_tier.py)."""
from __future__ import annotations

from llamacpp_helpers import TIER
from testkit.generative_tier import checkpoint, converted, made, reference, tier_fixture  # noqa: F401 (fixtures)

tier = tier_fixture(TIER)
gguf_f32 = converted("fp32")
