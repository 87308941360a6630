"""Tests that run INSIDE the onnxruntime-genai environment: `$(greenrt env python onnxruntime-genai) -m pytest
tests/onnxruntime-genai`. The checkpoint, its conversions and the torch reference are made once per session."""
from __future__ import annotations

import pytest

from genai_helpers import export, make_checkpoint, torch_reference


@pytest.fixture(scope="session")
def made(tmp_path_factory):
    return tmp_path_factory.mktemp("ort-genai")


@pytest.fixture(scope="session")
def checkpoint(made):
    return make_checkpoint(made)


@pytest.fixture(scope="session")
def reference(checkpoint, made):
    return torch_reference(checkpoint, made)


def _converted(made, checkpoint, precision):
    proc, result = export(made, f"ort-genai-{precision}", framework="onnxruntime-genai", target="ort-genai",
                          precision=precision, source_path=str(checkpoint))
    assert proc.returncode == 0 and result["status"] == "ok", (proc.stderr[-3000:], result.get("error"))
    return result


@pytest.fixture(scope="session")
def fp32(made, checkpoint):
    return _converted(made, checkpoint, "fp32")


@pytest.fixture(scope="session")
def int4(made, checkpoint):
    return _converted(made, checkpoint, "int4")
