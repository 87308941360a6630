"""ONNX Runtime's GPU provider options by greenrt's policies: the math policy (runners/math_policy.py) for the CUDA
EP, and for the TensorRT EP an optimisation profile of exactly the run's input shapes, with what the engine cost.

Why a profile: the exported ONNX files have a dynamic batch axis (and BERT a dynamic sequence axis). Without
trt_profile_*_shapes ORT's TensorRT EP builds an engine for the first shapes it meets and widens its implicit profile
as it meets others, so a batch-1 run could measure an engine built for [1..64] and tuned for 64, decided by run order.
With min = opt = max = the run's shapes for every input, the engine is built for this run's shapes alone, and ORT
builds it when the session is constructed (every dynamic input has an explicit profile), not in the first run.

Pure functions (the registry and the standard library), so that the options a run gets are tested without a GPU.
"""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from runners.math_policy import MathPolicy, policy_for

CUDA_EP = "CUDAExecutionProvider"
TENSORRT_EP = "TensorrtExecutionProvider"
# The CUDA EP's cuDNN convolution algorithm search: EXHAUSTIVE benchmarks every algorithm (autotuning on).
AUTOTUNE_SEARCH = "EXHAUSTIVE"
PROFILE_KEYS = ("trt_profile_min_shapes", "trt_profile_opt_shapes", "trt_profile_max_shapes")
ENGINE_SUFFIX = ".engine"  # ORT's TensorRT EP writes <name>_sm<cc>.engine (+ .profile) into trt_engine_cache_path


def cuda_ep_options(device_id: int, policy: MathPolicy) -> dict[str, Any]:
    """The CUDA EP's options under the policy (use_tf32 is read as a boolean from "0"/"1")."""
    return {"device_id": device_id, "cudnn_conv_algo_search": AUTOTUNE_SEARCH if policy.autotune else "HEURISTIC",
            "do_copy_in_default_stream": True, "use_tf32": 1 if policy.tf32 else 0}


def input_shapes(model: str, batch_size: int, model_options: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Each input of the registry's model at the run's batch size and options (seq_len), by input name."""
    from models.registry import get_model

    spec = get_model(model)
    options = spec.resolve_options(model_options)
    return {i.name: spec.input_shape(i, batch_size, options) for i in spec.inputs}


def tensorrt_profile(model: str, batch_size: int, model_options: dict[str, Any]) -> dict[str, str]:
    """trt_profile_{min,opt,max}_shapes all equal to the run's input shapes: "name:1x3x224x224,..."."""
    shapes = ",".join(f"{name}:{'x'.join(map(str, shape))}"
                      for name, shape in input_shapes(model, batch_size, model_options).items())
    return {key: shapes for key in PROFILE_KEYS}


def policy_overrides(chain: list[tuple[str, dict[str, Any]]], policy: MathPolicy) -> dict[str, Any]:
    """The user's provider options that depart from the policy, per EP: {"CUDAExecutionProvider.use_tf32": 1}."""
    wanted = cuda_ep_options(0, policy)
    out = {}
    for name, options in chain:
        if name != CUDA_EP:
            continue
        for key in ("use_tf32", "cudnn_conv_algo_search"):
            if key in options and str(options[key]) != str(wanted[key]):
                out[f"{name}.{key}"] = options[key]
    return out


def tf32_allowed(chain: list[tuple[str, dict[str, Any]]], policy: MathPolicy) -> bool:
    """Whether the session may use TF32: the policy's answer, unless a user's use_tf32 asks for it."""
    cuda = next((opts for name, opts in chain if name == CUDA_EP), {})
    return policy.tf32 or str(cuda.get("use_tf32", 0)).lower() in ("1", "true")


def session_math(precision: str, provider: str, chain: list[tuple[str, dict[str, Any]]]) -> tuple[MathPolicy,
                                                                                                 dict[str, Any]]:
    """The math a session runs under, and its settings for the record. A user's use_tf32 that allows TF32 is
    honoured for the whole session (the environment too: TensorRT's builder has no TF32 option in ORT and reads
    NVIDIA_TF32_OVERRIDE instead), and the record names it as an override."""
    policy = policy_for(precision)
    effective = MathPolicy(tf32=tf32_allowed(chain, policy), autotune=policy.autotune)
    cuda = next((opts for name, opts in chain if name == CUDA_EP), None)
    settings: dict[str, Any] = {}
    if cuda is not None:
        settings = {f"{CUDA_EP}.{k}": cuda.get(k) for k in ("use_tf32", "cudnn_conv_algo_search")}
    if provider == "tensorrt":
        settings[f"{TENSORRT_EP}.tf32"] = ("NVIDIA_TF32_OVERRIDE=0 (TF32 off)" if not effective.tf32
                                           else "TensorRT's default (TF32 on)")
        settings[f"{TENSORRT_EP}.autotune"] = "the builder times its tactics (always)"
    return effective, settings


def engine_files(folder: str | None) -> set[str]:
    if not folder or not Path(folder).is_dir():
        return set()
    return {p.name for p in Path(folder).glob(f"*{ENGINE_SUFFIX}")}


def engine_build_facts(trt_options: dict[str, Any], before: set[str], after: set[str], session_seconds: float,
                       run_seconds: list[float]) -> dict[str, Any]:
    """What the TensorRT engine of a run cost, measured by greenrt (ORT reports no build time of its own unless
    trt_detailed_build_log is set, and then only in its log): the session's construction time, whether an engine
    file was written then (built) or none (loaded from the cache), and the first run's time beyond the warm-up's
    steady state (the median of the runs after it), which holds a build where ORT deferred it to the first run."""
    profiled = all(trt_options.get(k) for k in PROFILE_KEYS)
    first_excess = None
    if len(run_seconds) >= 2:
        first_excess = round(max(0.0, run_seconds[0] - statistics.median(run_seconds[1:])), 6)
    built = sorted(after - before)
    return {
        "engine_cache": trt_options.get("trt_engine_cache_path"),
        "timing_cache": trt_options.get("trt_timing_cache_path"),
        "profile": trt_options.get("trt_profile_opt_shapes") if profiled else None,
        "engine": "built" if built else ("loaded from cache" if after else "no engine file written"),
        "engines_written": built,
        "session_seconds": round(session_seconds, 6),
        # With a profile for every input ORT builds at session construction: the build is inside session_seconds.
        "build_seconds": round(session_seconds, 6) if built and profiled else None,
        "first_run_excess_seconds": first_excess,
        "measured_as": ("session construction time when an engine file was written (ORT builds at construction "
                        "when every input has an explicit profile); first run minus the median warm-up run"),
    }
