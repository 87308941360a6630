"""What greenrt's fp32 policy costs on this GPU: fp32 matmul and conv with TF32 off (the policy) and allowed.

greenrt's `fp32` means IEEE fp32 arithmetic (torch.backends.cuda.matmul.allow_tf32 = False and
torch.backends.cudnn.allow_tf32 = False); TF32 rounds the inputs of each multiply to a 10-bit mantissa and runs on the
tensor cores. This times an 8192x8192 matmul and a ResNet-like 3x3 conv (batch 64, 128 channels, 28x28) both ways, in
alternating rounds (drift and clocks cancel), and compares each output with an fp64 result of the same inputs.

The pure half (error_summary, compare_modes) needs numpy only and is tested without a GPU; measure_tf32 takes the
torch module as an argument (imported by bench/gpu_check.py on the GPU host) and also runs on device "cpu", where
the TF32 switches change nothing, to check this code where no GPU is.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np

NS_PER_MS = 1_000_000
STRICT, TF32 = "fp32", "tf32"  # TF32 off (greenrt's fp32 policy), TF32 allowed
SEVERAL_TIMES = 2.0  # a speed-up at least this large is what the note calls "several times"


def error_summary(max_abs_error: float, max_abs_ref: float, sum_sq_error: float, sum_sq_ref: float) -> dict[str, Any]:
    """Errors of an output against its fp64 reference, from four reductions (computed where the tensors are).

    max_rel_error is the largest error over the largest reference magnitude (elementwise ratios explode where the
    reference crosses zero, and say nothing about the arithmetic); rms_rel_error is ||y - ref|| / ||ref||.
    """
    return {"max_abs_error": float(max_abs_error),
            "max_rel_error": float(max_abs_error / max_abs_ref) if max_abs_ref > 0 else None,
            "rms_rel_error": math.sqrt(sum_sq_error / sum_sq_ref) if sum_sq_ref > 0 else None}


def _latency(times_ns: list[int], flops: float) -> dict[str, Any]:
    ms = np.asarray(times_ns, dtype=np.float64) / NS_PER_MS
    if ms.size == 0:
        return {"n": 0, "median_ms": None, "p10_ms": None, "p90_ms": None, "tflops": None}
    median = float(np.median(ms))
    return {"n": int(ms.size), "median_ms": median, "p10_ms": float(np.percentile(ms, 10)),
            "p90_ms": float(np.percentile(ms, 90)), "tflops": flops / (median / 1e3) / 1e12 if median > 0 else None}


def compare_modes(op: str, shape: str, flops: float, times_ns: dict[str, list[int]],
                  errors: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One op's figures with TF32 off and allowed: latency, throughput, errors, and what TF32 buys and costs."""
    modes = {mode: {**_latency(times_ns.get(mode) or [], flops), **(errors.get(mode) or {})} for mode in (STRICT, TF32)}
    strict, tf32 = modes[STRICT], modes[TF32]
    speedup = (strict["median_ms"] / tf32["median_ms"]) if strict["median_ms"] and tf32["median_ms"] else None
    s_err, t_err = strict.get("max_rel_error"), tf32.get("max_rel_error")
    error_growth = t_err / s_err if s_err and t_err is not None else None
    if speedup is None:
        verdict = "not timed both ways"
    elif speedup >= SEVERAL_TIMES:
        verdict = (f"strict fp32 runs at 1/{speedup:.1f} of TF32's speed: a runtime that uses TF32 for 'fp32' "
                   "would win by that factor for a reason that is not the runtime")
    elif speedup >= 1.2:
        verdict = f"TF32 is {speedup:.2f}x faster: less than 'several times', more than noise"
    else:
        verdict = f"TF32 changes the speed little ({speedup:.2f}x)"
    return {"op": op, "shape": shape, "gflop": flops / 1e9, "modes": modes, "speedup_tf32": speedup,
            "max_rel_error_growth": error_growth, "verdict": verdict}


# ---------------------------------------------------------------------------------------------------------------
# On the device (torch passed in).


def tf32_flags(torch: Any) -> dict[str, Any]:
    """torch's TF32 switches as they stand (the new fp32_precision API too, where this torch has it)."""
    flags: dict[str, Any] = {"matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
                             "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
                             "cudnn_benchmark": bool(torch.backends.cudnn.benchmark)}
    for key, holder in (("matmul_fp32_precision", torch.backends.cuda.matmul),
                        ("cudnn_conv_fp32_precision", getattr(torch.backends.cudnn, "conv", None))):
        try:
            flags[key] = str(holder.fp32_precision) if holder is not None else None
        except Exception:  # older torch, or a getter that refuses a mixed old/new API state
            flags[key] = None
    return flags


def _set_tf32(torch: Any, allowed: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = allowed
    torch.backends.cudnn.allow_tf32 = allowed


def _error_parts(y: Any, ref: Any) -> dict[str, Any]:
    diff = y.double() - ref
    return error_summary(diff.abs().max().item(), ref.abs().max().item(), (diff * diff).sum().item(),
                         (ref * ref).sum().item())


def _timer(torch: Any, device: Any) -> Callable[[Callable[[], Any]], int]:
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def timed(fn: Callable[[], Any]) -> int:
            start.record()
            fn()
            end.record()
            end.synchronize()
            return int(start.elapsed_time(end) * NS_PER_MS)
        return timed

    def timed_cpu(fn: Callable[[], Any]) -> int:
        t0 = time.perf_counter_ns()
        fn()
        return time.perf_counter_ns() - t0
    return timed_cpu


def _ops(torch: Any, device: Any, matmul_n: int, conv: tuple[int, int, int], seed: int) -> list[tuple]:
    """(name, shape text, flops, fp32 fn, fp64 reference fn) of each op, on seeded inputs."""
    gen = torch.Generator(device=device).manual_seed(seed)
    a = torch.randn(matmul_n, matmul_n, device=device, generator=gen)
    b = torch.randn(matmul_n, matmul_n, device=device, generator=gen)
    batch, channels, size = conv
    x = torch.randn(batch, channels, size, size, device=device, generator=gen)
    w = torch.randn(channels, channels, 3, 3, device=device, generator=gen) / math.sqrt(channels * 9)
    conv2d = torch.nn.functional.conv2d
    return [
        ("matmul", f"{matmul_n}x{matmul_n} @ {matmul_n}x{matmul_n}", 2.0 * matmul_n ** 3,
         lambda: a @ b, lambda: a.double() @ b.double()),
        ("conv3x3", f"batch {batch}, {channels}->{channels} channels, {size}x{size}, 3x3, padding 1",
         2.0 * batch * channels * channels * 9 * size * size,
         lambda: conv2d(x, w, padding=1), lambda: conv2d(x.double(), w.double(), padding=1)),
    ]


def measure_tf32(torch: Any, device_name: str = "cuda", matmul_n: int = 8192, conv: tuple[int, int, int] = (64, 128, 28),
                 seconds_per_mode: float = 1.5, rounds: int = 3, min_iterations: int = 5, warmup: int = 3,
                 seed: int = 0) -> dict[str, Any]:
    """Each op timed with TF32 off and allowed in `rounds` alternating rounds, its errors against fp64 per mode.

    torch's switches are read first (its own defaults, as the runners would find them) and put back afterwards."""
    device = torch.device(device_name, 0) if device_name == "cuda" else torch.device(device_name)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    before = tf32_flags(torch)
    timed = _timer(torch, device)
    results = []
    try:
        with torch.inference_mode():
            for name, shape, flops, run, reference in _ops(torch, device, matmul_n, conv, seed):
                ref = reference()
                errors, times = {}, {STRICT: [], TF32: []}
                for mode in (STRICT, TF32):
                    _set_tf32(torch, mode == TF32)
                    errors[mode] = _error_parts(run(), ref)
                    for _ in range(warmup):
                        run()
                    sync()
                for _ in range(rounds):
                    for mode in (STRICT, TF32):
                        _set_tf32(torch, mode == TF32)
                        started = time.monotonic()
                        n = 0
                        while n < min_iterations or time.monotonic() - started < seconds_per_mode / rounds:
                            times[mode].append(timed(run))
                            n += 1
                ref = None
                results.append(compare_modes(name, shape, flops, times, errors))
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before["matmul_allow_tf32"]
        torch.backends.cudnn.allow_tf32 = before["cudnn_allow_tf32"]
    if device.type == "cuda":
        torch.cuda.empty_cache()
    after = tf32_flags(torch)
    # The old switches are what was put back; the new API's "none" reads as "ieee"/"tf32" once they are set.
    restored = all(after[k] == before[k] for k in ("matmul_allow_tf32", "cudnn_allow_tf32", "cudnn_benchmark"))
    return {"device": str(device), "torch_defaults": before, "restored": restored,
            "policy": {STRICT: "allow_tf32 = False for cuBLAS matmuls and cuDNN convolutions (greenrt's fp32)",
                       TF32: "allow_tf32 = True for both"},
            "rounds": rounds, "seed": seed, "ops": results}
