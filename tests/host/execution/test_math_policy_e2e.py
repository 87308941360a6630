"""The math policy through the real CLI on a simulated Hopper host (tests/host/simulated_nvidia): tf32 is planned on
the GPU provider and skipped on the CPU with the reason, each GPU run's request carries the sweep's CUDA JIT cache,
its record says what torch was set to (the runner has a CPU torch, so the run itself is refused after that), and the
report names the policy once."""
from __future__ import annotations

import json

import pytest

from testkit.faults_helpers import journal
from testkit.nvidia_host import SimGpu, SimHost
from runners.math_policy import CUDA_CACHE_MAX_BYTES, POLICY, TF32_OVERRIDE
from testkit.simulated_sweeps import sweep, sweep_config

pytestmark = pytest.mark.process
TORCH_CUDA, TORCH_CPU = "torch/native/cuda", "torch/native/cpu"


@pytest.fixture(scope="module")
def math_sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("math")
    host = SimHost([SimGpu("NVIDIA H100 80GB HBM3")]).write(folder / "host")
    config = sweep_config(folder / "math.toml", runtimes=[TORCH_CUDA, TORCH_CPU], min_seconds=0.2, baseline_s=0.5)
    config.write_text(config.read_text().replace('batch_sizes', 'precisions = ["fp32", "tf32"]\nbatch_sizes', 1))
    done, out = sweep(host, folder, config)
    return done, out


def test_tf32_is_planned_on_cuda_and_skipped_on_the_cpu_with_the_reason(math_sweep):
    done, out = math_sweep
    assert done.returncode == 0, done.stdout + done.stderr
    plan = json.loads((out / "plan.json").read_text())
    planned = {(r["cell"]["runtime"], r["cell"]["precision"]) for r in plan["runs"]}
    assert planned == {(TORCH_CUDA, "fp32"), (TORCH_CUDA, "tf32"), (TORCH_CPU, "fp32")}
    (skipped,) = plan["skipped"]
    assert skipped["cell"]["precision"] == "tf32" and "tf32 is a GPU math mode" in skipped["reason"]


def test_each_gpu_run_records_the_math_it_was_given_and_the_jit_cache(math_sweep):
    done, out = math_sweep
    records = {(r["runtime"], r["precision"]): r for r in journal(out)}
    cache = str(out / "cuda-jit-cache")
    for precision, tf32 in (("fp32", False), ("tf32", True)):
        record = records[(TORCH_CUDA, precision)]
        request = json.loads((out / "runs" / record["run_id"] / "request.json").read_text())
        assert request["cuda_jit_cache"] == {"path": cache, "max_bytes": CUDA_CACHE_MAX_BYTES}
        # No CUDA torch here: refused with the reason, after the policy was applied and recorded.
        assert record["failure"]["kind"] == "unsupported" and "CUDA" in record["failure"]["message"]
        math = record["result"]["runtime_facts"]["math"]
        assert math["policy"] == POLICY and math["tf32_requested"] is tf32
        assert math["settings"]["torch.backends.cudnn.allow_tf32"] is tf32
        assert math["settings"]["torch.backends.cuda.matmul.allow_tf32"] is tf32
        assert math["settings"]["torch.backends.cudnn.benchmark"] is True
        assert math["environment"][TF32_OVERRIDE] == (None if tf32 else "0")
        assert math["cuda_jit_cache"] == {"path": cache, "max_bytes": CUDA_CACHE_MAX_BYTES, "persistent": True}
    cpu = records[(TORCH_CPU, "fp32")]
    assert cpu["status"] == "ok" and "cuda_jit_cache" not in cpu["result"]["runtime_facts"]["math"]
    assert json.loads((out / "runs" / cpu["run_id"] / "request.json").read_text())["cuda_jit_cache"] is None


def test_the_report_names_the_policy_once(math_sweep):
    done, out = math_sweep
    text = (out / "report" / "report.md").read_text()
    (line,) = [row for row in text.splitlines() if "GPU math policy" in row]
    assert POLICY in line and "cells at precision tf32 allow TF32" in line
    assert text.count(POLICY) == 1
