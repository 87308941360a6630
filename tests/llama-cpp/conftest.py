"""Tests that run INSIDE the llama-cpp environment: `$(greenrt env python llama-cpp) -m pytest tests/llama-cpp`."""
from __future__ import annotations

import pytest

from llamacpp_helpers import convert, make_checkpoint


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("checkpoint"))


@pytest.fixture(scope="session")
def gguf_f32(checkpoint, tmp_path_factory):
    return convert(checkpoint, tmp_path_factory.mktemp("gguf"), "fp32")
