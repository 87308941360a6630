"""The Keras architectures: sizes, seeded random weights, weight files."""
from __future__ import annotations

import numpy as np
import pytest

import tf_helpers  # noqa: F401  (sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads)
from models.tensorflow_models import (PARAMETER_COUNTS, WeightsError, build_tensorflow_model, parameter_count)
from runners.loop import execute
from runners.protocol import Weights
from tf_helpers import make_request

IMAGES = np.random.default_rng(7).standard_normal((2, 224, 224, 3), dtype=np.float32)


@pytest.mark.parametrize("name, expected", [("resnet50", 25_636_712), ("mobilenet_v2", 3_538_984),
                                            ("bert-base-uncased", 109_482_240)])
def test_architectures_have_the_reference_parameter_counts(name, expected):
    model = build_tensorflow_model(name)
    assert parameter_count(model) == expected == PARAMETER_COUNTS[name]


def test_image_models_return_logits_for_1000_classes():
    import keras

    for name in ("resnet50", "mobilenet_v2"):
        model = build_tensorflow_model(name)
        assert model.input_shape == (None, 224, 224, 3)
        assert model.output_shape == (None, 1000)
        # logits, not probabilities: the last layer has no softmax and rows do not sum to 1
        assert model.layers[-1].activation in (None, keras.activations.linear)
        logits = model(IMAGES, training=False).numpy()
        assert not np.allclose(logits.sum(axis=1), 1.0, atol=1e-3) and (logits < 0).any()


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet50"])
def test_same_seed_gives_identical_weights_and_another_seed_does_not(name):
    a = build_tensorflow_model(name, weights=Weights(seed=3))
    b = build_tensorflow_model(name, weights=Weights(seed=3))
    c = build_tensorflow_model(name, weights=Weights(seed=4))
    wa, wb, wc = a.get_weights(), b.get_weights(), c.get_weights()
    assert len(wa) == len(wb) and all(np.array_equal(x, y) for x, y in zip(wa, wb))
    assert not all(np.array_equal(x, y) for x, y in zip(wa, wc))
    np.testing.assert_array_equal(a(IMAGES, training=False).numpy(), b(IMAGES, training=False).numpy())


def test_random_mobilenet_activations_do_not_vanish():
    """Keras' default init makes random MobileNetV2 logits ~1e-11, useless for fidelity checks; ours are unit-scale."""
    logits = build_tensorflow_model("mobilenet_v2")(IMAGES, training=False).numpy()
    assert np.isfinite(logits).all() and 0.1 < logits.std() < 100


def test_weights_file_round_trip(tmp_path):
    source = build_tensorflow_model("mobilenet_v2", weights=Weights(seed=11))
    path = tmp_path / "mnv2.weights.h5"
    source.save_weights(str(path))
    loaded = build_tensorflow_model("mobilenet_v2", weights=Weights(kind="file", path=str(path), seed=0))
    np.testing.assert_array_equal(loaded(IMAGES, training=False).numpy(), source(IMAGES, training=False).numpy())


def test_bad_weights_files_fail_with_one_clear_line(tmp_path):
    h5 = tmp_path / "mnv2.weights.h5"
    build_tensorflow_model("mobilenet_v2").save_weights(str(h5))
    other = tmp_path / "model.pt"
    other.write_bytes(b"not keras")
    cases = [(tmp_path / "missing.weights.h5", "does not exist"), (other, ".weights.h5"),
             (h5, "does not fit resnet50")]
    for path, words in cases:
        model = "resnet50" if "resnet50" in words else "mobilenet_v2"
        with pytest.raises(WeightsError) as info:
            build_tensorflow_model(model, weights=Weights(kind="file", path=str(path)))
        assert words in str(info.value) and "\n" not in str(info.value)
    # through the runner, a weights file that does not fit is a load failure, not a crash
    result = execute(make_request(tmp_path, model="resnet50", weights=Weights(kind="file", path=str(h5))))
    assert result.status == "error" and result.error.kind == "load" and "does not fit" in result.error.message
