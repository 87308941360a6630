"""Helpers of the C++ client's tests (a unique module name: tests/host and tests/node-client have their own
conftest)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from runners.protocol import Budget, RunRequest, to_dict

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(sys.prefix) / "bin" / "greenrt-torch-runner"
MODEL = "mobilenet_v2"
SUFFIX = {"torchscript": ".pt", "aoti": ".pt2"}
SMALL = Budget(warmup_iterations=1, min_iterations=3)


@dataclass
class Answer:
    returncode: int
    result: dict | None
    stderr: str


def make_request(tmp_path: Path, fmt: str, client: str, artifacts: dict[str, Path], inputs_index: Path,
                 **kwargs) -> RunRequest:
    """A request for `client` ("cpp" or "python") running the `fmt` artifact; kwargs override its fields."""
    name = kwargs.pop("run_id", f"{fmt}-{client}")
    fields = dict(run_id=name, runtime=f"torch/{fmt}/cpu" + ("@cpp" if client == "cpp" else ""), model=MODEL,
                  batch_size=1, result_path=str(tmp_path / f"{name}.result.json"), artifact_path=str(artifacts[fmt]),
                  inputs_path=str(inputs_index), budget=SMALL, threads=1)
    return RunRequest(**{**fields, **kwargs})


def command(client: str, request_path: Path) -> list[str]:
    if client == "cpp":
        return [str(RUNNER), "run", "--request", str(request_path)]
    return [sys.executable, "-m", "runners", "run", "--request", str(request_path)]


def write_request(tmp_path: Path, request: RunRequest | dict, name: str = "request") -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(to_dict(request) if isinstance(request, RunRequest) else request))
    return path


def run_client(tmp_path: Path, client: str, request: RunRequest | dict, timeout: float = 600) -> Answer:
    """The client's runner on `request` as the orchestrator starts it; its result file parsed (None if absent)."""
    data = to_dict(request) if isinstance(request, RunRequest) else request
    path = write_request(tmp_path, data, f"{data.get('run_id', 'request')}.request")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command(client, path), capture_output=True, text=True, timeout=timeout, env=env)
    result_path = Path(data["result_path"])
    return Answer(done.returncode, json.loads(result_path.read_text()) if result_path.is_file() else None,
                  done.stderr)
