"""Running real sweeps from tests: a config writer, the CLI, and a synthetic RAPL tree drawing constant power."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from testkit.powercap import ConstantDraw, PowercapTree

GREENRT = str(Path(sys.executable).with_name("greenrt"))
PACKAGE_W, DRAM_W = 20.0, 5.0  # what the synthetic counters draw, for the whole sweep, idle included


def write_config(path: Path, **change) -> Path:
    config = {"name": "e2e", "models": '["mobilenet_v2"]', "batch_sizes": "[1, 2]",
              "runtimes": '["torch/native/cpu", "onnxruntime/onnx-from-torch/cpu"]', "repetitions": 1, **change}
    body = "\n".join(f"{k} = {v}" if not isinstance(v, str) or v.startswith("[") else f'{k} = "{v}"'
                     for k, v in config.items())
    body += "\n[warmup]\niterations = 1\n[measure]\nmin_iterations = 3\nmin_seconds = 1.0\n[baseline]\nseconds = 1.0\n"
    path.write_text(body)
    return path


def greenrt(*args: str, launcher: str = "local", timeout: float = 600) -> subprocess.CompletedProcess:
    # Never let "auto" pick a launcher because of what happens to be built on this machine.
    if args and args[0] in ("sweep", "run"):
        args = (*args, "--launcher", launcher)
    return subprocess.run([GREENRT, *args], capture_output=True, text=True, timeout=timeout)


def steady_draw(tree: PowercapTree) -> ConstantDraw:
    """The synthetic RAPL counters of package-0 and dram-0 drawing PACKAGE_W and DRAM_W while open."""
    return ConstantDraw(tree, {"package-0": PACKAGE_W, "dram-0": DRAM_W})
