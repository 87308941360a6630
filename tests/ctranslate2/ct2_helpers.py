"""Helpers of the CTranslate2 tests, which run INSIDE the ctranslate2 environment:

    $(greenrt env python onnxruntime-genai) -m pytest tests/ctranslate2

That environment has torch and transformers (its converter needs them), so everything is made here through the
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
CT2_CPU = "ctranslate2/ct2-from-hf/cpu"
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
    return {"run_id": run_id, "runtime": CT2_CPU, "model": MODEL, "batch_size": BATCH, "input_seed": SEED,
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
