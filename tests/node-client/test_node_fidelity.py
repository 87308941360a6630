"""The Node.js runner's inputs are the Python runner's to the bit, and its outputs those of the Python client of
the same ONNX Runtime (1.31.1) on the same ONNX file; its threads are the request's."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import ROOT, node_binary, node_env, node_request, run_node, runner_command, write_request
from onnx import TensorProto, helper

from models.inputs import make_inputs
from models.registry import get_model
from runners.loop import output_digest
from runners.protocol import Budget

pytestmark = pytest.mark.timeout(300)


def python_outputs(artifact: Path, inputs: dict[str, np.ndarray], threads: int = 1) -> dict[str, np.ndarray]:
    """The Python client's outputs: onnxruntime 1.31.1 with the session options of the Python ORT adapter."""
    import onnxruntime as ort

    assert ort.__version__ == "1.31.1"
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    session = ort.InferenceSession(str(artifact), sess_options=so, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs)))


def identity_model(path: Path, inputs: dict[str, np.ndarray]) -> Path:
    """Each input passed through unchanged (Identity), so that the runner's outputs are the inputs it read."""
    types = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64}
    graph = helper.make_graph(
        [helper.make_node("Identity", [name], [f"{name}_out"]) for name in inputs], "identity",
        [helper.make_tensor_value_info(n, types[a.dtype], list(a.shape)) for n, a in inputs.items()],
        [helper.make_tensor_value_info(f"{n}_out", types[a.dtype], list(a.shape)) for n, a in inputs.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("model, options", [("mobilenet_v2", {}), ("bert-base-uncased", {"seq_len": 16})])
def test_the_node_runner_feeds_the_python_runners_inputs_to_the_bit(tmp_path, model, options):
    spec = get_model(model)
    inputs = make_inputs(spec, 2, 3, spec.resolve_options(options))
    artifact = identity_model(tmp_path / "identity.onnx", inputs)
    request = node_request(tmp_path, artifact, model=model, batch_size=2, input_seed=3, model_options=options,
                           outputs_path=str(tmp_path / "outputs.npz"))
    answer = run_node(tmp_path, request)
    assert answer.returncode == 0, answer.result
    saved = np.load(tmp_path / "outputs.npz")
    for name, array in inputs.items():
        assert saved[f"{name}_out"].dtype == array.dtype
        assert saved[f"{name}_out"].tobytes() == array.tobytes()


@pytest.mark.parametrize("model, options, fixture", [("mobilenet_v2", {}, "conv_onnx"),
                                                     ("bert-base-uncased", {"seq_len": 32}, "token_onnx")])
def test_outputs_and_digest_match_the_python_client_of_the_same_onnxruntime(tmp_path, request, model, options,
                                                                            fixture):
    artifact = request.getfixturevalue(fixture)
    run = node_request(tmp_path, artifact, model=model, batch_size=4, model_options=options, threads=1,
                       outputs_path=str(tmp_path / "outputs.npz"))
    answer = run_node(tmp_path, run)
    assert answer.returncode == 0, answer.result
    spec = get_model(model)
    expected = python_outputs(artifact, make_inputs(spec, 4, 0, spec.resolve_options(options)))
    saved = np.load(tmp_path / "outputs.npz")
    assert sorted(saved.files) == sorted(expected)
    for name, array in expected.items():
        assert saved[name].dtype == array.dtype and saved[name].shape == array.shape
        np.testing.assert_array_equal(saved[name], array)  # the same library on the same bytes: identical
    # The digest as runners/loop.py computes it, to the bit (sha256 and numpy's float64 mean and std).
    assert answer.result["output_digest"] == json.loads(json.dumps(output_digest(expected)))


def _threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def _threads_in_window(tmp_path: Path, artifact: Path, threads: int) -> int:
    folder = tmp_path / f"threads-{threads}"
    folder.mkdir()
    request = node_request(folder, artifact, threads=threads,
                           budget=Budget(warmup_iterations=1, min_iterations=1, min_seconds=3))
    proc = subprocess.Popen(runner_command(write_request(folder, request)), env=node_env(), stderr=subprocess.PIPE,
                            text=True)
    try:
        assert "loaded " in proc.stderr.readline()
        time.sleep(1.0)
        return _threads_of(proc.pid)
    finally:
        proc.wait(timeout=60)
        assert json.loads((folder / "result.json").read_text())["threads"] == threads


def test_threads_are_the_requests_intra_op_threads(tmp_path, conv_onnx):
    """ORT's intra-op pool holds threads - 1 threads of its own (the caller is the other): 3 threads make 2 more."""
    assert _threads_in_window(tmp_path, conv_onnx, 3) - _threads_in_window(tmp_path, conv_onnx, 1) == 2


def _node_eval(expression: str):
    script = f"const m = require({json.dumps(str(ROOT / 'runners/node/session-options.js'))}); " \
             f"try {{ console.log(JSON.stringify({expression})); }} " \
             f"catch (e) {{ console.log(JSON.stringify({{kind: e.kind, message: e.message}})); }}"
    done = subprocess.run([node_binary(), "-e", script], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_session_options_map_threads_and_session_entries_as_the_python_adapter_does():
    from runners.adapters.onnxruntime_session import session_config_entries

    provider_options = {"session.intra_op.allow_spinning": False, "session.set_denormal_as_zero": 1}
    options = _node_eval(f"m.sessionOptions({{threads: 2, provider_options: {json.dumps(provider_options)}}})")
    assert options == {"executionProviders": ["cpu"], "graphOptimizationLevel": "all", "intraOpNumThreads": 2,
                       "extra": session_config_entries(provider_options)}
    assert _node_eval("m.sessionOptions({threads: null, provider_options: {}})") == {
        "executionProviders": ["cpu"], "graphOptimizationLevel": "all"}
    refused = _node_eval("m.sessionOptions({threads: null, provider_options: {arena: 1}})")
    assert refused["kind"] == "unsupported" and "session." in refused["message"]


def _unary_model(path: Path, ops: list[tuple[str, dict]], out_type: int) -> Path:
    """pixel_values through a chain of one-input ops (e.g. a Cast to float16), its result as `out`."""
    names = ["pixel_values"] + [f"t{i}" for i in range(len(ops) - 1)] + ["out"]
    nodes = [helper.make_node(op, [names[i]], [names[i + 1]], **attrs) for i, (op, attrs) in enumerate(ops)]
    graph = helper.make_graph(nodes, "unary", [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT,
                                                                            ["batch", 3, 224, 224])],
                              [helper.make_tensor_value_info("out", out_type, ["batch", 3, 224, 224])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_float16_outputs_are_saved_and_digested_as_the_python_client_does(tmp_path):
    artifact = _unary_model(tmp_path / "half.onnx", [("Cast", {"to": TensorProto.FLOAT16})],
                            TensorProto.FLOAT16)
    answer = run_node(tmp_path, node_request(tmp_path, artifact, batch_size=1, outputs_path=str(tmp_path / "o.npz")))
    assert answer.returncode == 0, answer.result
    expected = python_outputs(artifact, make_inputs(get_model("mobilenet_v2"), 1, 0))
    saved = np.load(tmp_path / "o.npz")
    assert saved["out"].dtype == np.float16 and saved["out"].tobytes() == expected["out"].tobytes()
    assert answer.result["output_digest"] == json.loads(json.dumps(output_digest(expected)))


def test_non_finite_outputs_are_an_output_failure_with_the_digest_kept(tmp_path):
    artifact = _unary_model(tmp_path / "log.onnx", [("Log", {})], TensorProto.FLOAT)  # log of negatives: NaN
    answer = run_node(tmp_path, node_request(tmp_path, artifact, batch_size=1, outputs_path=str(tmp_path / "o.npz")))
    assert answer.returncode == 1 and answer.result["error"]["kind"] == "output"
    assert "NaN" in answer.result["error"]["message"] and not (tmp_path / "o.npz").exists()
    expected = python_outputs(artifact, make_inputs(get_model("mobilenet_v2"), 1, 0))
    assert answer.result["output_digest"] == json.loads(json.dumps(output_digest(expected)))
