"""The OpenVINO GenAI tier, which runs INSIDE the openvino-genai environment:

    $(greenrt env python openvino-genai) -m pytest tests/openvino-genai

Its runtime and converter for testkit/generative_tier.py (the checkpoint, conversions, runs and reference run through
the runner's CLI, judged by models/fidelity.py), and how to corrupt one weight in its file format.
The checkpoint and the reference run are made in the torch environment, as a sweep does: transformers cannot be
imported in this environment's own processes, where PyPI's CUDA torchvision (required by optimum-intel) breaks it
(models/llm/convert_openvino.py hides it in the exporter's process).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from testkit.generative_tier import GenerativeTier

TIER = GenerativeTier(runtime="openvino-genai/ir-from-hf/cpu", framework="openvino-genai",
                      target="openvino-genai", artifact="ir", batch_size=1, threads=2,
                      reference_batches=(1, 2), reference_in_torch_env=True, hub_offline=False)


def scale_one_weight(ir: Path, factor: float) -> str:
    """Multiply, in place in openvino_model.bin, the largest f32 weight of the IR by `factor`; its name."""
    tree = ET.parse(ir / "openvino_model.xml")
    consts = []
    for layer in tree.getroot().iter("layer"):
        data = layer.find("data")
        if layer.get("type") == "Const" and data is not None and data.get("element_type") == "f32":
            consts.append((int(data.get("size")), int(data.get("offset")), layer.get("name")))
    size, offset, name = max(consts)
    weights = np.memmap(ir / "openvino_model.bin", dtype=np.float32, mode="r+", offset=offset, shape=(size // 4,))
    weights *= np.float32(factor)
    weights.flush()
    return name
