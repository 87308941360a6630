"""The five config mistakes of issue 16, and a handful of hostile documents, through the real CLI: each mistake one
line on stderr naming the key, the value and the valid choices, exit 2, and no results folder made."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import paths

GREENRT = str(Path(sys.executable).with_name("greenrt"))
# An interpreter named for torch must have torch: the torch environment's own (greenrt's has none).
TORCH_PYTHON = paths.cache_dir() / "envs" / "torch" / "bin" / "python"
BASE = ('models = ["mobilenet_v2"]\nbatch_sizes = [1]\nruntimes = ["torch/native/cpu"]\n'
        '[baseline]\nseconds = 0\n')

pytestmark = pytest.mark.process


def refused(tmp_path: Path, toml: str, *args: str, verb: str = "sweep") -> list[str]:
    """The error lines of `greenrt <verb>` on this config, asserting exit 2 and that nothing was written."""
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    out = tmp_path / "results"
    extra = ("--out", str(out)) if verb == "sweep" else ()
    done = subprocess.run([GREENRT, verb, "--config", str(config), *extra, *args], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert not out.exists(), sorted(p.name for p in out.iterdir())
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines and all(line.startswith("error: ") for line in lines), done.stderr
    return lines


def test_an_infinite_min_seconds_is_refused(tmp_path):
    lines = refused(tmp_path, 'name = "c1"\n' + BASE + "[measure]\nmin_seconds = inf\n", "--launcher", "local")
    assert lines == [f"error: {tmp_path / 'bad.toml'}: measure.min_seconds: Input should be a finite number, not inf"]


def test_a_missing_interpreter_is_refused_before_the_results_folder(tmp_path):
    toml = 'name = "c2"\n' + BASE.replace("[baseline]", '[interpreters]\ntorch = "/nope/python"\n[baseline]')
    for launcher in ("local", "auto", "docker"):
        lines = refused(tmp_path, toml, "--launcher", launcher)
        assert len(lines) == 1 and "interpreters.torch = '/nope/python': not found or not executable" in lines[0]
        assert "valid: a Python 3 interpreter" in lines[0]


def test_an_interpreter_without_the_framework_it_is_named_for_is_refused(tmp_path):
    toml = 'name = "c2c"\n' + BASE.replace("[baseline]", f'[interpreters]\ntorch = "{sys.executable}"\n[baseline]')
    lines = refused(tmp_path, toml, "--launcher", "local")
    assert len(lines) == 1 and f"interpreters.torch = '{sys.executable}': has no torch module" in lines[0], lines
    python = refused(tmp_path, 'name = "c2d"\n' + BASE, "--launcher", "local", "--python", sys.executable)
    assert len(python) == 1 and "--python" in python[0] and "has no torch module" in python[0], python


def test_an_interpreter_the_docker_launcher_would_ignore_is_refused_and_auto_runs_it_locally(tmp_path):
    toml = 'name = "c2b"\n' + BASE.replace("[baseline]", f'[interpreters]\ntorch = "{TORCH_PYTHON}"\n[baseline]')
    lines = refused(tmp_path, toml, "--launcher", "docker")
    assert len(lines) == 1 and "interpreters.torch" in lines[0] and "--launcher docker would ignore" in lines[0]
    assert "valid: --launcher local or auto" in lines[0]
    config = tmp_path / "bad.toml"
    plan = subprocess.run([GREENRT, "plan", "--config", str(config), "--launcher", "auto"], capture_output=True,
                          text=True, timeout=120)
    assert plan.returncode == 0, plan.stderr
    assert "launcher: local (the config names interpreters for torch" in plan.stdout


def test_a_batch_whose_inputs_exceed_the_host_memory_is_refused_or_skipped(tmp_path):
    toml = 'name = "c3"\n' + BASE.replace("batch_sizes = [1]", "batch_sizes = [1, 100000000]")
    lines = refused(tmp_path, toml, "--launcher", "local")
    assert len(lines) == 1, lines
    assert "batch_sizes: 100000000 for torch/native/cpu: mobilenet_v2 at batch 100000000: its inputs alone need " \
           "54.8 TiB" in lines[0] and "valid: a smaller batch size, or --skip-oversized" in lines[0]
    plan = subprocess.run([GREENRT, "plan", "--config", str(tmp_path / "bad.toml"), "--skip-oversized", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert plan.returncode == 0, plan.stderr
    assert '"batch_size": 1' in plan.stdout and "oversized: mobilenet_v2 at batch 100000000" in plan.stdout


def test_every_mistake_is_listed_not_the_first_and_a_count(tmp_path):
    lines = refused(tmp_path, 'repetition = 2\n' + BASE, "--launcher", "local", verb="plan")
    assert "(and 1 more)" not in "\n".join(lines)
    assert len(lines) == 2, lines
    assert "name: required key missing; valid: letters, digits" in lines[0]
    assert "repetition: unknown key; valid keys here: " in lines[1] and "repetitions" in lines[1]


def test_an_opset_no_exporter_writes_and_an_unknown_mxnet_backend_are_refused_up_front(tmp_path):
    toml = ('name = "c5"\nopset = 999\nmodels = ["mobilenet_v2"]\nbatch_sizes = [1]\n'
            'runtimes = ["mxnet/native/cpu", "onnxruntime/onnx-from-torch/cpu", "onnxruntime/onnx-from-mxnet/cpu"]\n'
            '[provider_options."mxnet/native/cpu"]\nbackend = "TVM"\n')
    lines = refused(tmp_path, toml, "--launcher", "local")
    assert len(lines) == 2, lines
    assert lines[0].endswith("opset = 999: not written by every ONNX exporter of this sweep (mxnet: 12, 13; torch: "
                             "7-20); valid: 12, 13")
    assert lines[1].endswith("provider_options.mxnet/native/cpu.backend = 'TVM': not accepted by mxnet/native/cpu; "
                             "valid: MKLDNN")


@pytest.mark.parametrize("toml, expected", [
    ('name = "名前"\n' + BASE, "name: String should match pattern"),
    ('name = "h"\nseed = -1\n' + BASE, "seed: Input should be greater than or equal to 0, not -1"),
    ('name = "h"\nbatch_sizes = ["64"]\nmodels = ["mobilenet_v2"]\nruntimes = ["torch/native/cpu"]\n',
     "batch_sizes.0: Input should be a valid integer, not '64'"),
    ('name = "h"\n' + BASE + '[environment."torch/native/cpu"]\n"A=B" = "1"\nC = "x\\u0000y"\n',
     "environment.torch/native/cpu.'A=B': not an environment variable's name"),
    ('name = "h"\n' + BASE + '[environment."torch/native/cpu"]\nC = "x\\u0000y"\n',
     "environment.torch/native/cpu.C = 'x\\x00y': holds a NUL character"),
    ('name = "h"\n' + BASE + "[measure]\nmin_seconds = nan\n[warmup]\nseconds = -1.0\n",
     "measure.min_seconds: Input should be a finite number, not nan"),
    ('name = "h"\n' + BASE + "[baseline]\nseconds = 1\n", "not valid TOML"),  # a table defined twice
])
def test_hostile_documents_are_refused_one_line_per_mistake(tmp_path, toml, expected):
    lines = refused(tmp_path, toml, "--launcher", "local")
    assert any(expected in line for line in lines), lines


def test_the_shipped_configs_plan(tmp_path):
    for name in ("quick", "study"):
        done = subprocess.run([GREENRT, "plan", "--config", str(paths.PROJECT_ROOT / "configs" / f"{name}.toml"),
                               "--launcher", "local", "--json"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
