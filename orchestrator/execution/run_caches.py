"""The caches a sweep keeps for its GPU runs, outside every run's own folder (mounted read-write for the runs):
TensorRT's engines and timing caches, and CUDA's JIT cache."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from runners.math_policy import CUDA_CACHE_MAX_BYTES

CUDA_JIT_CACHE = "cuda-jit-cache"


def jit_cache(root: Path) -> dict[str, Any]:
    """A GPU run's CUDA JIT cache (RunRequest.cuda_jit_cache): one folder per sweep, the driver's largest limit."""
    return {"path": str(root / CUDA_JIT_CACHE), "max_bytes": CUDA_CACHE_MAX_BYTES}


def tensorrt_caches(root: Path, cell: Any, source: str, model_options: dict[str, Any]) -> dict[str, str]:
    """A TensorRT run's engine folder, one per (model, source, batch, precision, model options such as seq_len): an
    engine is built for exactly one run's shapes and math; and its timing cache, shared by every run of the sweep at
    the same precision (a layer timed once is not timed again; fp32, tf32 and fp16 tactics are kept apart)."""
    options = "".join(f"-{k}{v}" for k, v in sorted(model_options.items()))
    key = f"{cell.model}-{source}-bs{cell.batch_size}-{cell.precision}{options}"
    return {"trt_engine_cache_path": str(root / "trt-engines" / key),
            "trt_timing_cache_path": str(root / "trt-timing" / cell.precision)}
