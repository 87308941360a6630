"""A real torch runner run whose model overflows fails with kind "output" (issue 20, point 9): a user's torch.export
program that scales its input past float32's range, as an fp16 model does past 65504."""
from __future__ import annotations

import hashlib

import torch
from torch import nn

from runners.loop import execute
from torch_helpers import make_request


class Overflows(nn.Module):
    """scores = x * 1e30 * 1e30: inf where x > 0 (float32's largest value is 3.4e38), -inf where x < 0."""

    def forward(self, x):
        return (x * 1e30) * 1e30


class Finite(nn.Module):
    def forward(self, x):
        return x * 2.0


def _user_model(tmp_path, module: nn.Module, name: str) -> dict:
    path = tmp_path / f"{name}.pt2"
    program = torch.export.export(module, (torch.ones(2, 4),), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    torch.export.save(program, str(path))
    data = path.read_bytes()
    return {"name": name, "format": "torch", "path": str(path), "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "loader": None,
            "inputs": [{"name": "x", "shape": [4], "dtype": "float32", "range": [0.5, 1.0]}], "outputs": ["scores"]}


def test_a_model_that_overflows_fails_the_run_with_kind_output(tmp_path):
    entry = _user_model(tmp_path, Overflows(), "overflows")
    result = execute(make_request(tmp_path, model="overflows", batch_size=2, user_model=entry))
    assert result.status == "error" and result.error.kind == "output", result.error
    assert result.error.message.endswith("scores: 8 of 8 (0 NaN, 8 inf; dtype float32)")
    assert result.output_digest["outputs"]["scores"]["nonfinite"] == 8 and result.iterations > 0


def test_the_same_model_with_finite_outputs_is_a_result(tmp_path):
    entry = _user_model(tmp_path, Finite(), "finite")
    result = execute(make_request(tmp_path, model="finite", batch_size=2, user_model=entry))
    assert result.status == "ok", result.error
