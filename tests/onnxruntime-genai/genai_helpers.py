"""The ONNX Runtime GenAI tier, which runs INSIDE the onnxruntime-genai environment:

    $(greenrt env python onnxruntime-genai) -m pytest tests/onnxruntime-genai

Its runtime and converter for testkit/generative_tier.py (the checkpoint, conversions, runs and reference run through
the runner's CLI, judged by models/fidelity.py), and how to corrupt one weight in its file format.
That environment has torch and transformers (the model builder needs them), so the checkpoint and the reference
run are made in it.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from testkit.generative_tier import GenerativeTier

TIER = GenerativeTier(runtime="onnxruntime-genai/genai-from-hf/cpu", framework="onnxruntime-genai",
                      target="ort-genai", artifact="ort-genai", batch_size=2, threads=1,
                      reference_batches=(2,), reference_in_torch_env=False, hub_offline=True)


def scale_one_weight(folder: Path, factor: float = 1.5) -> str:
    """Scale one weight tensor of the converted fp32 ONNX graph in place (a corrupted conversion); its name."""
    import onnx
    from onnx import numpy_helper

    config = json.loads((folder / "genai_config.json").read_text())
    path = folder / config["model"]["decoder"]["filename"]
    model = onnx.load(str(path))
    target = next(t for t in model.graph.initializer
                  if len(t.dims) == 2 and "layers.0" in t.name and t.data_type == onnx.TensorProto.FLOAT)
    scaled = numpy_helper.from_array(numpy_helper.to_array(target) * np.float32(factor), target.name)
    target.CopyFrom(scaled)
    data = [p.name for p in folder.iterdir() if p.name.startswith(path.name) and p.name != path.name]
    for name in data:
        (folder / name).unlink()
    onnx.save(model, str(path), save_as_external_data=bool(data), all_tensors_to_one_file=True,
              location=data[0] if data else None)
    return target.name
