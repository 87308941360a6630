"""Every bad user model input through the CLI: one line naming what is wrong and the valid choices, exit 2, and no
results folder written (point 3 of issue 14)."""
from __future__ import annotations

import numpy as np
import pytest

from testkit.sweep_helpers import greenrt
from testkit.onnx_models import onnx_helper_model

pytestmark = pytest.mark.process

HEAD = 'name = "bad"\nbatch_sizes = [1]\nruntimes = ["onnxruntime/onnx/cpu"]\n'


def refused(tmp_path, body: str, head: str = HEAD) -> str:
    config = tmp_path / "c.toml"
    config.write_text(head + body)
    out = tmp_path / "results"
    done = greenrt("sweep", "--config", str(config), "--out", str(out), "--powercap-root", str(tmp_path / "none"))
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert not out.exists()
    return lines[0]


@pytest.fixture()
def tiny(tmp_path):
    return onnx_helper_model(tmp_path / "tiny.onnx")


def test_a_missing_file(tmp_path):
    line = refused(tmp_path, f'models = ["m"]\n[user_models.m]\nonnx = "{tmp_path}/absent.onnx"\n')
    assert "user_models.m.onnx" in line and "no such file" in line and "valid: a readable .onnx file" in line


def test_a_folder_given_as_the_file(tmp_path):
    # (An unreadable file is refused the same way; as root, which this suite runs as, every file is readable.)
    (tmp_path / "folder.onnx").mkdir()
    line = refused(tmp_path, f'models = ["m"]\n[user_models.m]\nonnx = "{tmp_path}/folder.onnx"\n')
    assert "user_models.m.onnx" in line and "not a file" in line


def test_an_unknown_format(tmp_path, tiny):
    line = refused(tmp_path, f'models = ["m"]\n[user_models.m]\ntflite = "{tiny}"\n')
    assert "user_models.m.tflite: unknown key" in line and "formats: onnx, torch, keras, hf" in line


def test_two_formats_at_once(tmp_path, tiny):
    line = refused(tmp_path, f'models = ["m"]\n[user_models.m]\nonnx = "{tiny}"\nkeras = "{tiny}"\n')
    assert "gives onnx and keras" in line and "exactly one of onnx, torch, keras, hf" in line


def test_a_name_that_shadows_a_built_in(tmp_path, tiny):
    line = refused(tmp_path, f'models = ["resnet50"]\n[user_models.resnet50]\nonnx = "{tiny}"\n')
    assert "'resnet50' is a built-in model's name" in line and "valid: another name" in line


@pytest.mark.parametrize("spec, expected", [
    ('{name = "z", shape = ["batch", 8], dtype = "float32"}', "the model has no such input; valid: x"),
    ('{name = "x", shape = ["batch", 8, 1], dtype = "float32"}', "rank 3, but the model's input x has rank 2"),
    ('{name = "x", shape = ["batch", 8], dtype = "int64"}', "the model's input x is float32; valid: 'float32'"),
    ('{name = "x", shape = ["batch", 9], dtype = "float32"}', "dimension 1 is fixed at 8"),
    ('{name = "x", shape = [1, 8], dtype = "float32"}', 'the first dimension must be "batch"'),
])
def test_inputs_that_do_not_match_the_model(tmp_path, tiny, spec, expected):
    line = refused(tmp_path, f'models = ["m"]\n[user_models.m]\nonnx = "{tiny}"\ninputs = [{spec}]\n')
    assert line.count("user_models.m.inputs[0]") == 1 and expected in line, line


def test_a_symbolic_dimension_without_a_value(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "seq"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "seq"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(tmp_path / "seq.onnx"))
    line = refused(tmp_path, f'models = ["m"]\n[user_models.m]\nonnx = "{tmp_path}/seq.onnx"\n')
    assert "dimension 1 symbolic ('seq')" in line and "give its value in inputs" in line


def test_outputs_the_onnx_file_does_not_have(tmp_path, tiny):
    line = refused(tmp_path, f'models = ["m"]\n[user_models.m]\nonnx = "{tiny}"\noutputs = ["logits"]\n')
    assert "user_models.m.outputs: the model has no output logits; valid: the graph's outputs (y)" in line


# An hf model is built in the torch environment: its transformers (the venv `make test` builds) is asked.
HF_HEAD = 'name = "bad"\nbatch_sizes = [1]\nruntimes = ["torch/native/cpu"]\nmodels = ["m"]\n'
HF_INPUTS = 'inputs = [{name = "input_ids", shape = ["batch", 8], dtype = "int64", range = [0, 100]}]\n'


@pytest.mark.parametrize("body, expected", [
    ('hf = {model_type = "bertt"}\n', "user_models.m.hf.model_type = 'bertt': transformers "),
    ('hf = {model_type = "encoder-decoder"}\n', "has no base model class (AutoModel) for it, which greenrt builds"),
    ('hf = {model_type = "bert"}\noutputs = ["logits"]\n',
     "user_models.m.outputs = ['logits']: BertModel returns no logits; valid: last_hidden_state, pooler_output"),
])
def test_hf_models_transformers_cannot_build_as_declared(tmp_path, body, expected):
    line = refused(tmp_path, f"[user_models.m]\n{body}{HF_INPUTS}", head=HF_HEAD)
    assert expected in line, line
    if "bertt" in body:  # the closest types it knows, first of all bert
        assert "knows no such model type; valid: bert, " in line


def test_greenrt_run_with_a_file_of_unknown_format(tmp_path):
    (tmp_path / "model.bin").write_bytes(np.zeros(4).tobytes())
    out = tmp_path / "results"
    done = greenrt("run", "--model", str(tmp_path / "model.bin"), "--out", str(out))
    assert done.returncode == 2 and not out.exists()
    assert "unknown model file format '.bin'; valid: .onnx, .pt2, .keras" in done.stderr
