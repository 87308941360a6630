"""Sweeps of the real CLI on the simulated NVIDIA host (testkit.nvidia_host): their configs and one local sweep."""
from __future__ import annotations

import json
from pathlib import Path

from testkit.nvidia_host import SimulatedHost, run_greenrt
from testkit.paths import GPU_STANDIN
from testkit.powercap import make_powercap_tree
from testkit.sweep_helpers import steady_draw

TORCH_CUDA = "torch/native/cuda"


def sweep_config(path: Path, *, runtimes: list[str], batch_sizes: tuple[int, ...] = (1,), repetitions: int = 1,
                 min_seconds: float = 2.0, baseline_s: float = 1.0, cooldown: dict | None = None,
                 interval_ms: int = 50) -> Path:
    lines = [f'name = "{path.stem}"', 'models = ["mobilenet_v2"]', f"batch_sizes = {list(batch_sizes)}",
             f"runtimes = {json.dumps(runtimes)}", f"repetitions = {repetitions}", "timeout_seconds = 120",
             "[warmup]", "iterations = 1", "[measure]", "min_iterations = 3", f"min_seconds = {min_seconds}",
             "[baseline]", f"seconds = {baseline_s}", "[sampler]", f"interval_ms = {interval_ms}", "[cooldown]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in (cooldown or {"seconds": 0.0}).items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def sweep(host: SimulatedHost, folder: Path, config: Path, *extra: str, rapl: bool = False,
          env: dict[str, str] | None = None):
    """One sweep through the local launcher; with rapl, a synthetic powercap tree drawing constant power."""
    out = folder / "results"
    root = folder / "powercap" if rapl else folder / "no-powercap"
    args = ["sweep", "--config", str(config), "--out", str(out), "--launcher", "local", "--powercap-root", str(root),
            *extra]
    if rapl:
        with steady_draw(make_powercap_tree(root, packages=1, dram=True)):
            done = run_greenrt(args, env=env or host.env())
    else:
        done = run_greenrt(args, env=env or host.env())
    return done, out


def gpu_config(path: Path, *, gpus_per_run: int | None = None, runtimes: tuple[str, ...] = (TORCH_CUDA,)) -> Path:
    lines = [f'name = "{path.stem}"', 'models = ["mobilenet_v2"]', "batch_sizes = [1]",
             f"runtimes = {json.dumps(list(runtimes))}", "repetitions = 1", "timeout_seconds = 120",
             *([f"gpus_per_run = {gpus_per_run}"] if gpus_per_run is not None else []),
             "[warmup]", "iterations = 1", "[measure]", "min_iterations = 3", "min_seconds = 1.0",
             "[baseline]", "seconds = 1.0", "[sampler]", "interval_ms = 50", "[cooldown]", "seconds = 0.0",
             f'[environment."{TORCH_CUDA}"]', f"PYTHONPATH = {json.dumps(str(GPU_STANDIN))}",
             'GREENRT_TEST_GPU_STANDIN = "1"']
    path.write_text("\n".join(lines) + "\n")
    return path
