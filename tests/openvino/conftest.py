"""Tests that run INSIDE the openvino environment: `$(greenrt env python openvino) -m pytest tests/openvino`."""
from __future__ import annotations

import pytest

from ov_helpers import TinyClassifier, build_tiny_classifier


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> TinyClassifier:
    """A small image classifier with mobilenet_v2's input and output (so the registry's inputs feed it)."""
    return build_tiny_classifier(tmp_path_factory.mktemp("onnx") / "tiny.onnx")
