"""Tests that run INSIDE the llama-cpp environment: `$(greenrt env python llama-cpp) -m pytest
tests/llama-cpp`."""
from __future__ import annotations

import pytest

from llamacpp_helpers import convert, make_checkpoint, torch_reference


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("checkpoint"))


@pytest.fixture(scope="session")
def reference(checkpoint, tmp_path_factory):
    """batch size -> the reference run's outputs (torch/transformers/cpu, fp32)."""
    folder = tmp_path_factory.mktemp("reference")
    return {batch: torch_reference(folder, checkpoint, batch) for batch in (1, 2)}


@pytest.fixture(scope="session")
def gguf_f32(checkpoint, tmp_path_factory):
    return convert(checkpoint, tmp_path_factory.mktemp("gguf"), "fp32")
