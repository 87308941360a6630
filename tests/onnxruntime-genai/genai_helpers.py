"""Helpers of the ONNX Runtime GenAI tests, which run INSIDE the onnxruntime-genai environment:

    $(greenrt env python onnxruntime-genai) -m pytest tests/onnxruntime-genai

That environment has torch and transformers (the model builder needs them), so everything is made here through the
runner's own CLI: the llama-tiny checkpoint (`python -m runners export`, torch -> hf-checkpoint, seeded weights),
its conversions, and the runs; the torch reference is the reference runtime's own run
(torch/transformers/cpu, fp32) on that checkpoint, as the orchestrator makes it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MODEL = "llama-tiny"
ORT_GENAI_CPU = "onnxruntime-genai/genai-from-hf/cpu"
# A small workload: 2 sequences of 16 prompt tokens, exactly 8 new tokens.
BATCH, PROMPT, NEW = 2, 16, 8
SEED = 3


def runner(command: str, request: dict[str, Any], folder: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m runners <command> --request FILE` in this environment, from the repository root."""
    path = folder / f"{command}-{request.get('run_id', request.get('target', 'x'))}.request.json"
    path.write_text(json.dumps(request))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "runners", command, "--request", str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def export(folder: Path, name: str, **fields: Any) -> tuple[subprocess.CompletedProcess, dict[str, Any]]:
    """An ExportRequest through the CLI: (the process, the ExportResult as JSON)."""
    request = {"model": MODEL, "output_path": str(folder / name), "result_path": str(folder / f"{name}.json"),
               **fields}
    proc = runner("export", request, folder)
    return proc, json.loads(Path(request["result_path"]).read_text())


def make_checkpoint(folder: Path) -> Path:
    proc, result = export(folder, "checkpoint", framework="torch", target="hf-checkpoint")
    assert proc.returncode == 0 and result["status"] == "ok", proc.stderr[-3000:]
    return Path(result["output_path"])


def torch_reference(checkpoint: Path, folder: Path) -> dict[str, np.ndarray]:
    """The reference outputs, as the orchestrator makes them: torch/transformers/cpu at fp32 on the same
    checkpoint and prompt (a real run through the runner's CLI: tokens, prefill logits, decode margins)."""
    request = run_request(folder, checkpoint, "reference", runtime="torch/transformers/cpu",
                          budget={"warmup_iterations": 0, "min_iterations": 1})
    proc = runner("run", request, folder)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(request["outputs_path"]) as saved:
        return dict(saved)


def run_request(folder: Path, artifact: Path, run_id: str, **fields: Any) -> dict[str, Any]:
    return {"run_id": run_id, "runtime": ORT_GENAI_CPU, "model": MODEL, "batch_size": BATCH, "input_seed": SEED,
            "artifact_path": str(artifact), "model_options": {"prompt_tokens": PROMPT, "new_tokens": NEW},
            "budget": {"warmup_iterations": 1, "min_iterations": 3}, "threads": 1,
            "result_path": str(folder / f"{run_id}.json"), "outputs_path": str(folder / f"{run_id}.npz"), **fields}


def phases(result: dict[str, Any]) -> list[list[int]]:
    return result["generation"]["phases_ns"]


def assert_monotonic_phases(result: dict[str, Any]) -> None:
    """One [start, first token, end] per window iteration, in order, inside the window."""
    spans = phases(result)
    assert len(spans) == result["iterations"], (len(spans), result["iterations"])
    previous_end = result["window_start_ns"]
    for start, first, end in spans:
        assert previous_end <= start < first < end <= result["window_end_ns"], (start, first, end)
        previous_end = end


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
