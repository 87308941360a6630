"""Runtime ids with a client suffix in planning (issue 25): what parse_runtime accepts and refuses, the client's
environment, its precisions as skip reasons, the artifact and reference it shares with its Python client, and the
request each client's runner is given (unit tier)."""
from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import UserError
from orchestrator.execution.preparation import build_request, run_mounts
from orchestrator.planning.config import parse_config
from orchestrator.planning.planner import Cell, HostCapabilities, PlannedRun, plan_sweep
from orchestrator.planning.runtimes import UnknownRuntimeError, client_runtime_names, parse_runtime

ORT = "onnxruntime/onnx-from-torch/cpu"
NODE, ORT_PYTHON = f"{ORT}@node", f"{ORT}@python"
TORCHSCRIPT, AOTI = "torch/torchscript/cpu", "torch/aoti/cpu"
CPP = f"{TORCHSCRIPT}@cpp"


def test_a_suffix_names_the_client_and_keeps_the_base_runtime():
    node = parse_runtime(NODE)
    assert (node.framework, node.model_format, node.provider, node.client) == ("onnxruntime", "onnx-from-torch",
                                                                               "cpu", "node")
    assert node.name == NODE and node.base_name == ORT and not node.python_client
    assert parse_runtime(ORT_PYTHON).python_client and parse_runtime(ORT).python_client
    assert parse_runtime(ORT).client is None and parse_runtime(ORT).name == ORT  # old ids read as before


@pytest.mark.parametrize("name, environment", [(NODE, "onnxruntime-node"), (ORT_PYTHON, "onnxruntime-node"),
                                               (ORT, "onnxruntime"), (CPP, "torch"), (f"{AOTI}@cpp", "torch"),
                                               (TORCHSCRIPT, "torch")])
def test_the_environment_is_the_clients(name, environment):
    assert parse_runtime(name).environment == environment


@pytest.mark.parametrize("name, words", [
    ("torch/native/cpu@node", "torch/native/cpu has no client other than Python (no @suffix); clients exist for:"),
    (f"{ORT}@cpp", f"{ORT} has no client 'cpp'; valid: @node, @python"),
    ("onnxruntime/onnx-from-torch/cuda@node", "has no client other than Python"),
    (f"{TORCHSCRIPT}@rust", f"{TORCHSCRIPT} has no client 'rust'; valid: @cpp"),
    ("onnxruntime/onnx-from-torch/cpux@node", "unknown runtime 'onnxruntime/onnx-from-torch/cpux@node'; valid: "),
])
def test_a_suffix_that_names_no_client_of_the_base_is_refused_with_the_valid_ones(name, words):
    with pytest.raises(UnknownRuntimeError) as caught:
        parse_runtime(name)
    assert words in str(caught.value)


def test_an_unknown_runtime_lists_the_client_ids_too():
    with pytest.raises(UnknownRuntimeError) as caught:
        parse_runtime("onnxruntime/nope/cpu")
    assert "with a client: " in str(caught.value) and NODE in str(caught.value) and CPP in str(caught.value)
    assert {NODE, ORT_PYTHON, CPP, f"{AOTI}@cpp"} <= set(client_runtime_names())


def test_a_config_naming_a_wrong_client_is_one_line_with_the_valid_ones():
    with pytest.raises(UserError) as caught:
        parse_config({"name": "c", "models": ["mobilenet_v2"], "batch_sizes": [1], "runtimes": [f"{ORT}@cpp"]},
                     source="c.toml")
    lines = str(caught.value).splitlines()
    assert len(lines) == 1 and "runtimes: runtime 'onnxruntime/onnx-from-torch/cpu@cpp'" in lines[0]
    assert "valid: @node, @python" in lines[0]


def test_clients_share_the_artifact_and_the_reference_of_their_python_client():
    for names in ((ORT, ORT_PYTHON, NODE), (TORCHSCRIPT, CPP), (AOTI, f"{AOTI}@cpp")):
        runtimes = [parse_runtime(n) for n in names]
        # The artifact cache's key and folder are (source framework, target format, model): one file for all.
        assert len({(r.source_framework, r.target_format, r.model_format) for r in runtimes}) == 1, names
        assert {r.reference_runtime for r in runtimes} == {"torch/native/cpu"}, names
        assert all(r.not_implemented_reason() is None for r in runtimes), names
    assert (parse_runtime(CPP).source_framework, parse_runtime(CPP).target_format) == ("torch", "torchscript")
    assert parse_runtime(f"{AOTI}@cpp").target_format == "aoti"


def _plan(runtimes, precisions=("fp32", "int8"), **extra):
    config = parse_config({"name": "clients", "models": ["mobilenet_v2"], "batch_sizes": [1], "runtimes": runtimes,
                           "precisions": list(precisions), **extra})
    plan = plan_sweep(config, HostCapabilities(cpu_flags=("avx2",)))
    return config, plan, {(s.cell.runtime, s.cell.precision): s.reason for s in plan.skipped}


def test_a_clients_precisions_give_skip_reasons_like_any_runtimes():
    _, plan, skipped = _plan([ORT, NODE, ORT_PYTHON, CPP])
    planned = {(r.cell.runtime, r.cell.precision) for r in plan.runs}
    assert planned == {(ORT, "fp32"), (ORT, "int8"), (NODE, "fp32"), (ORT_PYTHON, "fp32"), (CPP, "fp32")}
    assert skipped[(NODE, "int8")] == f"the Node.js client ({NODE}) measures fp32 only; int8 is measured by {ORT}"
    assert skipped[(ORT_PYTHON, "int8")].startswith(f"the Python client ({ORT_PYTHON}) measures fp32 only")
    assert "precision 'int8' is not one of fp32" in skipped[(CPP, "int8")]  # the torchscript family's own refusal


def test_the_run_id_and_cell_keep_the_suffix():
    _, plan, _ = _plan([NODE], precisions=("fp32",))
    (run,) = plan.runs
    assert run.cell.runtime == NODE and run.run_id == "r000-mobilenet_v2-bs1-onnxruntime_onnx-from-torch_cpu_node-fp32"


def _request(runtime: str, tmp_path: Path, inputs: Path | None = None):
    config, _, _ = _plan([runtime], precisions=("fp32",), threads=1)
    run = PlannedRun("r", 0, 0, Cell("mobilenet_v2", 1, runtime, "fp32"))
    return build_request(config, run, tmp_path / "run", None, inputs_path=inputs)


def test_a_runner_in_another_language_is_named_by_the_suffixed_id_and_reads_the_inputs_file(tmp_path):
    inputs = tmp_path / "inputs" / "inputs.json"
    for runtime in (NODE, CPP):
        request = _request(runtime, tmp_path, inputs)
        assert request.runtime == runtime and request.inputs_path == str(inputs)
        assert request.outputs_path == str(tmp_path / "run" / "outputs.npz")  # compared with its reference
        assert request.threads == 1
        assert inputs.parent in run_mounts(request)["readonly"]  # a container reads it too


def test_the_python_runner_is_named_by_the_base_id(tmp_path):
    # `python -m runners` knows framework/format/provider; @python only chose the environment it runs in.
    request = _request(ORT_PYTHON, tmp_path)
    assert request.runtime == ORT and request.inputs_path is None


def test_provider_options_for_a_saved_torch_model_are_refused_when_the_config_is_read():
    # Both of its runners (runners/adapters/torch_artifact.py, runners/cpp/) refuse every provider option.
    with pytest.raises(UserError) as caught:
        parse_config({"name": "c", "models": ["mobilenet_v2"], "batch_sizes": [1], "runtimes": [CPP],
                      "provider_options": {CPP: {"mode": "default"}}}, source="c.toml")
    assert f"provider_options.{CPP}.mode = 'default': unknown provider option for {TORCHSCRIPT}; valid: none" \
        in str(caught.value)
