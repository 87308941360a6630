"""torch/inductor/cpu: real torch.compile runs through the shared loop, on tiny modules so that each compile takes
seconds; inductor's cache (its precompiled headers too) goes to the tests' tmp folders (provider option cache_dir)."""
from __future__ import annotations

import statistics

import numpy as np
import pytest
import torch
from torch import nn

from models.fidelity import compare_outputs
from runners.adapters import adapter_class
from runners.adapters.torch_compiled import TorchCompiledAdapter
from runners.adapters.torch_native import TorchNativeAdapter
from runners.loop import execute
from runners.protocol import Budget
from torch_helpers import make_request

WARM_ONE = Budget(warmup_iterations=1, min_iterations=5)


class TinyNet(nn.Module):
    """mobilenet_v2's input (N, 3, 224, 224) -> (logits,) in a few ops: it compiles in seconds."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)  # the same weights in every instance: eager and compiled are compared
        self.conv = nn.Conv2d(3, 8, 3, stride=4)
        self.fc = nn.Linear(8, 10)
        self.scale = 1.0  # a Python constant: dynamo guards on it, so changing it forces a recompilation

    def body(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(pixel_values)).mean(dim=(2, 3)) * self.scale

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.fc(self.body(pixel_values)),)


class BranchyNet(TinyNet):
    """A data-dependent Python branch: dynamo cannot trace it and breaks the graph there."""

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor]:
        hidden = self.body(pixel_values)
        if hidden.sum() > 0:
            hidden = hidden + 1
        return (self.fc(hidden),)


def tiny(base: type, net: type = TinyNet) -> type:
    """`base` (the eager or the compiled adapter) building `net` instead of the registry's model."""
    return type(f"{base.__name__}{net.__name__}", (base,), {"build_model": lambda self, request: net()})


class RecompilesInWindow(tiny(TorchCompiledAdapter)):
    """Changes a guarded constant once the window starts: the first timed inference recompiles."""

    def on_window_start(self) -> None:
        super().on_window_start()
        self.model.scale = 2.0


@pytest.fixture(scope="module")
def inductor_cache(tmp_path_factory):
    """One inductor cache for this module's compiled runs: its precompiled headers (~150 MB) are built once."""
    return tmp_path_factory.mktemp("inductor")


def run(tmp_path, adapter, runtime="torch/inductor/cpu", budget=WARM_ONE, **options):
    request = make_request(tmp_path, runtime=runtime, budget=budget, outputs_path=str(tmp_path / "out.npz"),
                           provider_options=options if runtime.startswith("torch/inductor") else {})
    result = execute(request, adapter)
    assert result.status == "ok", result.error
    with np.load(tmp_path / "out.npz") as saved:
        return result, {name: saved[name] for name in saved.files}


def test_the_table_routes_torch_inductor_to_the_compiled_adapter():
    assert adapter_class("torch/inductor/cpu") is TorchCompiledAdapter
    assert issubclass(TorchCompiledAdapter, TorchNativeAdapter)  # one model build and input placement


def test_compiled_run_matches_eager_with_the_compile_outside_the_window(tmp_path, inductor_cache):
    eager, eager_out = run(tmp_path / "eager", tiny(TorchNativeAdapter)(), runtime="torch/native/cpu")
    compiled, compiled_out = run(tmp_path / "compiled", tiny(TorchCompiledAdapter)(), cache_dir=str(inductor_cache))
    report = compare_outputs(eager_out, compiled_out)
    assert report["faithful"] is True, report["verdict"]
    assert report["max_abs_error"] < 1e-4
    # The first warm-up inference compiled: it took far longer than any timed one.
    assert compiled.engine_build_seconds > 0.5
    assert max(compiled.latencies_ns) / 1e9 < compiled.engine_build_seconds / 10
    facts = compiled.runtime_facts
    assert facts["backend"] == "inductor" and facts["mode"] == "default" and facts["dynamic"] is False
    assert facts["graphs_compiled"] == 1 and facts["frames_compiled"] == 1 and facts["graph_breaks"] == 0
    assert facts["recompilations"] == 0 and facts["compiles_in_window"] == 0 and facts["window_clean"] is True
    assert 0 < facts["compile_seconds"] <= compiled.engine_build_seconds
    assert facts["fx_graph_cache"]["misses"] >= 1  # this graph is new to the cache: it was compiled
    # Everything inductor keeps on disk went to the cache folder given, its precompiled headers included.
    assert facts["cache"] == "given" and any(inductor_cache.iterdir())
    assert facts["precompiled_headers"] == str(inductor_cache / "precompiled_headers")
    assert facts["cxx"]  # the C++ compiler inductor found, with its version
    assert compiled.versions["torch"] == torch.__version__
    # Eager torch reports only the math policy it ran under; inductor compiled under the same settings.
    assert set(eager.runtime_facts) == {"math"} and facts["math"] == eager.runtime_facts["math"]


def test_a_recompilation_inside_the_window_is_recorded_and_flagged(tmp_path, inductor_cache):
    result, _ = run(tmp_path, RecompilesInWindow(), cache_dir=str(inductor_cache))
    facts = result.runtime_facts
    assert facts["recompilations"] == 1 and facts["recompilations_in_window"] == 1
    assert facts["compiles_in_window"] == 1 and facts["window_clean"] is False
    window = [c for c in facts["compiles"] if c["phase"] == "window"]
    assert len(window) == 1 and "scale" in window[0]["recompile_reason"]
    assert facts["compile_seconds_in_window"] > 0
    # The run is kept, and its latencies show the compile: the first timed inference is the slow one.
    latencies = result.latencies_ns
    assert latencies[0] / 1e9 >= 0.9 * facts["compile_seconds_in_window"]
    assert latencies[0] > 10 * statistics.median(latencies[1:])


def test_a_frame_dynamo_gives_up_on_inside_the_window_is_flagged(tmp_path, inductor_cache):
    # One compiled version per frame: the window's guard failure is then not recompiled but run eagerly.
    with torch._dynamo.config.patch(recompile_limit=1):
        result, _ = run(tmp_path, RecompilesInWindow(), cache_dir=str(inductor_cache))
    facts = result.runtime_facts
    # Dynamo records the attempt (the guard that failed, and why it gave up); no graph was compiled in the window.
    (attempt,) = [c for c in facts["compiles"] if c["phase"] == "window"]
    assert "scale" in attempt["recompile_reason"] and attempt["fail"] == "Dynamo recompile limit exceeded"
    assert facts["graphs_compiled"] == 1 and facts["recompilations_in_window"] == 1
    assert facts["recompile_limit_hit"] is True and facts["recompile_limit_hit_in_window"] is True
    assert facts["window_clean"] is False


def test_a_graph_break_is_recorded_with_its_reason(tmp_path, inductor_cache):
    eager, eager_out = run(tmp_path / "eager", tiny(TorchNativeAdapter, BranchyNet)(), runtime="torch/native/cpu")
    compiled, compiled_out = run(tmp_path / "compiled", tiny(TorchCompiledAdapter, BranchyNet)(),
                                 cache_dir=str(inductor_cache))
    assert compare_outputs(eager_out, compiled_out)["faithful"] is True
    facts = compiled.runtime_facts
    assert facts["graph_breaks"] == 1 and facts["frames_compiled"] >= 2 and facts["graphs_compiled"] >= 2
    (site,) = facts["graph_break_sites"]
    assert site["reason"] and site["count"] >= 1
    assert "Data-dependent branching" in facts["graph_break_types"]
    assert site["where"].startswith("test_torch_inductor.py:") and site["where"].endswith("in forward")
    assert facts["window_clean"] is True and facts["graph_breaks_in_window"] == 0


@pytest.mark.parametrize(("runtime", "budget", "options", "kind", "message"), [
    ("torch/inductor/cpu", WARM_ONE, {"mode": "fast"},
     "bad-request", "torch/inductor: mode 'fast' is not one of default, reduce-overhead, max-autotune"),
    ("torch/inductor/cpu", WARM_ONE, {"mode": "reduce-overhead"},
     "unsupported", "torch/inductor/cpu: mode 'reduce-overhead' is cuda only"),
    ("torch/inductor/cpu", WARM_ONE, {"fullgraph": True},
     "bad-request", "torch/inductor: unknown provider option(s) fullgraph; valid: mode, dynamic, cache_dir, device_id"),
    ("torch/inductor/cpu", WARM_ONE, {"dynamic": "yes"},
     "bad-request", "torch/inductor: dynamic must be true or false, not 'yes'"),
    ("torch/inductor/cpu", Budget(warmup_iterations=0, min_iterations=3), {},
     "bad-request", "compilation would fall inside the window"),
    ("torch/inductor/cpu", WARM_ONE, {},  # precision below
     "unsupported", "fp16 is measured on cuda only"),
])
def test_bad_requests_are_refused_before_anything_is_loaded(tmp_path, runtime, budget, options, kind, message):
    adapter = tiny(TorchCompiledAdapter)()
    precision = "fp16" if "fp16" in message else "fp32"
    result = execute(make_request(tmp_path, runtime=runtime, budget=budget, provider_options=options,
                                  precision=precision), adapter)
    assert result.status == "error" and result.error.kind == kind
    assert message in result.error.message and "\n" not in result.error.message
    assert result.load_seconds is None and adapter.model is None


def test_without_a_cxx_compiler_cpu_is_unsupported_with_the_reason(tmp_path, monkeypatch):
    from torch._inductor import config

    monkeypatch.setattr(config.cpp, "cxx", (None, "no-such-c++"))
    result = execute(make_request(tmp_path, runtime="torch/inductor/cpu", budget=WARM_ONE,
                                  provider_options={"cache_dir": str(tmp_path / "inductor")}),
                     tiny(TorchCompiledAdapter)())
    assert result.status == "error" and result.error.kind == "unsupported"
    assert "torch/inductor/cpu: inductor generates C++ and needs a C++ compiler (g++)" in result.error.message
