"""The runner protocol: requests and results survive the trip through JSON files, and foreign files are refused."""
import json

import pytest

from runners.protocol import (SCHEMA_VERSION, Budget, ExportRequest, ProtocolError, RunError, RunRequest, RunResult,
                              UserModel, Weights, from_dict, read_json, to_dict, write_json_atomic)


def request(**change):
    base = dict(run_id="r000-x", runtime="onnxruntime/onnx-from-torch/cpu", model="bert-base-uncased", batch_size=64,
                result_path="/tmp/result.json", weights=Weights(kind="random", seed=3), input_seed=3,
                budget=Budget(warmup_iterations=2, warmup_seconds=1.5, min_iterations=7, min_seconds=2.0,
                              max_seconds=60.0),
                model_options={"seq_len": 32}, artifact_path="/cache/model.onnx", threads=2,
                provider_options={"trt_fp16_enable": False})
    return RunRequest(**{**base, **change})


def test_request_round_trips_through_a_file(tmp_path):
    original = request()
    write_json_atomic(tmp_path / "request.json", to_dict(original))
    again = read_json(RunRequest, tmp_path / "request.json")
    assert again == original
    assert (again.framework, again.model_format, again.provider) == ("onnxruntime", "onnx-from-torch", "cpu")
    assert isinstance(again.budget, Budget) and isinstance(again.weights, Weights)


def test_result_with_an_error_round_trips(tmp_path):
    result = RunResult(run_id="r", runtime="torch/native/cuda", model="resnet50", batch_size=1, status="error",
                       error=RunError(kind="unsupported", message="no CUDA device"))
    write_json_atomic(tmp_path / "result.json", to_dict(result))
    again = read_json(RunResult, tmp_path / "result.json")
    assert again == result and again.error.kind == "unsupported"


def test_unknown_fields_and_other_schema_versions_are_refused():
    data = to_dict(request())
    with pytest.raises(ProtocolError, match="unknown field\\(s\\) colour; valid: "):
        from_dict(RunRequest, {**data, "colour": "green"})
    with pytest.raises(ProtocolError, match=f"schema 99 is not the supported version {SCHEMA_VERSION}"):
        from_dict(RunRequest, {**data, "schema": 99})
    missing = dict(data)
    del missing["model"]
    with pytest.raises(ProtocolError, match="model"):
        from_dict(RunRequest, missing)


def test_weights_from_a_file_need_a_path():
    with pytest.raises(ProtocolError, match="needs weights.path"):
        Weights(kind="file")
    with pytest.raises(ProtocolError, match="must be 'random' or 'file'"):
        Weights(kind="hub")


def test_corrupt_and_missing_files_are_protocol_errors(tmp_path):
    (tmp_path / "half.json").write_text('{"run_id": "r", ')
    with pytest.raises(ProtocolError, match="not valid JSON"):
        read_json(RunResult, tmp_path / "half.json")
    with pytest.raises(ProtocolError, match="no such file"):
        read_json(ExportRequest, tmp_path / "absent.json")


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(TypeError):
        write_json_atomic(target, {"not serialisable": object()})
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    write_json_atomic(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}


# A user model's entry as orchestrator/planning/user_models.py made it before it was typed (an hf architecture with
# safetensors weights: every nested part), as configs, plan.json files and request files hold it.
HF_ENTRY = {"name": "tiny-bert", "format": "hf", "loader": "transformers AutoConfig + AutoModel.from_config",
            "path": "/data/models/config.json", "size": 412, "sha256": "ab" * 32,
            "declared": "the config's inputs (a transformers architecture declares none)",
            "hf": {"model_type": "bert", "config": {"model_type": "bert", "hidden_size": 32},
                   "weights": {"path": "/data/models/model.safetensors", "size": 9000, "sha256": "cd" * 32}},
            "inputs": [{"name": "input_ids", "shape": [16], "dtype": "int64", "range": [0, 100]}],
            "outputs": ["last_hidden_state"]}


def test_a_user_model_is_typed_and_writes_the_same_json(tmp_path):
    original = request(model="tiny-bert", runtime="torch/native/cpu", user_model=HF_ENTRY)
    assert isinstance(original.user_model, UserModel)
    assert original.user_model.hf.weights.path == "/data/models/model.safetensors"
    assert original.user_model.files() == ["/data/models/config.json", "/data/models/model.safetensors"]
    write_json_atomic(tmp_path / "request.json", to_dict(original))
    assert json.loads((tmp_path / "request.json").read_text())["user_model"] == HF_ENTRY
    assert read_json(RunRequest, tmp_path / "request.json") == original
    export = ExportRequest(framework="torch", model="tiny-bert", output_path="/o", result_path="/r",
                           user_model=HF_ENTRY)
    assert export.user_model == original.user_model and to_dict(export)["user_model"] == HF_ENTRY


def test_a_malformed_user_model_is_a_protocol_error():
    broken = {k: v for k, v in HF_ENTRY.items() if k != "inputs"}
    with pytest.raises(ProtocolError, match="user_model: not a user model entry"):
        from_dict(RunRequest, {**to_dict(request()), "user_model": broken})
