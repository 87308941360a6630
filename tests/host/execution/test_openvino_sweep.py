"""OpenVINO two ways in a real sweep through the local launcher: OpenVINO's own runtime and ONNX Runtime's OpenVINO
execution provider on MobileNetV2 exported from PyTorch, compared with PyTorch's native run (fidelity); then the
cached ONNX artifact's classifier weights are perturbed by 5 % and the same sweep must flag both runs unfaithful.

The sweep runs with its own GREENRT_CACHE (artifacts and references in a temporary folder, so the perturbed model
never reaches the checkout's cache); the runtime environments are the checkout's, linked in.
"""
from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import polars as pl
import pytest

from orchestrator import paths
from testkit.sweep_helpers import greenrt, write_config

pytestmark = pytest.mark.process

OV = "openvino/onnx-from-torch/cpu"
ORT_OV = "onnxruntime/onnx-from-torch/openvino"

# Runs in the openvino environment (it has onnx): the classifier's weight, the last Gemm's or MatMul's
# initializer, times 1.05; every other byte of the model is unchanged.
PERTURB = textwrap.dedent("""
    import sys
    import onnx
    from onnx import numpy_helper
    path = sys.argv[1]
    model = onnx.load(path)
    inits = {i.name: i for i in model.graph.initializer}
    last = [n for n in model.graph.node if n.op_type in ("Gemm", "MatMul")][-1]
    name = next(x for x in last.input if x in inits and len(inits[x].dims) == 2)
    weight = numpy_helper.to_array(inits[name])
    inits[name].CopyFrom(numpy_helper.from_array(weight * 1.05, name))
    onnx.save(model, path)
    print(name, weight.shape)
""")


def _records(out: Path) -> dict[str, dict]:
    return {r["runtime"]: r for r in map(json.loads, (out / "runs.jsonl").read_text().splitlines())}


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """The sweep on the exported model, then the same sweep again after perturbing the cached artifact."""
    tmp = tmp_path_factory.mktemp("openvino")
    cache = tmp / "cache"
    cache.mkdir()
    (cache / "envs").symlink_to((paths.cache_dir() / "envs").resolve(), target_is_directory=True)
    config = write_config(tmp / "ov.toml", batch_sizes="[1]", runtimes=f'["{OV}", "{ORT_OV}"]')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GREENRT_CACHE", str(cache))
        first = greenrt("sweep", "--config", str(config), "--out", str(tmp / "exported"), "--powercap-root",
                        str(tmp / "none"))
        artifacts = sorted((cache / "artifacts").glob("torch-mobilenet_v2-*/model.onnx"))
        assert len(artifacts) == 1, artifacts
        python = greenrt("env", "python", "openvino").stdout.strip()
        perturbed = subprocess.run([python, "-c", PERTURB, str(artifacts[0])], capture_output=True, text=True,
                                   timeout=120)
        assert perturbed.returncode == 0, perturbed.stderr
        second = greenrt("sweep", "--config", str(config), "--out", str(tmp / "perturbed"), "--powercap-root",
                         str(tmp / "none"))
    return first, second, tmp


def test_both_openvino_runtimes_run_and_reproduce_pytorch(sweeps):
    first, _, tmp = sweeps
    assert first.returncode == 0, first.stdout + first.stderr
    runs = pl.read_parquet(tmp / "exported/tables/runs.parquet").sort("runtime")
    assert runs["runtime"].to_list() == [ORT_OV, OV]
    assert runs["status"].to_list() == ["ok", "ok"], runs.select("runtime", "failure_message").rows()
    assert (runs["latency_p50_ms"] > 0).all()
    assert runs["fidelity_faithful"].to_list() == [True, True]
    assert (runs["fidelity_max_abs_error"] < 1e-3).all() and runs["fidelity_top1_agreement"].to_list() == [1.0, 1.0]


def test_openvino_records_what_it_compiled_with(sweeps):
    _, _, tmp = sweeps
    record = _records(tmp / "exported")[OV]
    result = record["result"]
    facts = result["runtime_facts"]
    assert facts["compiled"]["inference_precision_hint"] == "f32" and facts["compiled"]["performance_hint"]
    assert facts["compiled"]["num_streams"] >= 1 and facts["compiled"]["inference_num_threads"] >= 1
    assert "inference_precision_hint" in facts["device_defaults"]
    # Conversion and compilation inside load, before the first inference and the window.
    assert facts["read_model_seconds"] + facts["compile_model_seconds"] <= result["load_seconds"]
    assert facts["compile_model_end_ns"] < result["first_inference_ns"] <= result["window_start_ns"]
    assert result["versions"]["openvino_package"] == "2026.4.1"


def test_onnxruntime_openvino_ep_records_its_node_placement(sweeps):
    _, _, tmp = sweeps
    result = _records(tmp / "exported")[ORT_OV]["result"]
    assert result["provider_used"] == "OpenVINOExecutionProvider"
    placement = result["node_placement"]
    assert placement["status"] == "ok" and placement["requested"] == "OpenVINOExecutionProvider"
    assert placement["by_provider"].get("OpenVINOExecutionProvider", 0) >= 1
    assert placement["cpu_fallback_nodes"] == placement["by_provider"].get("CPUExecutionProvider", 0)
    assert "fused node" in placement["note"]
    assert result["versions"]["onnxruntime_package"] == "onnxruntime-openvino==1.24.1"
    assert result["versions"]["onnxruntime_openvino_libraries"]


def test_a_perturbed_conversion_is_flagged_unfaithful(sweeps):
    _, second, tmp = sweeps
    assert second.returncode == 0, second.stdout + second.stderr
    runs = pl.read_parquet(tmp / "perturbed/tables/runs.parquet").sort("runtime")
    assert runs["status"].to_list() == ["ok", "ok"], runs.select("runtime", "failure_message").rows()
    assert runs["fidelity_faithful"].to_list() == [False, False]
    before = pl.read_parquet(tmp / "exported/tables/runs.parquet").sort("runtime")
    assert (runs["fidelity_max_abs_error"] > 10 * before["fidelity_max_abs_error"]).all()
    for record in _records(tmp / "perturbed").values():
        assert record["fidelity"]["faithful"] is False
        assert record["fidelity"]["max_abs_error"] > record["fidelity"]["outputs"][0]["tolerance"]


def test_bad_openvino_options_in_a_config_exit_2_naming_the_valid_choices_before_anything_is_written(tmp_path):
    config = write_config(tmp_path / "bad.toml", batch_sizes="[1]", runtimes=f'["{OV}", "{ORT_OV}"]')
    config.write_text(config.read_text() + f'[provider_options."{OV}"]\nperformance_hint = "FASTEST"\n'
                      f'[provider_options."{ORT_OV}"]\nprecision = "FP16"\n')
    out = tmp_path / "out"
    done = greenrt("sweep", "--config", str(config), "--out", str(out))
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2 and "performance_hint = 'FASTEST'" in lines[0] and "valid: LATENCY, THROUGHPUT" in lines[0]
    assert "precision = 'FP16'" in lines[1] and "valid: FP32, ACCURACY" in lines[1]
    assert not out.exists()
