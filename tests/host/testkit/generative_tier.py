"""One generative runtime's test tier (tests/onnxruntime-genai, tests/ctranslate2, tests/openvino-genai,
tests/llama-cpp), run INSIDE that runtime's environment: `$(greenrt env python <env>) -m pytest tests/<env>`.

Everything goes through the runner's own CLI, the way a sweep runs it: llama-tiny's checkpoint
(`python -m runners export`, torch -> hf-checkpoint, seeded weights), its conversions by the runtime's own tool,
the runs, and the reference run (torch/transformers/cpu at fp32, the orchestrator's reference runtime), whose saved
outputs models/fidelity.py judges the runtime's against. A tier states only what is its own: its runtime, its
converter's framework and target, its workload, and where the checkpoint and reference are made (in its own
environment where that has torch and transformers, else in the torch environment, as a sweep does).

Standard library, numpy, pytest and runners.protocol (standard library) only: every runtime environment has them.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

from runners.protocol import RunResult, read_json

ROOT = Path(__file__).resolve().parents[3]
MODEL = "llama-tiny"
REFERENCE_RUNTIME = "torch/transformers/cpu"
# A small workload: 16 prompt tokens, exactly 8 new tokens.
PROMPT, NEW = 16, 8
OPTIONS = {"prompt_tokens": PROMPT, "new_tokens": NEW}
SEED = 3


def torch_python() -> Path:
    """The torch environment's interpreter: $GREENRT_TORCH_PYTHON, else the torch venv under the cache ($GREENRT_CACHE,
    else .cache/), which `make test-<env>` builds first (TEST_ENVS)."""
    configured = os.environ.get("GREENRT_TORCH_PYTHON")
    if configured:
        return Path(configured)
    return Path(os.environ.get("GREENRT_CACHE", ROOT / ".cache")) / "envs" / "torch" / "bin" / "python"


class CliRun(NamedTuple):
    """A `python -m runners run` as the test sees it: its exit status, its RunResult as JSON, its saved outputs."""
    returncode: int
    result: dict[str, Any]
    outputs: dict[str, np.ndarray] | None


@dataclass(frozen=True)
class GenerativeTier:
    runtime: str  # the runtime id under test, e.g. "ctranslate2/ct2-from-hf/cpu"
    framework: str  # the ExportRequest's framework and target of its conversion
    target: str
    artifact: str  # the converted folders' prefix, e.g. "ct2" -> ct2-fp32
    batch_size: int  # a run's batch size unless a test names one
    threads: int
    # Where the checkpoint and the reference run are made: the torch environment, else this one.
    reference_in_torch_env: bool
    # The batch sizes its tests compare with a reference run of the same batch.
    reference_batches: tuple[int, ...] = (1,)
    # HF_HUB_OFFLINE=1 in the runner's processes (the converters that would otherwise ask the Hub).
    hub_offline: bool = False

    def reference_python(self) -> Path:
        if not self.reference_in_torch_env:
            return Path(sys.executable)
        python = torch_python()
        assert python.exists(), f"no torch environment at {python}: `greenrt env build torch` first"
        return python

    def runner(self, command: str, request: dict[str, Any], folder: Path,
               python: Path | None = None) -> subprocess.CompletedProcess:
        """`python -m runners <command> --request FILE` with `python` (this environment's by default), from the
        repository root."""
        path = folder / f"{command}-{Path(request['result_path']).stem}.request.json"
        path.write_text(json.dumps(request))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if self.hub_offline:
            env["HF_HUB_OFFLINE"] = "1"
        return subprocess.run([str(python or sys.executable), "-m", "runners", command, "--request", str(path)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)

    def export(self, folder: Path, name: str, python: Path | None = None,
               **fields: Any) -> tuple[subprocess.CompletedProcess, dict[str, Any]]:
        """An ExportRequest through the CLI, written to folder/name: (the process, the ExportResult as JSON)."""
        request = {"model": MODEL, "output_path": str(folder / name), "result_path": str(folder / f"{name}.json"),
                   **fields}
        proc = self.runner("export", request, folder, python)
        return proc, json.loads(Path(request["result_path"]).read_text())

    def make_checkpoint(self, folder: Path) -> Path:
        """llama-tiny's Hugging Face checkpoint (seeded weights), by greenrt's own exporter
        (models/llm/checkpoint.py)."""
        proc, result = self.export(folder, "checkpoint", self.reference_python(), framework="torch",
                                   target="hf-checkpoint")
        assert proc.returncode == 0 and result["status"] == "ok", proc.stderr[-3000:]
        return Path(result["output_path"])

    def convert(self, checkpoint: Path, folder: Path, precision: str) -> tuple[Path, dict[str, Any]]:
        """The checkpoint converted at `precision` by the runtime's own tool: (its folder, the ExportResult)."""
        proc, result = self.export(folder, f"{self.artifact}-{precision}", framework=self.framework,
                                   target=self.target, precision=precision, source_path=str(checkpoint))
        assert proc.returncode == 0 and result["status"] == "ok", (proc.stderr[-3000:], result.get("error"))
        return Path(result["output_path"]), result

    def refused_conversion(self, folder: Path, checkpoint: Path, precision: str) -> dict[str, Any]:
        """A conversion at a precision the converter does not make: exit 1, nothing written; its error."""
        proc, result = self.export(folder, f"refused-{precision}", framework=self.framework, target=self.target,
                                   precision=precision, source_path=str(checkpoint))
        assert proc.returncode == 1 and not (folder / f"refused-{precision}").exists(), proc.stderr[-3000:]
        return result["error"]

    def convert_bare(self, checkpoint: Path, folder: Path) -> tuple[dict[str, Any], bool]:
        """A copy of the checkpoint without its tokenizer files (a user's own folder may hold none), converted:
        (the ExportResult, whether the copy was left untouched)."""
        bare = folder / "bare"
        shutil.copytree(checkpoint, bare, ignore=shutil.ignore_patterns("tokenizer*", "special_tokens_map.json"))
        before = sorted(p.name for p in bare.iterdir())
        proc, result = self.export(folder, "from-bare", framework=self.framework, target=self.target,
                                   source_path=str(bare))
        assert proc.returncode == 0 and result["status"] == "ok", result.get("error")
        return result, sorted(p.name for p in bare.iterdir()) == before

    def run_request(self, folder: Path, artifact: Path, run_id: str | None = None, *, batch_size: int | None = None,
                    precision: str = "fp32", **fields: Any) -> dict[str, Any]:
        batch_size = batch_size or self.batch_size
        run_id = run_id or f"{self.artifact}-{precision}-b{batch_size}"
        return {"run_id": run_id, "runtime": self.runtime, "model": MODEL, "batch_size": batch_size,
                "precision": precision, "input_seed": SEED, "threads": self.threads, "model_options": OPTIONS,
                "artifact_path": str(artifact), "budget": {"warmup_iterations": 1, "min_iterations": 3},
                "result_path": str(folder / f"{run_id}.result.json"), "outputs_path": str(folder / f"{run_id}.npz"),
                **fields}

    def reference(self, folder: Path, checkpoint: Path, batch_size: int) -> dict[str, np.ndarray]:
        """The reference run's saved outputs (tokens, prefill logits, decode margins) on the same checkpoint and
        prompt, as the orchestrator makes them."""
        request = self.run_request(folder, checkpoint, f"reference-b{batch_size}", batch_size=batch_size,
                                   runtime=REFERENCE_RUNTIME, budget={"warmup_iterations": 0, "min_iterations": 1})
        proc = self.runner("run", request, folder, self.reference_python())
        assert proc.returncode == 0, proc.stderr[-3000:]
        with np.load(request["outputs_path"]) as saved:
            return dict(saved)

    def run(self, folder: Path, request: dict[str, Any]) -> CliRun:
        """A run through the CLI, whatever its outcome."""
        proc = self.runner("run", request, folder)
        result = json.loads(Path(request["result_path"]).read_text())
        outputs = None
        if Path(request["outputs_path"]).is_file():
            with np.load(request["outputs_path"]) as saved:
                outputs = dict(saved)
        return CliRun(proc.returncode, result, outputs)

    def run_ok(self, folder: Path, request: dict[str, Any]) -> tuple[RunResult, dict[str, np.ndarray]]:
        """A run through the CLI that must exit 0: (its RunResult, its saved outputs)."""
        proc = self.runner("run", request, folder)
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = read_json(RunResult, request["result_path"])
        with np.load(request["outputs_path"]) as saved:
            return result, dict(saved)

    def refused(self, folder: Path, request: dict[str, Any]) -> dict[str, Any]:
        """A run the runner must refuse (exit 1): its RunResult's error."""
        proc = self.runner("run", request, folder)
        assert proc.returncode == 1, proc.stderr[-3000:]
        return json.loads(Path(request["result_path"]).read_text())["error"]

    def corrupted_run(self, converted: Path, folder: Path, scale: Callable[[Path], str | None]) -> tuple[str | None,
                                                                                                          CliRun]:
        """A copy of a converted fp32 folder with one weight scaled by `scale` (the tier's own file format), run:
        (what `scale` names, the run). It runs: only the comparison with the reference can tell."""
        corrupted = folder / "corrupted"
        shutil.copytree(converted, corrupted)
        scaled = scale(corrupted)
        run = self.run(folder, self.run_request(folder, corrupted, "corrupted"))
        assert run.returncode == 0 and run.result["status"] == "ok", run.result.get("error")
        return scaled, run


def assert_phases(result: RunResult, batch_size: int) -> None:
    """The workload asked for, and one [start, first token, end] per window iteration, each strictly ordered, one
    after the other, inside the window."""
    generation = result.generation
    assert (generation.prompt_tokens, generation.new_tokens, generation.batch_size) == (PROMPT, NEW, batch_size)
    assert len(generation.phases_ns) == result.iterations >= 3
    assert generation.problem(result.window_start_ns, result.window_end_ns, result.iterations) is None
    assert all(start < first < end for start, first, end in generation.phases_ns)


# The session fixtures every tier shares: a tier's conftest imports them, sets `tier = tier_fixture(TIER)` and names
# its conversions with `converted`.
def tier_fixture(tier: GenerativeTier):
    """The session fixture `tier`: this tier's GenerativeTier, which the shared fixtures read."""
    @pytest.fixture(scope="session")
    def fixture() -> GenerativeTier:
        return tier
    return fixture


@pytest.fixture(scope="session")
def made(tier, tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp(tier.artifact)


@pytest.fixture(scope="session")
def checkpoint(tier, made) -> Path:
    return tier.make_checkpoint(made)


@pytest.fixture(scope="session")
def reference(tier, made, checkpoint) -> dict[int, dict[str, np.ndarray]]:
    """batch size -> the reference run's outputs."""
    return {batch: tier.reference(made, checkpoint, batch) for batch in tier.reference_batches}


def converted(precision: str):
    """A session fixture: the checkpoint converted at `precision`, (its folder, the ExportResult)."""
    @pytest.fixture(scope="session")
    def conversion(tier, made, checkpoint) -> tuple[Path, dict[str, Any]]:
        return tier.convert(checkpoint, made, precision)
    return conversion
