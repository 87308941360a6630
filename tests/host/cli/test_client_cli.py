"""Runtime ids with a client suffix through the real CLI (issue 25): the client-languages config plans, and a
suffix that names no client of its runtime is one line naming the valid ones, exit 2, nothing written."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import paths

GREENRT = str(Path(sys.executable).with_name("greenrt"))
CONFIG = paths.PROJECT_ROOT / "configs" / "client-languages.toml"
CLIENT_RUNTIMES = ["onnxruntime/onnx-from-torch/cpu@python", "onnxruntime/onnx-from-torch/cpu@node",
                   "torch/torchscript/cpu", "torch/torchscript/cpu@cpp"]

pytestmark = pytest.mark.process


def test_the_client_languages_config_plans_every_cell_of_both_clients():
    done = subprocess.run([GREENRT, "plan", "--config", str(CONFIG), "--launcher", "local", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    plan = json.loads(done.stdout)
    cells = {(r["cell"]["model"], r["cell"]["batch_size"], r["cell"]["runtime"]) for r in plan["runs"]}
    assert cells == {(m, b, r) for m in ("resnet50", "mobilenet_v2", "bert-base-uncased") for b in (1, 64)
                     for r in CLIENT_RUNTIMES}
    assert not plan["skipped"] and len(plan["runs"]) == len(cells) * plan["config"]["repetitions"]
    assert plan["time_estimate"]["low_s"] > 0 and plan["time_estimate"]["runs_low"] == len(plan["runs"])


def test_a_suffix_that_names_no_client_is_refused_before_anything_is_written(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('name = "bad-client"\nmodels = ["mobilenet_v2"]\nbatch_sizes = [1]\n'
                      'runtimes = ["onnxruntime/onnx-from-torch/cpu@cpp"]\n')
    out = tmp_path / "results"
    for verb, extra in (("sweep", ("--out", str(out), "--launcher", "local")), ("plan", ())):
        done = subprocess.run([GREENRT, verb, "--config", str(config), *extra], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "runtime 'onnxruntime/onnx-from-torch/cpu@cpp'" in lines[0], lines
        assert "valid: @node, @python" in lines[0]
        assert not out.exists()
