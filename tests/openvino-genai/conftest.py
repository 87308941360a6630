"""Tests that run INSIDE the openvino-genai environment: `$(greenrt env python openvino-genai) -m pytest
tests/openvino-genai`."""
from __future__ import annotations

import pytest

from ovgenai_helpers import convert, make_checkpoint, torch_reference


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("checkpoint"))


@pytest.fixture(scope="session")
def reference(checkpoint, tmp_path_factory):
    """batch size -> the reference run's outputs (torch/transformers/cpu, fp32)."""
    folder = tmp_path_factory.mktemp("reference")
    return {batch: torch_reference(folder, checkpoint, batch) for batch in (1, 2)}


@pytest.fixture(scope="session")
def ir_fp32(checkpoint, tmp_path_factory):
    return convert(checkpoint, tmp_path_factory.mktemp("ir"), "fp32")
