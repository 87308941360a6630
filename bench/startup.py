"""Start-up cost of a run per launcher: from launch to the runner's process start, and to its first inference.

The same small cells are launched alternately through the local launcher (a process in the runtime's venv) and the
Docker launcher (a fresh container of the runtime's image), through greenrt's own launchers and sweep code. Both
figures lie before the warm-up, so outside the measured window; the benchmark checks that for every launch.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path

from orchestrator.execution.artifacts import ArtifactCache
from orchestrator.provisioning.environments import EnvironmentManager
from orchestrator.provisioning.images import ImageManager, docker_client
from orchestrator.execution.launchers.docker import DockerLauncher
from orchestrator.execution.launchers.local import LocalLauncher
from orchestrator.planning.runtimes import parse_runtime
from orchestrator.execution.preparation import run_mounts
from orchestrator.execution.run import launch_facts
from runners.protocol import Budget, RunRequest, RunResult, Weights, read_json, to_dict, write_json_atomic

CELLS = (("onnxruntime/onnx-from-torch/cpu", "mobilenet_v2"), ("torch/native/cpu", "mobilenet_v2"))


def docker_launcher() -> tuple[DockerLauncher | None, str]:
    try:
        images = ImageManager(docker_client())
    except Exception as exc:  # noqa: BLE001 - any reason there is no engine is reported as such
        return None, str(exc)
    not_ready = [f"{env}: {images.state(env).state}" for env in ("torch", "onnxruntime")
                 if images.state(env).state != "ready"]
    if not_ready:
        return None, f"images not ready ({', '.join(not_ready)}): `make cpu-images` or `make images` first"
    return DockerLauncher(images), "ready"


def launch_once(launcher, runtime: str, model: str, artifact_path: str | None, folder: Path) -> dict:
    folder.mkdir(parents=True)
    request = RunRequest(run_id=folder.name, runtime=runtime, model=model, batch_size=1,
                         result_path=str(folder / "result.json"), artifact_path=artifact_path,
                         budget=Budget(warmup_iterations=5, min_iterations=20))
    write_json_atomic(folder / "request.json", to_dict(request))
    outcome = launcher.launch(parse_runtime(runtime).environment, ["run", "--request", str(folder / "request.json")],
                              workdir=folder, timeout_s=300, env_vars={}, log_path=folder / "runner.log",
                              **run_mounts(request))
    result: RunResult = read_json(RunResult, request.result_path)
    if result.status != "ok":
        raise RuntimeError(f"{runtime} through {launcher.name} failed: {outcome.log_tail[-500:]}")
    facts = launch_facts(outcome, result).model_dump()  # a typed Launch; the bench adds its own key
    facts["outside_window"] = result.first_inference_ns <= result.window_start_ns
    return facts


def summarise(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median_s": statistics.median(ordered), "min_s": ordered[0], "max_s": ordered[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--launches", type=int, default=8, help="Launches per cell and launcher.")
    args = parser.parse_args()
    local = LocalLauncher(EnvironmentManager())
    docker, docker_state = docker_launcher()
    launchers = [local] + ([docker] if docker else [])
    report = {"host": platform.node(), "launches": args.launches, "docker": docker_state, "cells": []}
    with tempfile.TemporaryDirectory(prefix="greenrt-startup-") as tmp:
        artifacts = ArtifactCache(local)
        for runtime, model in CELLS:
            parsed = parse_runtime(runtime)
            artifact = artifacts.ensure(parsed, model, {}, Weights(), None) if parsed.source_framework else None
            facts: dict[str, list[dict]] = {launcher.name: [] for launcher in launchers}
            for i in range(args.launches):  # alternated, so drift of the machine touches both alike
                for launcher in launchers:
                    folder = Path(tmp) / f"{parsed.environment}-{launcher.name}-{i}"
                    facts[launcher.name].append(launch_once(launcher, runtime, model,
                                                            artifact.path if artifact else None, folder))
            cell = {"runtime": runtime, "model": model, "launchers": {}}
            for name, runs in facts.items():
                cell["launchers"][name] = {
                    "startup": summarise([r["startup_s"] for r in runs]),
                    "start_to_first_inference": summarise([r["start_to_first_inference_s"] for r in runs]),
                    "launch_total": summarise([r["seconds"] for r in runs]),
                    "all_outside_window": all(r["outside_window"] for r in runs),
                }
            report["cells"].append(cell)
            print(json.dumps(cell))
    Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
