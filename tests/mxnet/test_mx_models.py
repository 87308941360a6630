"""The MXNet builders: architectures, seeded weights, local weights files."""
from __future__ import annotations

import mxnet as mx
import numpy as np
import pytest

from models.inputs import make_inputs
from models.mxnet_models import (PARAMETER_COUNTS, WeightsError, build_mxnet_model, parameter_count,
                                 parameters_numpy)
from models.registry import get_model
from runners.protocol import Weights


def _forward(block, name, batch=2, seed=0, options=None):
    spec = get_model(name)
    inputs = make_inputs(spec, batch, seed, options)
    outs = block(*(mx.nd.array(inputs[i.name], dtype=inputs[i.name].dtype) for i in spec.inputs))
    outs = outs if isinstance(outs, (tuple, list)) else (outs,)
    return {n: o.asnumpy() for n, o in zip(spec.outputs, outs)}


@pytest.mark.parametrize("name, trainable, with_running_stats", [
    ("resnet50", 25_575_912, 25_629_032),  # v1 with biases on the bottlenecks' 1x1 convolutions
    ("mobilenet_v2", 3_504_960, 3_539_136),
    ("bert-base-uncased", 109_482_240, 109_482_240),  # exactly transformers' BertModel(BertConfig())
])
def test_parameter_counts_and_registry_outputs(name, trainable, with_running_stats):
    options = {"seq_len": 16} if name == "bert-base-uncased" else None
    block = build_mxnet_model(name, options)
    assert parameter_count(block) == trainable == PARAMETER_COUNTS[name]
    assert parameter_count(block, trainable_only=False) == with_running_stats
    outputs = _forward(block, name, options=options)
    expected = {"logits": (2, 1000)} if name != "bert-base-uncased" else {
        "last_hidden_state": (2, 16, 768), "pooler_output": (2, 768)}
    assert {k: v.shape for k, v in outputs.items()} == expected
    for value in outputs.values():  # random weights that keep activations at a usable scale
        assert value.dtype == np.float32 and np.isfinite(value).all() and 1e-3 < value.std() < 1e4


def test_same_seed_same_weights_and_outputs_other_seed_other_weights():
    a, b = build_mxnet_model("mobilenet_v2"), build_mxnet_model("mobilenet_v2")
    c = build_mxnet_model("mobilenet_v2", weights=Weights(seed=1))
    pa, pb, pc = parameters_numpy(a), parameters_numpy(b), parameters_numpy(c)
    assert pa.keys() == pb.keys() == pc.keys()
    assert all(np.array_equal(pa[k], pb[k]) for k in pa)
    assert not np.array_equal(pa["net.features.0.weight"], pc["net.features.0.weight"])
    mx.random.seed(123)  # drawing from the generator in between does not matter: the builder reseeds
    np.testing.assert_array_equal(_forward(a, "mobilenet_v2")["logits"],
                                  _forward(build_mxnet_model("mobilenet_v2"), "mobilenet_v2")["logits"])


def test_bert_honours_the_attention_mask():
    options = {"seq_len": 12}
    block = build_mxnet_model("bert-base-uncased", options)
    spec = get_model("bert-base-uncased")
    inputs = make_inputs(spec, 2, 0, options)
    masked = {k: v.copy() for k, v in inputs.items()}
    masked["attention_mask"][1, 8:] = 0  # second sequence: 8 valid tokens

    def run(feed):
        seq, pooled = block(*(mx.nd.array(feed[i.name], dtype="int64") for i in spec.inputs))
        return seq.asnumpy(), pooled.asnumpy()

    full_seq, full_pooled = run(inputs)
    seq, pooled = run(masked)
    np.testing.assert_allclose(seq[0], full_seq[0], atol=1e-5)  # the first row is unchanged
    assert not np.allclose(pooled[1], full_pooled[1], atol=1e-3)  # the padding is no longer attended to
    assert np.all(seq[1, 8:] == 0) and np.abs(seq[1, :8]).min() > 0


def test_weights_file_round_trip_and_clear_errors(tmp_path):
    source = build_mxnet_model("mobilenet_v2", weights=Weights(seed=7))
    path = tmp_path / "mobilenet.params"
    source.save_parameters(str(path))
    loaded = build_mxnet_model("mobilenet_v2", weights=Weights(kind="file", path=str(path)))
    np.testing.assert_array_equal(_forward(loaded, "mobilenet_v2")["logits"], _forward(source, "mobilenet_v2")["logits"])

    with pytest.raises(WeightsError, match="does not fit") as wrong:  # a MobileNet file for a ResNet
        build_mxnet_model("resnet50", weights=Weights(kind="file", path=str(path)))
    assert "\n" not in str(wrong.value)
    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(WeightsError, match=r"unknown format \.pkl; use an MXNet \.params file"):
        build_mxnet_model("mobilenet_v2", weights=Weights(kind="file", path=str(pickled)))
    with pytest.raises(WeightsError, match="does not exist"):
        build_mxnet_model("mobilenet_v2", weights=Weights(kind="file", path=str(tmp_path / "missing.params")))
