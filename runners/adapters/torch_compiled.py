"""torch/inductor/{cpu,cuda}: the native PyTorch model (torch/native's, same build and input placement) compiled by
`torch.compile(backend="inductor")`.

Compilation is lazy: it happens in the first warm-up iteration, which the loop reports as engine_build_seconds, so a
budget without warm-up is refused (the compile would fall inside the window).  What dynamo did is read from its own
records (torch._dynamo.utils: compilation metrics, counters, graph-break reasons), snapshotted at load and at the
window's start, and reported in runtime_facts: graphs compiled, graph breaks with their reasons, recompilations in
all and inside the window, compile seconds.  A recompilation inside the window keeps the run but flags it
(`window_clean` false, `recompilations_in_window` > 0): its latencies hold a compile.

Provider options: `mode` (default | reduce-overhead | max-autotune; reduce-overhead replays CUDA graphs, cuda only),
`dynamic` (false by default: shapes are specialised; true marks them dynamic), `cache_dir` (inductor's on-disk cache;
by default a private folder per run, removed at exit, so every run's compile is cold and comparable), `device_id`.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import weakref
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from runners.adapters.torch_native import TorchNativeAdapter
from runners.failures import BadRequestError, UnsupportedError
from runners.protocol import RunRequest
from runners.runtimes_table import INDUCTOR_MODES

MODES = INDUCTOR_MODES  # the runtimes table's, which a sweep's config is checked against
CUDA_ONLY_MODES = {"reduce-overhead": "it replays CUDA graphs"}
PROVIDER_OPTIONS = ("mode", "dynamic", "cache_dir", "device_id")
# Compilation records kept by dynamo (a deque of 64 by default): enough that none of one run's are dropped.
METRICS_LIMIT = 100_000
RECOMPILE_LIMIT_GB_TYPE = "Dynamo recompile limit exceeded"  # dynamo's graph-break type when it gives up on a frame


@dataclass(frozen=True)
class DynamoState:
    """What dynamo has recorded so far in this process: the compilation records (by identity, since compile ids
    restart after torch._dynamo.reset), the graph-break reasons' count and a copy of its counters."""

    metric_ids: frozenset[int]
    graph_breaks: int
    counters: dict[str, Counter]

    @staticmethod
    def take(dynamo_utils: Any) -> DynamoState:
        return DynamoState(frozenset(id(m) for m in dynamo_utils.get_compilation_metrics()),
                           len(dynamo_utils.graph_break_reasons),
                           {k: Counter(v) for k, v in dynamo_utils.counters.items()})


def _first_line(text: str | None) -> str | None:
    return text.strip().splitlines()[0].strip() if text and text.strip() else None


def _counter_delta(now: dict[str, Counter], before: dict[str, Counter], group: str) -> Counter:
    delta = Counter(now.get(group, {}))
    delta.subtract(before.get(group, {}))
    return Counter({k: v for k, v in delta.items() if v > 0})


def _compile_event(metric: Any, phase: str) -> dict[str, Any]:
    """One frame compilation as dynamo recorded it (CompilationMetrics), in JSON terms."""
    return {"compile_id": metric.compile_id, "frame": metric.co_name, "phase": phase,
            "seconds": metric.entire_frame_compile_time_s, "graph_ops": metric.graph_op_count,
            "recompile_reason": _first_line(metric.recompile_reason), "fail": _first_line(metric.fail_reason),
            "cudagraph_skip_reason": metric.cudagraph_skip_reason}


def _graph_breaks(reasons: list[Any]) -> list[dict[str, Any]]:
    """Graph-break sites (first line of dynamo's reason, user frame where it broke) with how often each was met."""
    sites: Counter = Counter()
    for reason in reasons:
        frame = reason.user_stack[-1] if reason.user_stack else None
        where = f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}" if frame else None
        sites[(_first_line(reason.reason), where)] += 1
    return [{"reason": r, "where": w, "count": n} for (r, w), n in sites.items()]


def compile_facts(utils: Any, at_load: DynamoState, at_window: DynamoState | None) -> dict[str, Any]:
    """What dynamo compiled since `at_load`, told apart by whether it happened before or after `at_window`."""
    window_ids = at_window.metric_ids if at_window is not None else None
    events = []
    for metric in utils.get_compilation_metrics():
        if id(metric) in at_load.metric_ids:
            continue
        in_window = window_ids is not None and id(metric) not in window_ids
        events.append(_compile_event(metric, "window" if in_window else "warm-up"))
    now = DynamoState.take(utils)
    breaks = list(utils.graph_break_reasons)[at_load.graph_breaks:]
    window_breaks = (list(utils.graph_break_reasons)[at_window.graph_breaks:] if at_window is not None else [])
    stats = _counter_delta(now.counters, at_load.counters, "stats")
    unsupported = _counter_delta(now.counters, at_load.counters, "unimplemented")
    inductor = _counter_delta(now.counters, at_load.counters, "inductor")
    aot = _counter_delta(now.counters, at_load.counters, "aot_autograd")
    recompiles = [e for e in events if e["recompile_reason"] is not None]
    in_window = [e for e in events if e["phase"] == "window"]
    # Dynamo gave up on a frame after too many recompilations: from then on it runs that frame eagerly.
    gave_up = any(k.startswith(RECOMPILE_LIMIT_GB_TYPE) for k in unsupported)
    gave_up_in_window = at_window is not None and any(
        k.startswith(RECOMPILE_LIMIT_GB_TYPE) for k in _counter_delta(now.counters, at_window.counters, "unimplemented"))
    return {
        "frames_compiled": len(events),
        "graphs_compiled": stats.get("unique_graphs", 0),
        "graph_breaks": len(_graph_breaks(breaks)),
        "graph_break_sites": _graph_breaks(breaks),
        # Dynamo's name for each thing it could not trace (its graph-break type), as often as it met it.
        "graph_break_types": {_first_line(k): v for k, v in unsupported.items()},
        "graph_breaks_in_window": len(_graph_breaks(window_breaks)),
        "recompilations": len(recompiles),
        "recompilations_in_window": sum(1 for e in in_window if e["recompile_reason"] is not None),
        "compiles_in_window": len(in_window),
        # Nothing was compiled, nor given up on, while the window was timed.
        "window_clean": not in_window and not gave_up_in_window,
        "compile_seconds": round(sum(e["seconds"] or 0.0 for e in events if e["phase"] == "warm-up"), 6),
        "compile_seconds_in_window": round(sum(e["seconds"] or 0.0 for e in in_window), 6),
        "recompile_limit_hit": gave_up, "recompile_limit_hit_in_window": gave_up_in_window,
        "fx_graph_cache": {"hits": inductor.get("fxgraph_cache_hit", 0), "misses": inductor.get("fxgraph_cache_miss", 0)},
        "aot_autograd_cache": {"hits": aot.get("autograd_cache_hit", 0), "misses": aot.get("autograd_cache_miss", 0)},
        "compiles": events,
    }


def _python_headers() -> Path:
    return Path(sysconfig.get_path("include")) / "Python.h"


def _compiler_version(compiler: str) -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=10)
        return _first_line(done.stdout)
    return None


def _headers_into(cache_dir: str) -> str:
    """Put inductor's precompiled C++ headers (~150 MB, built once per compiler and flags) in the cache folder too.

    Inductor keeps them in a global folder under the system temp (codecache._HEADER_DIR, fixed at import), outside
    TORCHINDUCTOR_CACHE_DIR: a "cold" run would then reuse a previous run's headers, and a test would write
    outside its folder.  Where this torch has no such module global, the headers stay where inductor puts them,
    and the facts say where."""
    from torch._inductor import codecache

    if not hasattr(codecache, "_HEADER_DIR"):
        return "inductor's own folder (this torch has no codecache._HEADER_DIR)"
    codecache._HEADER_DIR = os.path.join(cache_dir, "precompiled_headers")
    codecache._HEADER_LOCK_DIR = os.path.join(codecache._HEADER_DIR, "locks")
    with contextlib.suppress(AttributeError):  # functools.cache'd: forget headers built earlier in this process
        codecache._precompile_header.cache_clear()
    return codecache._HEADER_DIR


class TorchCompiledAdapter(TorchNativeAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.mode = "default"
        self.dynamic = False
        self.cache_dir: str | None = None
        self.cache_kind: str | None = None
        self.compiler: str | None = None
        self.header_dir: str | None = None
        self._utils = None
        self._at_load: DynamoState | None = None
        self._at_window: DynamoState | None = None

    def check_request(self, request: RunRequest) -> None:
        super().check_request(request)  # provider and precision, from the runtimes table
        label = f"{request.framework}/{request.model_format}"
        options = request.provider_options
        unknown = sorted(set(options) - set(PROVIDER_OPTIONS))
        if unknown:
            raise BadRequestError(f"{label}: unknown provider option(s) {', '.join(unknown)}; valid: "
                                  f"{', '.join(PROVIDER_OPTIONS)}")
        mode = options.get("mode", "default")
        if mode not in MODES:
            raise BadRequestError(f"{label}: mode {mode!r} is not one of {', '.join(MODES)}")
        if mode in CUDA_ONLY_MODES and request.provider != "cuda":
            raise UnsupportedError(f"{request.runtime}: mode {mode!r} is cuda only ({CUDA_ONLY_MODES[mode]}); valid "
                                   f"here: {', '.join(m for m in MODES if m not in CUDA_ONLY_MODES)}")
        dynamic = options.get("dynamic", False)
        if not isinstance(dynamic, bool):
            raise BadRequestError(f"{label}: dynamic must be true or false, not {dynamic!r}")
        budget = request.budget
        if budget.warmup_iterations < 1 and budget.warmup_seconds <= 0:
            raise BadRequestError(f"{label}: a budget with no warm-up iteration: compilation would fall inside the "
                                  f"window; set warmup iterations >= 1")

    def load(self, request: RunRequest) -> None:
        options = request.provider_options
        self.mode = options.get("mode", "default")
        self.dynamic = bool(options.get("dynamic", False))
        self._use_cache_dir(options.get("cache_dir"))
        super().load(request)  # the eager model on its device, threads set (inductor's C++ kernels read them)
        torch = self.torch
        self._check_toolchain(request)
        import torch._dynamo  # noqa: F811 (binds torch again: the same module as self.torch)
        import torch._dynamo.utils as utils
        import torch._inductor.utils

        # As if in a fresh process: nothing compiled earlier in this process (an earlier in-process run) is reused,
        # and inductor's cached paths follow the cache folder set above.
        torch._dynamo.reset()
        torch._inductor.utils.clear_caches()
        self.header_dir = _headers_into(self.cache_dir)
        utils.set_compilation_metrics_limit(METRICS_LIMIT)
        self._utils = utils
        self._at_load = DynamoState.take(utils)
        self.model = torch.compile(self.model, backend="inductor", mode=None if self.mode == "default" else self.mode,
                                   dynamic=self.dynamic)

    def _use_cache_dir(self, given: str | None) -> None:
        """Inductor's on-disk cache: the folder given, or a private one removed at exit (a cold compile)."""
        if given:
            self.cache_dir, self.cache_kind = str(Path(given).resolve()), "given"
        else:
            self.cache_dir, self.cache_kind = tempfile.mkdtemp(prefix="greenrt-inductor-"), "private"
            weakref.finalize(self, shutil.rmtree, self.cache_dir, ignore_errors=True)
        Path(self.cache_dir).mkdir(parents=True, exist_ok=True)
        # Read by inductor at each compile; its subprocess compile workers inherit it.
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = self.cache_dir

    def _check_toolchain(self, request: RunRequest) -> None:
        """Refuse ("unsupported", with the reason) what inductor would otherwise fail on in the first warm-up."""
        headers = _python_headers()
        if not headers.exists():
            raise UnsupportedError(
                f"{request.runtime}: inductor builds its kernels' Python bindings against Python.h, not found at "
                f"{headers} (install this Python's headers: python{sys.version_info.major}.{sys.version_info.minor}-dev)")
        if request.provider == "cpu":
            from torch._inductor import cpp_builder

            try:
                self.compiler = cpp_builder.get_cpp_compiler()
            except Exception as exc:  # noqa: BLE001 - inductor's own search failed: say so with its reason
                raise UnsupportedError(f"{request.runtime}: inductor generates C++ and needs a C++ compiler (g++): "
                                       f"{_first_line(str(exc)) or type(exc).__name__}") from None
        else:
            try:
                import triton  # noqa: F401 - inductor's GPU code generator
            except ImportError as exc:
                raise UnsupportedError(f"{request.runtime}: inductor generates Triton kernels on CUDA and triton is "
                                       f"not importable ({exc})") from None
            # Triton builds its launcher, a C extension, with the C compiler at run time.
            self.compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
            if self.compiler is None:
                raise UnsupportedError(f"{request.runtime}: triton builds its CUDA launcher with a C compiler and "
                                       f"none was found (cc, gcc, clang, $CC)")

    def on_window_start(self) -> None:
        if self._utils is not None:
            self._at_window = DynamoState.take(self._utils)

    def runtime_facts(self) -> dict[str, Any] | None:
        base = super().runtime_facts()  # the math policy, set on the eager model before compiling
        if self._utils is None or self._at_load is None:
            return base
        facts: dict[str, Any] = {**(base or {}),
            "compiler": "torch.compile", "backend": "inductor", "mode": self.mode, "dynamic": self.dynamic,
            "cache": self.cache_kind + (" (cold: removed after the run)" if self.cache_kind == "private" else ""),
            "precompiled_headers": self.header_dir, "window_started": self._at_window is not None,
        }
        if self.compiler:
            facts["cxx" if self.provider == "cpu" else "cc"] = _compiler_version(self.compiler) or self.compiler
        facts.update(compile_facts(self._utils, self._at_load, self._at_window))
        return facts

    def versions(self) -> dict[str, str]:
        out = super().versions()
        with contextlib.suppress(metadata.PackageNotFoundError):
            out["triton"] = metadata.version("triton")
        return out
