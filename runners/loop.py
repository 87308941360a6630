"""The one measured loop shared by every runtime: load -> inputs -> warm-up -> measured window -> result.

An adapter knows how to load a model on its device, place inputs there, run one batch and synchronise the device;
everything else (budgets, the window on the host's monotonic clock, digests, memory, errors) lives here, once.

Imports the standard library and numpy only; an adapter imports its framework inside `load`.
"""
from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

import runners
from runners.adapters import create_adapter
from runners.adapters.contract import Adapter
from runners.adapters.generative import GenerativeAdapter
from runners.failures import BadRequestError, RunnerError, classify, error_of
from runners.protocol import GenerationTimes, RunRequest, RunResult

# ---------------------------------------------------------------------------------------------------------------
# Digests and memory.


def _canonical(array: np.ndarray) -> np.ndarray:
    """float* -> little-endian float32, integers and bools -> little-endian int64 (what the digest hashes)."""
    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.complexfloating):
        return np.ascontiguousarray(array.real if np.iscomplexobj(array) else array, dtype="<f4")
    return np.ascontiguousarray(array, dtype="<i8")


def output_digest(outputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """sha256 over every output's canonical bytes in sorted name order, plus per-output shape, dtype and stats."""
    total = hashlib.sha256()
    per_output: dict[str, Any] = {}
    for name in sorted(outputs):
        original = np.asarray(outputs[name])
        canon = _canonical(original)
        data = canon.tobytes()
        total.update(data)
        as_float = canon.astype(np.float64, copy=False)
        finite = np.isfinite(as_float)
        n_nonfinite = int(as_float.size - np.count_nonzero(finite))
        values = as_float[finite] if n_nonfinite else as_float
        per_output[name] = {
            "shape": list(original.shape),
            "dtype": str(original.dtype),
            "sha256": hashlib.sha256(data).hexdigest(),
            "mean": float(values.mean()) if values.size else None,
            "std": float(values.std()) if values.size else None,
            "first": [float(v) if np.isfinite(v) else str(v) for v in as_float.reshape(-1)[:4]],
            "nonfinite": n_nonfinite,
        }
    return {"algorithm": "sha256(float32|int64 little-endian, outputs in sorted name order)",
            "sha256": total.hexdigest(), "outputs": per_output}


def nonfinite_problem(outputs: dict[str, np.ndarray]) -> str | None:
    """Why the outputs cannot stand as a result: non-finite values, per output with its NaN and inf counts; None
    when every value is finite.  Counted on the arrays as the runtime returned them (the digest's float32 copy
    would turn a finite float64 beyond float32's range into inf)."""
    found = []
    for name in sorted(outputs):
        array = np.asarray(outputs[name])
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.complexfloating)):
            continue
        n_nan = int(np.count_nonzero(np.isnan(array)))
        n_inf = int(np.count_nonzero(np.isinf(array)))
        if n_nan or n_inf:
            found.append(f"{name}: {n_nan + n_inf} of {array.size} ({n_nan} NaN, {n_inf} inf; dtype {array.dtype})")
    if not found:
        return None
    return ("non-finite output values, so the run measured no usable inference (an overflow, e.g. in fp16): "
            + "; ".join(found))


def save_outputs(path: str | os.PathLike, outputs: dict[str, np.ndarray]) -> None:
    """np.savez through a temporary file and a rename (the exact path is kept: no '.npz' appended)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **{name: np.asarray(a) for name, a in outputs.items()})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def peak_host_rss_bytes() -> int:
    """Peak resident set size of this process (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


# ---------------------------------------------------------------------------------------------------------------
# The loop.


def measure(
    run: Callable[[Any], Any],
    synchronize: Callable[[], None],
    prepared: Any,
    min_iterations: int,
    min_seconds: float,
    max_seconds: float | None,
    after: Callable[[int, int, Any], None] | None = None,
) -> tuple[int, int, list[int], Any]:
    """The measured window: (window_start_ns, window_end_ns, latencies_ns, last outputs).

    Runs until at least `min_iterations` AND `min_seconds` (at least one iteration), or until `max_seconds`.
    Every timestamp is time.monotonic_ns(), the clock the orchestrator integrates energy over. `after(t0, t1,
    outputs)`, where given, is called after each iteration, outside its [t0, t1] (a generative run's phase stamps).
    """
    clock = time.monotonic_ns
    min_ns = int(min_seconds * 1e9)
    max_ns = int(max_seconds * 1e9) if max_seconds is not None else sys.maxsize
    latencies: list[int] = []
    append = latencies.append
    n = 0
    outputs = None
    synchronize()
    start = clock()
    while True:
        t0 = clock()
        outputs = run(prepared)
        synchronize()
        t1 = clock()
        append(t1 - t0)
        n += 1
        if after is not None:
            after(t0, t1, outputs)
        if (n >= min_iterations and t1 - start >= min_ns) or t1 - start >= max_ns:
            break
    end = clock()
    return start, end, latencies, outputs


def warm_up(run: Callable[[Any], Any], synchronize: Callable[[], None], prepared: Any, iterations: int,
            seconds: float) -> tuple[int, float, float | None]:
    """(iterations done, total seconds, seconds of the first inference): until >= iterations AND >= seconds."""
    clock = time.monotonic_ns
    min_ns = int(seconds * 1e9)
    n = 0
    first: float | None = None
    synchronize()
    start = clock()
    while n < iterations or clock() - start < min_ns:
        run(prepared)
        synchronize()
        n += 1
        if first is None:
            first = (clock() - start) / 1e9
    return n, (clock() - start) / 1e9, first


def _base_versions() -> dict[str, str]:
    return {"python": platform.python_version(), "numpy": np.__version__}


def execute(request: RunRequest, adapter: Adapter | None = None) -> RunResult:
    """Run `request` and answer a RunResult; never raises for a failure of the run (it becomes status "error").

    With no adapter, the one registered for the request's runtime is created (runners.adapters).
    """
    result = RunResult(run_id=request.run_id, runtime=request.runtime, model=request.model,
                       batch_size=request.batch_size, status="error")
    result.versions = _base_versions()
    result.process_start_ns = runners.PROCESS_START_NS
    phase = "bad-request"
    try:
        from models.inputs import make_inputs
        from models.registry import UnknownModelError, get_model

        try:
            if request.user_model is not None:  # the runner's registry learns the user's model from the request
                from models.user_models import ensure_registered

                ensure_registered(request.user_model)
            spec = get_model(request.model)
            options = spec.resolve_options(request.model_options)
        except (UnknownModelError, KeyError, TypeError) as exc:
            raise BadRequestError(f"model {request.model}: {exc}") from None
        _check_fields(request)
        if adapter is None:
            adapter = create_adapter(request)
        adapter.user_model_entry = request.user_model
        adapter.check_request(request)

        phase = "load"
        t0 = time.monotonic_ns()
        adapter.load(request)
        result.load_seconds = (time.monotonic_ns() - t0) / 1e9
        _describe(result, adapter)

        phase = "bad-request"
        try:
            inputs = make_inputs(spec, request.batch_size, request.input_seed, options)
        except (ValueError, UnknownModelError) as exc:
            raise BadRequestError(str(exc)) from None

        phase = "runtime"
        with adapter.context():
            prepared = adapter.prepare(inputs)
            del inputs
            budget = request.budget
            result.first_inference_ns = time.monotonic_ns()
            n_warm, warm_s, first_s = warm_up(adapter.run, adapter.synchronize, prepared,
                                              budget.warmup_iterations, budget.warmup_seconds)
            result.warmup_iterations, result.warmup_seconds, result.engine_build_seconds = n_warm, warm_s, first_s
            gc.collect()  # the warm-up's garbage is collected now, not inside the window
            adapter.on_window_start()
            phases = GenerationPhases(adapter) if isinstance(adapter, GenerativeAdapter) else None
            start, end, latencies, outputs = measure(adapter.run, adapter.synchronize, prepared,
                                                     budget.min_iterations, budget.min_seconds, budget.max_seconds,
                                                     after=phases.stamp if phases is not None else None)
            result.window_start_ns, result.window_end_ns = start, end
            if n_warm == 0:
                result.first_inference_ns = start
            result.latencies_ns, result.iterations = latencies, len(latencies)
            host_outputs = adapter.to_numpy(outputs)
            if phases is not None:
                host_outputs = phases.outputs(host_outputs, prepared)
                result.generation = phases.times()
        del outputs, prepared
        result.output_digest = output_digest(host_outputs)
        problem = nonfinite_problem(host_outputs)
        if problem is not None:  # whatever the runtime: a NaN or inf output is no result, however fast
            raise RunnerError(problem, kind="output")
        if request.outputs_path:
            save_outputs(request.outputs_path, host_outputs)
        result.status = "ok"
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a result; KeyboardInterrupt re-raised
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        result.status = "error"
        result.error = error_of(exc, classify(exc, phase))
    finally:
        if adapter is not None:
            _describe(result, adapter)
        result.peak_host_rss_bytes = peak_host_rss_bytes()
    return result


class GenerationPhases:
    """A generative run's window: each iteration's [start, first_token, end] (the adapter stamps first_token inside
    its generate call), exactly N tokens per sequence checked after every iteration, and the outputs saved for
    fidelity (the last iteration's tokens, and the prefill logits computed once after the window)."""

    def __init__(self, adapter: GenerativeAdapter) -> None:
        self.adapter = adapter
        self.phases_ns: list[list[int]] = []
        adapter.first_token_ns = None  # the warm-up's stamp is not the window's first iteration's

    def stamp(self, t0: int, t1: int, outputs: Any) -> None:
        adapter = self.adapter
        first, adapter.first_token_ns = adapter.first_token_ns, None
        adapter.check_tokens(adapter.new_token_shape(outputs))
        if first is None or not t0 <= first <= t1:
            raise RunnerError(f"{type(adapter).__name__} did not stamp its first new token inside the iteration "
                              f"(first_token_ns {first}, iteration [{t0}, {t1}])", kind="runtime")
        self.phases_ns.append([t0, first, t1])

    def outputs(self, host: dict[str, np.ndarray], prepared: Any) -> dict[str, np.ndarray]:
        tokens = np.asarray(host["tokens"])
        self.adapter.check_tokens(tokens.shape)
        logits = np.asarray(self.adapter.prefill_logits(prepared), dtype=np.float32)
        expected = (self.adapter.workload.batch_size,)
        if logits.ndim != 2 or logits.shape[:1] != expected:
            raise RunnerError(f"prefill logits of shape {logits.shape}, not (batch {expected[0]}, vocabulary)",
                              kind="runtime")
        saved = {"tokens": tokens.astype(np.int64, copy=False), "prefill_logits": logits}
        margins = self.adapter.decode_margins(prepared, saved["tokens"])
        if margins is not None:
            saved["decode_margins"] = np.asarray(margins, dtype=np.float32)
        return saved

    def times(self) -> GenerationTimes:
        w = self.adapter.workload
        return GenerationTimes(prompt_tokens=w.prompt_tokens, new_tokens=w.new_tokens, batch_size=w.batch_size,
                               phases_ns=self.phases_ns)


def _check_fields(request: RunRequest) -> None:
    """The request's own fields (runtime shape, batch size, budget, threads); the adapter checks the rest."""
    parts = request.runtime.split("/")
    if len(parts) != 3 or not all(parts):
        raise BadRequestError(f"runtime {request.runtime!r} is not framework/format/provider")
    if not isinstance(request.batch_size, int) or request.batch_size < 1:
        raise BadRequestError(f"batch size must be a positive integer, not {request.batch_size!r}")
    b = request.budget
    if b.warmup_iterations < 0 or b.min_iterations < 0 or b.warmup_seconds < 0 or b.min_seconds < 0:
        raise BadRequestError(f"budget values must not be negative: {b}")
    if b.max_seconds is not None and b.max_seconds <= 0:
        raise BadRequestError(f"budget.max_seconds must be positive, not {b.max_seconds}")
    if request.threads is not None and (not isinstance(request.threads, int) or request.threads < 1):
        raise BadRequestError(f"threads must be a positive integer or null, not {request.threads!r}")


def _describe(result: RunResult, adapter: Adapter) -> None:
    """Copy what the adapter knows about itself into the result; a failing query never hides the run's outcome."""
    for attr, getter in (("devices", adapter.devices), ("provider_used", adapter.provider_used),
                         ("threads", adapter.threads), ("peak_device_bytes", adapter.peak_device_bytes),
                         ("node_placement", adapter.node_placement), ("runtime_facts", adapter.runtime_facts)):
        with contextlib.suppress(Exception):
            value = getter()
            if value is not None and value != []:
                setattr(result, attr, value)
    with contextlib.suppress(Exception):
        result.versions = {**_base_versions(), **adapter.versions()}
    if isinstance(adapter, GenerativeAdapter):  # what it turned off so that a repeated prompt is a new request
        with contextlib.suppress(Exception):
            generation = adapter.generation_facts()
            if generation:
                result.runtime_facts = {**(result.runtime_facts or {}), "generation": generation}
    user_model = getattr(adapter, "user_model_entry", None)
    if user_model is not None:  # provenance of a user's model: its file, size, sha256 and the library that loaded it
        from models.user_models import provenance

        result.runtime_facts = {**(result.runtime_facts or {}), "user_model": provenance(user_model)}
