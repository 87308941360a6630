"""Tests that run INSIDE the openvino environment: `$(greenrt env python openvino) -m pytest tests/openvino`."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
for path in (str(_HERE.parents[1]), str(_HERE)):  # the repo root (runners, models) and ov_helpers
    if path not in sys.path:
        sys.path.insert(0, path)

from ov_helpers import TinyClassifier, build_tiny_classifier  # noqa: E402


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> TinyClassifier:
    """A small image classifier with mobilenet_v2's input and output (so the registry's inputs feed it)."""
    return build_tiny_classifier(tmp_path_factory.mktemp("onnx") / "tiny.onnx")
