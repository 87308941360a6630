"""Sweep configs: the shipped ones load, and every kind of mistake is refused with a message naming the fix."""
import pytest

from orchestrator import paths
from orchestrator.planning.config import load_config, parse_config
from orchestrator.errors import UserError

VALID = {"name": "t", "models": ["resnet50"], "batch_sizes": [1], "runtimes": ["torch/native/cpu"]}


@pytest.mark.parametrize("name", ["quick", "study"])
def test_shipped_configs_load(name):
    config = load_config(paths.PROJECT_ROOT / "configs" / f"{name}.toml")
    assert config.name == name
    assert set(config.models) == {"resnet50", "mobilenet_v2", "bert-base-uncased"}
    assert config.batch_sizes == [1, 64]
    assert config.options_for("bert-base-uncased") == {"seq_len": 128}


def test_study_config_is_the_papers_matrix():
    config = load_config(paths.PROJECT_ROOT / "configs/study.toml")
    assert config.repetitions == 10
    assert len(config.runtimes) == 9
    assert {r.split("/")[0] for r in config.runtimes} == {"torch", "tensorflow", "mxnet", "onnxruntime"}


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"models": ["resnet"]}, "unknown model 'resnet'; valid: resnet50, mobilenet_v2, bert-base-uncased"),
        ({"runtimes": ["torch/native/gpu"]}, "valid: torch/native/cpu, torch/native/cuda"),
        ({"batch_sizes": [0]}, "batch_sizes.0: Input should be greater than or equal to 1, not 0"),
        ({"batch_sizes": [1, 1]}, "batch_sizes: 1 is listed twice"),
        ({"precisions": ["int2"]}, "precisions.0: Input should be 'fp32', 'fp16', 'tf32', 'int8' or 'int4', not 'int2'"),
        ({"repetition": 3}, "repetition: unknown key; valid keys here: baseline, batch_sizes"),
        ({"measure": {"min_iters": 3}}, "measure.min_iters: unknown key; valid keys here: max_seconds, min_iterations, min_seconds"),
        ({"model_options": {"resnet50": {"seq_len": 64}}}, "model resnet50: unknown option(s) seq_len; valid: none"),
        ({"model_options": {"bert-base-uncased": {"seq_len": -1}}}, "option seq_len must be a positive integer"),
        ({"model_options": {"bert-base-uncased": {"seq_len": 600}}}, "option seq_len = 600 exceeds its limit 512"),
        ({"name": "../escape"}, "name: String should match pattern"),
        ({"environment": {"onnxruntime/onnx-from-torch/cpu": {"OMP_NUM_THREADS": "1"}}}, "is not in runtimes"),
        ({"provider_options": {"mxnet/native/cpu": {"backend": "MKLDNN"}}},
         "provider_options: runtime 'mxnet/native/cpu' is not in runtimes"),
    ],
)
def test_bad_config_is_refused_with_a_message_naming_the_valid_choices(change, expected):
    with pytest.raises(UserError) as error:
        parse_config({**VALID, **change}, source="x.toml")
    assert expected in str(error.value)
    assert str(error.value).startswith("x.toml: ")
    assert "\n" not in str(error.value)


def test_missing_required_key_is_named():
    data = dict(VALID)
    del data["runtimes"]
    with pytest.raises(UserError, match="runtimes: required key missing; valid: a list of runtimes"):
        parse_config(data)


def test_unreadable_toml_and_missing_file(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("name = [")
    with pytest.raises(UserError, match="not valid TOML"):
        load_config(broken)
    with pytest.raises(UserError, match="config file '.*absent.toml': no such file"):
        load_config(tmp_path / "absent.toml")


def test_digest_changes_with_what_is_measured_but_not_with_interpreters():
    base = parse_config(VALID)
    torch_python = str(paths.cache_dir() / "envs" / "torch" / "bin" / "python")  # one with torch, as checked
    assert parse_config({**VALID, "interpreters": {"torch": torch_python}}).digest() == base.digest()
    assert parse_config({**VALID, "prepare_timeout_seconds": 60}).digest() == base.digest()  # no run changes
    assert parse_config({**VALID, "batch_sizes": [1, 64]}).digest() != base.digest()
    assert parse_config({**VALID, "measure": {"min_iterations": 11}}).digest() != base.digest()


@pytest.mark.parametrize("value", ["inf", "nan", 0, -5])
def test_the_preparation_limit_is_a_positive_finite_number(value):
    with pytest.raises(UserError, match="prepare_timeout_seconds"):
        parse_config({**VALID, "prepare_timeout_seconds": float(value) if isinstance(value, str) else value})


def test_pretrained_weights_are_checked_and_given_to_their_framework(tmp_path):
    weights = tmp_path / "resnet50.safetensors"
    weights.write_bytes(b"not checked here: the framework loads it")
    config = parse_config({**VALID, "weights": {"torch": {"resnet50": str(weights)}}})
    given = config.weights_for("torch", "resnet50")
    assert given.kind == "file" and given.path == str(weights.resolve())
    assert config.weights_for("tensorflow", "resnet50").kind == "random"
    assert config.weights_for("torch", "mobilenet_v2").seed == config.seed
    with pytest.raises(UserError, match="weights.torch.resnet50 = .*: no such file"):
        parse_config({**VALID, "weights": {"torch": {"resnet50": str(tmp_path / "absent.pt")}}})
    with pytest.raises(UserError, match="weights.pytorch: unknown framework; valid: torch, tensorflow, mxnet"):
        parse_config({**VALID, "weights": {"pytorch": {"resnet50": str(weights)}}})
    with pytest.raises(UserError, match="unknown model 'resnet'"):
        parse_config({**VALID, "weights": {"torch": {"resnet": str(weights)}}})


@pytest.mark.parametrize("runtime, options, expected", [
    ("torch/inductor/cpu", {"mode": "reduce-overhead"},
     "provider_options.torch/inductor/cpu.mode = 'reduce-overhead': not accepted by torch/inductor/cpu; "
     "valid: default, max-autotune"),
    ("torch/inductor/cpu", {"fullgraph": True},
     "provider_options.torch/inductor/cpu.fullgraph = True: unknown provider option for torch/inductor/cpu; "
     "valid: mode, dynamic, cache_dir"),
    ("litert/tflite-from-tensorflow/cpu", {"num_threads": 4},
     "unknown provider option for litert/tflite-from-tensorflow/cpu; valid: none"),
    ("openvino/onnx-from-torch/cpu", {"performance_hint": "FAST"}, "valid: LATENCY, THROUGHPUT, CUMULATIVE_THROUGHPUT"),
])
def test_the_new_runtimes_options_are_checked_when_the_sweep_is_planned(runtime, options, expected):
    with pytest.raises(UserError) as error:
        parse_config({"name": "t", "models": ["mobilenet_v2"], "batch_sizes": [1], "runtimes": [runtime],
                      "provider_options": {runtime: options}}, source="x.toml")
    assert expected in str(error.value) and "\n" not in str(error.value), str(error.value)
