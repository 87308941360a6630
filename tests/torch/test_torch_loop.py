"""The shared measured loop (runners.loop): budgets, window, digests, errors."""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from torch_helpers import ROOT, make_request
from runners.adapters import resolve
from runners.adapters.contract import Adapter
from runners.loop import execute, output_digest
from runners.protocol import Budget, RunResult, from_dict, to_dict


class FakeAdapter(Adapter):
    """Sleeps `seconds` per run (the first run `first` seconds: an engine build) and records the call order."""

    def __init__(self, seconds=0.005, first=0.0, fail_in=None, exc=RuntimeError("boom")):
        self.seconds, self.first, self.fail_in, self.exc = seconds, first, fail_in, exc
        self.calls: list[str] = []
        self.runs = 0

    def load(self, request):
        self.calls.append("load")
        if self.fail_in == "load":
            raise self.exc

    def prepare(self, inputs):
        self.calls.append("prepare")
        return {k: v.copy() for k, v in inputs.items()}

    def run(self, prepared):
        self.calls.append("run")
        self.runs += 1
        if self.fail_in == "run" and self.runs == 3:
            raise self.exc
        time.sleep(self.first if self.runs == 1 and self.first else self.seconds)
        return {"y": prepared["pixel_values"][:, :2, 0, 0] * self.runs}

    def synchronize(self):
        self.calls.append("sync")

    def to_numpy(self, outputs):
        return outputs

    def versions(self):
        return {"fake": "1"}


def test_window_honours_min_iterations_and_min_seconds(tmp_path):
    fast = execute(make_request(tmp_path, budget=Budget(warmup_iterations=0, min_iterations=7)), FakeAdapter(0.001))
    assert fast.status == "ok" and fast.iterations == 7
    timed = execute(make_request(tmp_path, budget=Budget(warmup_iterations=0, min_iterations=3, min_seconds=0.25)),
                    FakeAdapter(0.01))
    assert timed.status == "ok"
    assert timed.window_end_ns - timed.window_start_ns >= 0.25e9
    assert timed.iterations > 3  # the seconds, not the iterations, ended this window
    assert timed.iterations == len(timed.latencies_ns)


def test_max_seconds_ends_the_window_early(tmp_path):
    result = execute(make_request(tmp_path, budget=Budget(warmup_iterations=0, min_iterations=10_000,
                                                          max_seconds=0.1)), FakeAdapter(0.01))
    assert result.status == "ok"
    assert 2 <= result.iterations < 100
    assert result.window_end_ns - result.window_start_ns < 0.5e9


def test_warm_up_runs_both_minimums_and_times_the_engine_build_apart(tmp_path):
    adapter = FakeAdapter(seconds=0.005, first=0.08)
    budget = Budget(warmup_iterations=2, warmup_seconds=0.15, min_iterations=3)
    result = execute(make_request(tmp_path, budget=budget), adapter)
    assert result.status == "ok"
    assert result.warmup_iterations >= 2 and result.warmup_seconds >= 0.15
    assert result.warmup_iterations > 2  # 0.15 s needs more than the two iterations
    assert result.engine_build_seconds >= 0.08
    assert max(result.latencies_ns) < 0.08e9  # the slow first inference is not in the window
    assert adapter.runs == result.warmup_iterations + result.iterations


def test_inputs_are_prepared_once_before_timing_and_each_run_is_synchronised(tmp_path):
    adapter = FakeAdapter(0.0)
    result = execute(make_request(tmp_path, budget=Budget(warmup_iterations=2, min_iterations=4)), adapter)
    assert result.status == "ok"
    assert adapter.calls[:2] == ["load", "prepare"] and adapter.calls.count("prepare") == 1
    after_prepare = adapter.calls[2:]
    runs = [i for i, c in enumerate(after_prepare) if c == "run"]
    assert len(runs) == 6 and all(after_prepare[i + 1] == "sync" for i in runs)


def test_window_is_on_the_monotonic_clock_and_contains_the_latencies(tmp_path):
    before = time.monotonic_ns()
    result = execute(make_request(tmp_path, budget=Budget(warmup_iterations=1, min_iterations=5)), FakeAdapter(0.01))
    after = time.monotonic_ns()
    assert before < result.window_start_ns < result.window_end_ns < after
    assert sum(result.latencies_ns) <= result.window_end_ns - result.window_start_ns
    assert all(lat >= 0.009e9 for lat in result.latencies_ns)


def test_result_survives_json_round_trip(tmp_path):
    result = execute(make_request(tmp_path), FakeAdapter(0.0))
    again = from_dict(RunResult, to_dict(result))
    assert again == result and result.versions["fake"] == "1" and result.peak_host_rss_bytes > 10 * 2**20


def test_digest_is_stable_for_one_seed_and_changes_with_the_inputs(tmp_path):
    """Real torch runs: the digest is what the fidelity checks compare across runtimes."""
    a = execute(make_request(tmp_path, run_id="a", input_seed=1))
    b = execute(make_request(tmp_path, run_id="b", input_seed=1))
    c = execute(make_request(tmp_path, run_id="c", input_seed=2))
    assert a.status == b.status == c.status == "ok"
    assert a.output_digest == b.output_digest
    assert a.output_digest["sha256"] != c.output_digest["sha256"]
    logits = a.output_digest["outputs"]["logits"]
    assert logits["shape"] == [1, 1000] and logits["dtype"] == "float32" and len(logits["first"]) == 4
    assert a.provider_used == "cpu" and a.threads >= 1 and "torch" in a.versions and a.devices


def test_outputs_path_saves_the_digested_outputs(tmp_path):
    out = tmp_path / "outputs.npz"
    result = execute(make_request(tmp_path, outputs_path=str(out)), FakeAdapter(0.0))
    with np.load(out) as saved:
        assert output_digest(dict(saved)) == result.output_digest


def test_digest_canonicalises_to_float32_and_int64():
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    assert output_digest({"x": x})["sha256"] == output_digest({"x": x.astype(np.float16)})["sha256"]
    assert output_digest({"i": np.arange(3, dtype=np.int32)})["sha256"] == \
        output_digest({"i": np.arange(3, dtype=np.int64)})["sha256"]
    assert output_digest({"a": x, "b": x + 1})["sha256"] != output_digest({"a": x + 1, "b": x})["sha256"]


def test_unknown_model_is_an_error_result_naming_the_valid_models(tmp_path):
    result = execute(make_request(tmp_path, model="resnet18"))
    assert result.status == "error" and result.error.kind == "bad-request"
    for name in ("resnet50", "mobilenet_v2", "bert-base-uncased"):
        assert name in result.error.message
    assert result.iterations == 0 and result.window_start_ns is None


@pytest.mark.parametrize("fail_in, exc, kind", [
    ("load", RuntimeError("cannot read"), "load"),
    ("run", RuntimeError("kernel failed"), "runtime"),
    ("run", MemoryError(), "out-of-memory"),
    ("run", RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "out-of-memory"),
])
def test_failures_become_error_results_of_the_right_kind(tmp_path, fail_in, exc, kind):
    result = execute(make_request(tmp_path), FakeAdapter(0.0, fail_in=fail_in, exc=exc))
    assert result.status == "error" and result.error.kind == kind
    assert "Traceback" in result.error.traceback
    assert result.versions["fake"] == "1"  # what was known is still reported
    if fail_in == "run":
        assert result.load_seconds is not None


@pytest.mark.parametrize("runtime, precision, needle", [
    ("torch/native/cuda", "fp32", "CUDA is not available"),
    ("torch/native/cpu", "fp16", "fp16"),
    ("torch/native/tpu", "fp32", "tpu"),
    ("jax/native/cpu", "fp32", "no adapter"),
])
def test_runtimes_this_host_cannot_run_are_unsupported(tmp_path, runtime, precision, needle):
    result = execute(make_request(tmp_path, runtime=runtime, precision=precision))
    assert result.status == "error" and result.error.kind == "unsupported"
    assert needle in result.error.message
    assert result.latencies_ns == [] and result.provider_used is None


def test_adapter_registry_resolves_formats_without_importing_frameworks():
    assert resolve("onnxruntime/onnx-from-tensorflow/cuda").cls == "OnnxRuntimeAdapter"
    assert resolve("torch/native/cpu").cls == "TorchNativeAdapter"
    code = ("import sys, runners.adapters, runners.adapters.contract, runners.runtimes_table, runners.loop, "
            "runners.cli, runners.adapters.torch_native, "
            "runners.adapters.onnxruntime_session, models, models.inputs; "
            "bad = sorted(m for m in ('torch', 'onnxruntime', 'onnx', 'transformers') if m in sys.modules); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_the_adapters_and_the_bottom_of_runners_never_import_the_loop():
    """No import circle: the loop imports the contract and the registry, never the other way round."""
    code = ("import sys, runners.runtimes_table, runners.failures; "
            "low = sorted(m for m in sys.modules if m.startswith('runners')); "
            "assert low == ['runners', 'runners.failures', 'runners.ort_session_keys', 'runners.protocol', "
            "'runners.runtimes_table'], low; "
            "import runners.adapters, runners.adapters.torch_native, runners.adapters.tensorflow_native, "
            "runners.adapters.mxnet_native, runners.adapters.onnxruntime_session; "
            "assert 'runners.loop' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
