"""`greenrt plan`'s time estimate (orchestrator/cli/plan_budget.py): what the artifact cache holds is looked up by
name, with the seconds an export took; `--history DIR` turns an earlier sweep's runs into the estimate; a history
path that is not a folder is refused in one line."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from orchestrator.cli.plan_budget import preparation_items
from orchestrator.planning.config import parse_config
from orchestrator.planning.planner import HostCapabilities, plan_sweep
from orchestrator.planning.time_budget import CHECK_GUESS_S, ENVIRONMENT_GUESS_S, FINISH_GUESS_S, clock
from testkit.records import make_record
from testkit.sweep_helpers import GREENRT
from testkit.synthetic_sweep import write_sweep

TORCH, ORT = "torch/native/cpu", "onnxruntime/onnx-from-torch/cpu"


def test_the_cache_is_looked_up_by_name_and_an_exports_seconds_are_its_own(tmp_path):
    cfg = parse_config({"name": "t", "models": ["mobilenet_v2", "resnet50"], "batch_sizes": [1], "runtimes": [ORT]})
    plan = plan_sweep(cfg, HostCapabilities())
    cached = tmp_path / "artifacts" / "torch-mobilenet_v2-0123456789abcdef"
    cached.mkdir(parents=True)
    (cached / "export.json").write_text(json.dumps({"framework": "torch", "model": "mobilenet_v2", "status": "ok",
                                                    "output_path": "model.onnx", "seconds": 12.5}))
    (tmp_path / "artifacts" / "torch-resnet50-0123456789abcdef.partial").mkdir()  # an export killed half-way
    reference = tmp_path / "references" / "torch-mobilenet_v2-fedcba9876543210"
    reference.mkdir(parents=True)
    (reference / "reference-bs1-seed0.npz").write_bytes(b"")
    items = preparation_items(plan, ["onnxruntime", "torch"], lambda env: env == "torch", tmp_path)
    assert [(i.kind, i.name, i.cached, i.seconds) for i in items] == [
        ("environment", "onnxruntime", False, None), ("environment", "torch", True, None),
        ("export", "torch-mobilenet_v2", True, 12.5), ("export", "torch-resnet50", False, None),
        ("reference", "torch-mobilenet_v2 bs1", True, None), ("reference", "torch-resnet50 bs1", False, None)]
    assert items[-1].cell == f"resnet50|bs1|{TORCH}|fp32"  # its time: the earlier native runs of that cell



def test_a_generative_sweep_needs_the_checkpoint_once_and_a_conversion_per_runtime_and_precision(tmp_path):
    cfg = parse_config({"name": "t", "models": ["llama-tiny"], "batch_sizes": [1],
                        "runtimes": ["torch/transformers/cpu", "ctranslate2/ct2-from-hf/cpu"],
                        "precisions": ["fp32", "int8"]})
    plan = plan_sweep(cfg, HostCapabilities())
    cached = tmp_path / "artifacts" / "ctranslate2-llama-tiny-ct2-int8-0123456789abcdef"
    cached.mkdir(parents=True)
    (cached / "export.json").write_text(json.dumps({"framework": "ctranslate2", "model": "llama-tiny",
                                                    "status": "ok", "output_path": "out", "seconds": 7.0}))
    items = preparation_items(plan, [], lambda env: True, tmp_path)
    exports = [(i.name, i.cached, i.seconds) for i in items if i.kind == "export"]
    # no int8 copy: a generative runtime's converter quantizes; the reference is transformers' own fp32 run
    assert [e for e in exports if e[0].startswith(("ctranslate2", "torch-llama"))] == [
        ("ctranslate2-llama-tiny-ct2-fp32", False, None), ("ctranslate2-llama-tiny-ct2-int8", True, 7.0),
        ("torch-llama-tiny-hf-checkpoint", False, None)]
    assert not any("int8" in name and name.startswith("torch-") for name, *_ in exports)
    assert [(i.name, i.cell) for i in items if i.kind == "reference"] == [
        ("torch-llama-tiny bs1", "llama-tiny|bs1|torch/transformers/cpu|fp32")]

@pytest.mark.process
def test_plan_estimates_from_an_earlier_sweeps_runs(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('name = "c"\nmodels = ["mobilenet_v2"]\nbatch_sizes = [1]\nruntimes = ["torch/native/cpu"]\n'
                      'repetitions = 2\n[warmup]\niterations = 1\n[measure]\nmin_iterations = 1\nmin_seconds = 1.0\n'
                      '[baseline]\nseconds = 0.0\n')
    # Earlier runs of the cell: load 1.5 s, first inference 0.2 s, 0.6 s per inference, 6 s of wall time in all.
    records = []
    for i in range(3):
        record = make_record(f"r{i}", model="mobilenet_v2", batch_size=1, runtime=TORCH, latencies_ms=(600,) * 4,
                             window_s=2.4, index=i)
        record["wall_seconds"] = 6.0
        records.append(record)
    earlier = write_sweep(tmp_path / "earlier", records, with_samples=False)
    env = {**os.environ, "GREENRT_CACHE": str(tmp_path / "cache")}  # nothing built: the environment is a guess
    args = [GREENRT, "plan", "--config", str(config), "--launcher", "local", "--powercap-root", str(tmp_path / "no")]
    done = subprocess.run([*args, "--history", str(earlier), "--json"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    estimate = json.loads(done.stdout)["time_estimate"]
    parts = {p["name"]: p for p in estimate["parts"]}
    # per run: load 1.5, warm-up 0.2 (1 inference), window max(1 s, 1 x 0.6 s) = 1, the rest 6 - 4.4 = 1.6
    assert parts["load"] == {"name": "load", "low_s": 3.0, "high_s": 3.0, "source": "measured on this host, 3 runs"}
    assert (parts["warm-up"]["low_s"], parts["window"]["low_s"], parts["other"]["low_s"]) == (0.4, 2.0, 3.2)
    assert estimate["low_s"] == pytest.approx(ENVIRONMENT_GUESS_S + CHECK_GUESS_S + 8.6 + FINISH_GUESS_S)
    shown = subprocess.run([*args, "--history", str(earlier)], capture_output=True, text=True, env=env)
    assert shown.returncode == 0, shown.stderr
    assert f"time estimate: {clock(estimate['low_s'])} for 2 runs, from 1 earlier results folder(s)" in shown.stdout
    assert "load: 3 s (measured on this host, 3 runs)" in shown.stdout
    refused = subprocess.run([*args, "--history", str(config)], capture_output=True, text=True, env=env)
    assert refused.returncode == 2 and "--history" in refused.stderr and "Traceback" not in refused.stderr
