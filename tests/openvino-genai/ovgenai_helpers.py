"""Helpers of the OpenVINO GenAI tests, which run INSIDE the openvino-genai environment:

    $(greenrt env python openvino-genai) -m pytest tests/openvino-genai

The checkpoint is llama-tiny's, written by greenrt's own checkpoint exporter (models/llm/checkpoint.py) in the
torch environment, which also makes the reference run (torch/transformers/cpu), as a sweep does: transformers
cannot be imported in this environment's own processes, where PyPI's CUDA torchvision (required by optimum-intel)
breaks it (models/llm/convert_openvino.py hides it in the exporter's process). The conversions, the runs and the
reference run go through the runner's CLI (`python -m runners export|run --request`), the way a sweep
runs them, and are judged by models/fidelity.py as a sweep judges them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OVG = "openvino-genai/ir-from-hf/cpu"
MODEL = "llama-tiny"
PROMPT, NEW = 16, 8
OPTIONS = {"prompt_tokens": PROMPT, "new_tokens": NEW}
SEED = 3


def torch_python() -> Path:
    """The torch environment's interpreter: $GREENRT_TORCH_PYTHON, else the torch venv under the cache ($GREENRT_CACHE,
    else .cache/), which `make test-openvino-genai` builds first (TEST_ENVS)."""
    configured = os.environ.get("GREENRT_TORCH_PYTHON")
    if configured:
        return Path(configured)
    return Path(os.environ.get("GREENRT_CACHE", ROOT / ".cache")) / "envs" / "torch" / "bin" / "python"


def runner(command: str, request: dict, folder: Path, timeout: int = 900,
           python: Path | str = sys.executable) -> subprocess.CompletedProcess:
    """`python -m runners <command> --request FILE` with `python` (this environment's by default), from the
    repository root."""
    path = folder / f"{command}-{request.get('run_id', request.get('precision', 'x'))}.request.json"
    path.write_text(json.dumps(request))
    return subprocess.run([str(python), "-m", "runners", command, "--request", str(path)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=timeout)


def make_checkpoint(folder: Path) -> Path:
    """llama-tiny's Hugging Face checkpoint (seed-0 weights), by greenrt's exporter in the torch environment (where
    a sweep makes it), through the runner's CLI."""
    request = {"framework": "torch", "model": MODEL, "target": "hf-checkpoint", "output_path": str(folder / "hf"),
               "result_path": str(folder / "hf.json")}
    python = torch_python()
    assert python.exists(), f"no torch environment at {python}: `greenrt env build torch` first"
    proc = runner("export", request, folder, python=python)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return folder / "hf"


def convert(checkpoint: Path, folder: Path, precision: str) -> tuple[Path, dict]:
    """The checkpoint converted to OpenVINO IR at `precision` through `python -m runners export`: (folder, result)."""
    out = folder / f"ir-{precision}"
    request = {"framework": "openvino-genai", "model": MODEL, "target": "openvino-genai", "precision": precision,
               "source_path": str(checkpoint), "output_path": str(out), "result_path": str(folder / f"{precision}.json")}
    proc = runner("export", request, folder)
    result = json.loads((folder / f"{precision}.json").read_text())
    assert proc.returncode == 0 and result["status"] == "ok", (proc.stderr[-3000:], result.get("error"))
    return out, result


def run_request(folder: Path, artifact: Path, batch_size: int = 1, precision: str = "fp32", **extra) -> dict:
    name = extra.pop("run_id", f"ovg-{precision}-b{batch_size}")
    return {"run_id": name, "runtime": OVG, "model": MODEL, "batch_size": batch_size, "precision": precision,
            "input_seed": SEED, "threads": 2, "model_options": OPTIONS, "artifact_path": str(artifact),
            "budget": {"warmup_iterations": 1, "min_iterations": 3},
            "result_path": str(folder / f"{name}.result.json"), "outputs_path": str(folder / f"{name}.npz"),
            **extra}


def torch_reference(folder: Path, checkpoint: Path, batch_size: int) -> dict[str, np.ndarray]:
    """The reference run (torch/transformers/cpu at fp32, the orchestrator's reference runtime) on the checkpoint,
    in the torch environment as a sweep runs it, through the runner's CLI: its saved outputs (tokens, prefill
    logits, decode margins)."""
    name = f"reference-b{batch_size}"
    request = {"run_id": name, "runtime": "torch/transformers/cpu", "model": MODEL, "batch_size": batch_size,
               "input_seed": SEED, "threads": 2, "model_options": OPTIONS, "artifact_path": str(checkpoint),
               "budget": {"warmup_iterations": 0, "min_iterations": 1},
               "result_path": str(folder / f"{name}.result.json"), "outputs_path": str(folder / f"{name}.npz")}
    proc = runner("run", request, folder, python=torch_python())
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(request["outputs_path"]) as saved:
        return dict(saved)


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
