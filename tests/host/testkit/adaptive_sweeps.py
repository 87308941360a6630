"""The adaptive sweeps' tests' config: two ONNX Runtime cells per group (exports cached, quick to start), the
MXNet-exported one made clearly slower by the fault site's `slow` mode (every inference call sleeps first), so that
each group's verdict is known after the first rounds. min = 4: the report's final test (Mann-Whitney, exact) can
call a leader best from 4 runs a side, not fewer."""
from __future__ import annotations

from pathlib import Path

from testkit.paths import FAULT_SITE

FAST, SLOW = "onnxruntime/onnx-from-torch/cpu", "onnxruntime/onnx-from-mxnet/cpu"


def adaptive_config(path: Path, *, name: str, batch_sizes: str = "[1]", min_seconds: float = 0.3,
                    cooldown_s: float = 0.0, repetitions: str = '{min = 4, max = 8, stop = "verdict"}') -> Path:
    path.write_text(f"""name = "{name}"
models = ["mobilenet_v2"]
batch_sizes = {batch_sizes}
runtimes = ["{FAST}", "{SLOW}"]
repetitions = {repetitions}
timeout_seconds = 60
[warmup]
iterations = 1
[measure]
min_iterations = 3
min_seconds = {min_seconds}
[baseline]
seconds = 0.5
[cooldown]
seconds = {cooldown_s}
[environment."{SLOW}"]
PYTHONPATH = "{FAULT_SITE}"
GREENRT_TEST_FAULT = "slow"
GREENRT_TEST_SLOW_S = "0.5"
""")
    return path
