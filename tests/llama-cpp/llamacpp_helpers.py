"""The llama.cpp tier, which runs INSIDE the llama-cpp environment:

    $(greenrt env python llama-cpp) -m pytest tests/llama-cpp

Its runtime and converter for testkit/generative_tier.py (the checkpoint, conversions, runs and reference run through
the runner's CLI, judged by models/fidelity.py), and how to corrupt one weight in its file format.
The checkpoint and the reference run are made in the torch environment, as a sweep does.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from testkit.generative_tier import GenerativeTier

TIER = GenerativeTier(runtime="llama.cpp/gguf-from-hf/cpu", framework="llama.cpp",
                      target="gguf", artifact="gguf", batch_size=1, threads=2,
                      reference_batches=(1,), reference_in_torch_env=True, hub_offline=False)


def scale_one_weight(gguf_file: Path, factor: float, name: str = "blk.0.ffn_down.weight") -> None:
    """Multiply the f32 tensor `name` of a GGUF file by `factor`, in place (gguf's reader maps the file r+)."""
    import gguf

    reader = gguf.GGUFReader(str(gguf_file), "r+")
    tensor = next(t for t in reader.tensors if t.name == name)
    assert tensor.tensor_type == gguf.GGMLQuantizationType.F32, tensor.tensor_type
    tensor.data[...] *= np.float32(factor)
    reader.data.flush()
