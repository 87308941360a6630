"""One math policy for every GPU runtime, so that "fp32" means the same arithmetic in each of them.

Left alone, the runtimes disagree: torch keeps TF32 on for convolutions and off for matmuls, TensorFlow, ONNX
Runtime's CUDA EP (use_tf32) and TensorRT's builder use TF32 for both, and cuBLAS/cuDNN under MXNet follow their
own defaults.  On Ampere and newer GPUs strict-fp32 GEMMs are several times slower than TF32 ones, so a comparison
at "fp32" would otherwise compare math modes, not runtimes.  The policy (POLICY):

- TF32: off everywhere (IEEE fp32 GEMMs and convolutions) unless a cell asks for `tf32` as its own precision, which
  is fp32 data with TensorFloat-32 tensor-core math allowed.  Each adapter sets its framework's own switch, and the
  process also carries NVIDIA_TF32_OVERRIDE=0 for the libraries without one (TensorRT's builder, cuBLAS and cuDNN
  under MXNet): NVIDIA's libraries read it as "never TF32" (cuDNN's API reference, cudnnMathType_t: "The TF32
  behavior for CUDNN_DEFAULT_MATH and the other Tensor Core math types can be explicitly disabled by the environment
  variable NVIDIA_TF32_OVERRIDE=0"; TensorRT's developer guide says the same of building an engine, despite
  BuilderFlag::kTF32, which is on by default, and reserves every other value); a tf32 run leaves it unset.  The
  variable keeps one value for the whole process, engine build and run alike: the guide warns that a different
  value when an engine runs has unpredictable effects, and engines are cached per precision (one math mode each).
  fp16 runs follow the fp32 rule for what stays in fp32.
- Autotuning: on in every runtime, since a run's shapes are fixed (torch cudnn.benchmark, ORT cuDNN EXHAUSTIVE,
  TensorFlow's cuDNN autotuning, MXNet MXNET_CUDNN_AUTOTUNE_DEFAULT=1; TensorRT's builder always times its
  tactics).  Autotuning happens in warm-up, never inside the window.

Adapters record what they set, read back from the framework where it lets them, under runtime_facts["math"];
a user's provider option that overrides the policy is recorded as such.  The bottom of runners/: standard library
only, no framework import.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POLICY = "fp32-strict/autotune-on"
POLICY_TEXT = ("TF32 off on GPUs (IEEE fp32 GEMMs and convolutions) unless a cell's precision is tf32; "
               "autotuning on in every runtime (shapes are fixed per run)")
TF32 = "tf32"
TF32_OVERRIDE = "NVIDIA_TF32_OVERRIDE"  # read by cuBLAS, cuDNN and TensorRT's builder: "0" forbids TF32
# CUDA's JIT cache (PTX compiled for the GPU at hand), read by the driver when CUDA initialises.
CUDA_CACHE_PATH = "CUDA_CACHE_PATH"
CUDA_CACHE_MAXSIZE = "CUDA_CACHE_MAXSIZE"
CUDA_CACHE_DISABLE = "CUDA_CACHE_DISABLE"
# The driver's upper limit for CUDA_CACHE_MAXSIZE (4 GiB): TensorFlow's kernels JIT-compiled from compute_90 PTX
# take a few hundred MB; what exceeds the limit is evicted, oldest first.
CUDA_CACHE_MAX_BYTES = 4 * 2**30


@dataclass(frozen=True)
class MathPolicy:
    """What the policy asks of one run."""

    tf32: bool  # TensorFloat-32 allowed for fp32 GEMMs and convolutions
    autotune: bool = True
    name: str = POLICY

    @property
    def library_env(self) -> dict[str, str | None]:
        """The environment NVIDIA's libraries read (None: removed)."""
        return {TF32_OVERRIDE: None if self.tf32 else "0"}


def policy_for(precision: str) -> MathPolicy:
    return MathPolicy(tf32=precision == TF32)


def data_precision(precision: str) -> str:
    """The precision of weights and tensors: tf32 is fp32 data with TF32 math."""
    return "fp32" if precision == TF32 else precision


def apply_environment(policy: MathPolicy, gpu: bool, jit_cache: dict[str, Any] | None = None,
                      extra: dict[str, str] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Set, in this process and before any framework initialises CUDA, what the policy and the JIT cache need.

    Returns (the variables as the process now has them, the ones kept against the policy).  A variable the process
    already has with another value is the user's choice (the sweep's `environment`, or the shell's under the local
    launcher): it is kept, and reported as overriding the policy.  CPU runs change nothing (TF32 is a GPU math
    mode, the JIT cache a GPU one)."""
    if not gpu:
        return {}, {}
    wanted: dict[str, str | None] = {**policy.library_env, **(extra or {})}
    if jit_cache:
        Path(jit_cache["path"]).mkdir(parents=True, exist_ok=True)
        wanted[CUDA_CACHE_PATH] = str(jit_cache["path"])
        wanted[CUDA_CACHE_MAXSIZE] = str(int(jit_cache["max_bytes"]))
    kept: dict[str, str] = {}
    for name, value in wanted.items():
        current = os.environ.get(name)
        if current is not None and current != value:
            kept[name] = current
        elif value is not None:
            os.environ[name] = value
    if os.environ.get(CUDA_CACHE_DISABLE, "0") not in ("", "0"):  # the user's: JIT output is then never kept
        kept[CUDA_CACHE_DISABLE] = os.environ[CUDA_CACHE_DISABLE]
    return {name: os.environ.get(name) for name in wanted}, kept


def jit_cache_facts(jit_cache: dict[str, Any] | None, gpu: bool) -> dict[str, Any] | None:
    """Where the CUDA JIT cache of a GPU run is, and its limit, as the process has them (None on the CPU)."""
    if not gpu:
        return None
    if not jit_cache:
        return {"path": os.environ.get(CUDA_CACHE_PATH) or "the driver's default (~/.nv/ComputeCache)",
                "max_bytes": os.environ.get(CUDA_CACHE_MAXSIZE) or "the driver's default",
                "persistent": "unknown: no cache folder was given to this run"}
    disabled = os.environ.get(CUDA_CACHE_DISABLE, "0") not in ("", "0")
    return {"path": os.environ.get(CUDA_CACHE_PATH), "max_bytes": int(os.environ.get(CUDA_CACHE_MAXSIZE, "0")),
            "persistent": os.environ.get(CUDA_CACHE_PATH) == str(jit_cache["path"]) and not disabled}


def facts(policy: MathPolicy, gpu: bool, settings: dict[str, Any], environment: dict[str, Any],
          overrides: dict[str, Any] | None = None, kept_environment: dict[str, str] | None = None) -> dict[str, Any]:
    """runtime_facts["math"]: the policy, TF32 state and autotuning as the adapter set (and read back) them."""
    out: dict[str, Any] = {"policy": policy.name, "tf32_requested": policy.tf32 if gpu else None,
                           "autotune": policy.autotune, "settings": settings}
    if not gpu:
        out["note"] = "CPU run: TF32 is a GPU math mode; the framework's own flags are still set and read back"
    if environment:
        out["environment"] = environment
    if overrides:
        out["overridden_by_provider_options"] = overrides
    if kept_environment:
        out["overridden_by_environment"] = kept_environment
    return out
