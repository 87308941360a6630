"""The CTranslate2 tier, which runs INSIDE the ctranslate2 environment:

    $(greenrt env python ctranslate2) -m pytest tests/ctranslate2

Its runtime and converter for testkit/generative_tier.py (the checkpoint, conversions, runs and reference run through
the runner's CLI, judged by models/fidelity.py), and how to corrupt one weight in its file format.
That environment has torch and transformers (its converter needs them), so the checkpoint and the reference
run are made in it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from testkit.generative_tier import GenerativeTier

TIER = GenerativeTier(runtime="ctranslate2/ct2-from-hf/cpu", framework="ctranslate2",
                      target="ct2", artifact="ct2", batch_size=2, threads=1,
                      reference_batches=(2,), reference_in_torch_env=False, hub_offline=True)


def scale_one_weight(folder: Path, factor: float = 1.5) -> str:
    """Scale one float32 weight of the converted model.bin in place (a corrupted conversion); its name.

    model.bin is CTranslate2's own binary (ctranslate2/specs/model_spec.py, _serialize): the binary version, the
    spec's name and revision, the variable count, then per variable its name, rank, dims, dtype id, byte count and
    raw bytes. The first 2-D float32 variable of layer 0 is scaled where it lies: the file keeps its size."""
    import struct

    path = folder / "model.bin"
    data = bytearray(path.read_bytes())
    offset = 0

    def take(fmt: str):
        nonlocal offset
        values = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return values

    def string() -> str:
        nonlocal offset
        (length,) = take("<H")
        text = bytes(data[offset:offset + length]).rstrip(b"\0").decode()
        offset += length
        return text

    take("<I")  # binary version
    string()  # spec name
    take("<I")  # spec revision
    (count,) = take("<I")
    for _ in range(count):
        name = string()
        (rank,) = take("<B")
        dims = take("<" + "I" * rank)
        (dtype,) = take("<B")
        (nbytes,) = take("<I")
        if rank == 2 and "layer_0/" in name and nbytes == 4 * dims[0] * dims[1]:
            weights = np.frombuffer(bytes(data[offset:offset + nbytes]), dtype="<f4") * np.float32(factor)
            data[offset:offset + nbytes] = weights.astype("<f4").tobytes()
            path.write_bytes(bytes(data))
            return name
        offset += nbytes
    raise AssertionError(f"no 2-D float32 weight of layer 0 in {path}")
