"""The math policy as torch applies it (runners/math_policy.py): its TF32 and autotuning switches are settable on the
CPU build, so what a cuda run would set is checked here, and a CPU run records what it set."""
from __future__ import annotations

import pytest
import torch

from runners.adapters.torch_compiled import TorchCompiledAdapter
from runners.adapters.torch_common import apply_torch_math
from runners.adapters.torch_native import TorchNativeAdapter
from runners.loop import execute
from runners.math_policy import POLICY, policy_for
from torch_helpers import make_request


@pytest.fixture(autouse=True)
def restore_torch_flags():
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.get_float32_matmul_precision(), torch.backends.cudnn.benchmark)
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[0], saved[1]
    torch.set_float32_matmul_precision(saved[2])
    torch.backends.cudnn.benchmark = saved[3]


def test_fp32_on_cuda_turns_tf32_off_for_convolutions_too_and_autotuning_on():
    # torch's own defaults: TF32 on for cuDNN convolutions, off for matmuls, no autotuning.
    torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = True, False
    settings = apply_torch_math(torch, policy_for("fp32"), gpu=True)
    assert torch.backends.cudnn.allow_tf32 is False and torch.backends.cuda.matmul.allow_tf32 is False
    assert torch.get_float32_matmul_precision() == "highest"
    assert torch.backends.cudnn.benchmark is True
    assert settings["torch.backends.cudnn.allow_tf32"] is False
    assert settings["torch.backends.cudnn.benchmark"] is True
    assert settings["float32_matmul_precision"] == "highest"


def test_tf32_allows_tf32_for_matmuls_and_convolutions_on_cuda_only():
    settings = apply_torch_math(torch, policy_for("tf32"), gpu=True)
    assert torch.backends.cuda.matmul.allow_tf32 is True and torch.backends.cudnn.allow_tf32 is True
    assert settings["float32_matmul_precision"] == "high"
    apply_torch_math(torch, policy_for("tf32"), gpu=False)
    assert torch.backends.cuda.matmul.allow_tf32 is False and torch.get_float32_matmul_precision() == "highest"


def test_a_cpu_run_records_the_policy_and_the_flags_read_back(tmp_path):
    torch.backends.cudnn.allow_tf32 = True
    adapter = TorchNativeAdapter()
    result = execute(make_request(tmp_path), adapter)
    assert result.status == "ok", result.error
    math = result.runtime_facts["math"]
    assert math["policy"] == POLICY and math["autotune"] is True
    assert math["tf32_requested"] is None  # a CPU run: TF32 is a GPU math mode
    assert math["settings"]["torch.backends.cudnn.allow_tf32"] is False
    assert "environment" not in math  # nothing of NVIDIA's is set for a CPU run


def test_inductor_reports_the_policy_it_compiled_under():
    adapter = TorchCompiledAdapter()
    adapter.math = {"policy": POLICY}
    assert adapter.runtime_facts() == {"math": {"policy": POLICY}}  # before compiling: the policy alone
