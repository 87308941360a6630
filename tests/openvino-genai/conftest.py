"""Tests that run INSIDE the openvino-genai environment: `$(greenrt env python openvino-genai) -m pytest
tests/openvino-genai`."""
from __future__ import annotations

import pytest

from ovgenai_helpers import convert, make_checkpoint


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("checkpoint"))


@pytest.fixture(scope="session")
def ir_fp32(checkpoint, tmp_path_factory):
    return convert(checkpoint, tmp_path_factory.mktemp("ir"), "fp32")
