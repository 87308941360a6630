"""TensorFlow/Keras builders for the models of the registry (imported only inside a tensorflow environment).

The architectures come from Keras Applications and Keras-Hub, built offline with random weights:

- resnet50: `keras.applications.ResNet50(weights=None, classifier_activation=None)`, 224x224x3, 1000 classes,
  25,636,712 parameters.  NOTE: this is ResNet-50 **v1**: in a downsampling bottleneck the stride sits on the
  first 1x1 convolution, whereas the torch model (transformers, like torchvision) is v1.5 with the stride on the
  3x3 convolution.  Same parameter count, same output sizes, ~10% fewer FLOPs at the strided blocks; the two
  frameworks' ResNet-50 numbers are therefore close relatives, not the identical graph.
- mobilenet_v2: `keras.applications.MobileNetV2(weights=None, alpha=1.0, classifier_activation=None)`,
  224x224x3, 1000 classes, 3,538,984 parameters.  Keras' default random initialisation (Glorot-uniform, which for
  a depthwise kernel counts every channel in its fan-in) shrinks the activations ~10x per block: random logits come
  out near 1e-11, which makes fidelity checks meaningless.  Random weights are therefore re-drawn variance-preserving
  (He-normal over the true fan-in, N(0, 0.01) classifier), as the torch builder does; see `_unit_scale_init`.
- bert-base-uncased: `keras_hub.models.BertBackbone` with the BERT-base configuration (vocabulary 30522, 12 layers,
  12 heads, hidden 768, intermediate 3072, 512 positions), with its pooler, 109,482,240 parameters (the same as
  transformers' BertModel).  Its inputs are named token_ids / segment_ids / padding_mask and its outputs
  sequence_output / pooled_output; `serving_function` maps them onto the registry's names.  NOTE: Keras-Hub's BERT
  uses the tanh approximation of GELU (transformers' BertModel the exact erf form), so its graph has Tanh/Pow where
  the torch graph has Erf; it also keeps layer normalisation as elementwise ops.

Every output is raw: classifier LOGITS (no softmax), BERT's hidden states and pooler output.  The Keras image
models take NHWC images; `serving_function` declares the layout it is traced for (the native adapter transposes
NCHW inputs to NHWC before the window; the ONNX exporter makes tf2onnx transpose at the graph input instead).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from models.registry import ModelSpec, get_model
from runners.protocol import Weights

# Parameter counts of the three architectures (checked by the tests).
PARAMETER_COUNTS = {"resnet50": 25_636_712, "mobilenet_v2": 3_538_984, "bert-base-uncased": 109_482_240}

BERT_BASE = dict(vocabulary_size=30522, num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072,
                 max_sequence_length=512)

# Registry input name -> Keras-Hub BertBackbone input name, and BertBackbone output -> registry output name.
BERT_INPUTS = {"input_ids": "token_ids", "attention_mask": "padding_mask", "token_type_ids": "segment_ids"}
BERT_OUTPUTS = {"last_hidden_state": "sequence_output", "pooler_output": "pooled_output"}

WEIGHTS_SUFFIX = ".weights.h5"


class WeightsError(ValueError):
    """A weights file that is missing, of an unknown format, or does not fit the architecture."""


def _image_size(spec: ModelSpec) -> tuple[int, int, int]:
    """(H, W, C) of the registry's NCHW image input."""
    c, h, w = spec.inputs[0].shape
    return int(h), int(w), int(c)


def _resnet50(spec: ModelSpec, options: dict[str, Any]):
    import keras

    return keras.applications.ResNet50(weights=None, include_top=True, classes=spec.num_classes,
                                       input_shape=_image_size(spec), classifier_activation=None)


def _mobilenet_v2(spec: ModelSpec, options: dict[str, Any]):
    import keras

    return keras.applications.MobileNetV2(weights=None, alpha=1.0, include_top=True, classes=spec.num_classes,
                                          input_shape=_image_size(spec), classifier_activation=None)


def _bert(spec: ModelSpec, options: dict[str, Any]):
    import keras_hub

    if options["seq_len"] > BERT_BASE["max_sequence_length"]:
        raise ValueError(f"seq_len {options['seq_len']} exceeds BERT's {BERT_BASE['max_sequence_length']} positions")
    return keras_hub.models.BertBackbone(**BERT_BASE)


def _unit_scale_init(model, seed: int) -> None:
    """Variance-preserving random weights, drawn from numpy with `seed` in layer order (deterministic).

    Conv2D: He-normal over kh*kw*c_in; DepthwiseConv2D: He-normal over kh*kw (its true fan-in; Keras' Glorot counts
    the channels too and makes the activations vanish); Dense: N(0, 0.01); biases 0; BatchNormalization: gamma 1,
    beta 0, moving mean 0, moving variance 1.
    """
    import keras

    rng = np.random.default_rng([seed, 0x6D6E7632])
    for layer in model._flatten_layers(include_self=False, recursive=True):  # every layer, in build order
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kernel = layer.kernel  # Keras 3: (kh, kw, channels, depth_multiplier)
            kh, kw = kernel.shape[0], kernel.shape[1]
            kernel.assign(rng.normal(0.0, np.sqrt(2.0 / (kh * kw)), kernel.shape).astype("float32"))
        elif isinstance(layer, keras.layers.Conv2D):
            kernel = layer.kernel
            fan_in = int(np.prod(kernel.shape[:3]))
            kernel.assign(rng.normal(0.0, np.sqrt(2.0 / fan_in), kernel.shape).astype("float32"))
        elif isinstance(layer, keras.layers.Dense):
            layer.kernel.assign(rng.normal(0.0, 0.01, layer.kernel.shape).astype("float32"))
        elif isinstance(layer, keras.layers.BatchNormalization):
            for var, value in ((layer.gamma, 1.0), (layer.beta, 0.0), (layer.moving_mean, 0.0),
                               (layer.moving_variance, 1.0)):
                if var is not None:
                    var.assign(np.full(var.shape, value, dtype="float32"))
        else:
            continue
        bias = getattr(layer, "bias", None)
        if bias is not None:
            bias.assign(np.zeros(bias.shape, dtype="float32"))


_BUILDERS = {"resnet50": _resnet50, "mobilenet_v2": _mobilenet_v2, "bert-base-uncased": _bert}


def _load_weights_file(model, name: str, path: str) -> None:
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"weights file {p} does not exist")
    if not p.name.endswith(WEIGHTS_SUFFIX):
        raise WeightsError(f"weights file {p}: unknown format; use a Keras {WEIGHTS_SUFFIX} file "
                           f"(model.save_weights)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(str(p))
        except Exception as exc:  # layer/shape mismatch, corrupt HDF5, ...
            first = " ".join(str(exc).split())[:300]
            raise WeightsError(f"weights file {p} does not fit {name}: {type(exc).__name__}: {first}") from exc
    # Keras only WARNS when parts of the model are not in the file and keeps their random weights: refuse that.
    skipped = [str(w.message) for w in caught if "retain their freshly-initialized" in str(w.message)]
    if skipped:
        first = " ".join(skipped[0].split())[:200]
        raise WeightsError(f"weights file {p} does not fit {name}: {len(skipped)} part(s) of the model are not in "
                           f"the file and would keep random weights (e.g. {first})")


def build_tensorflow_model(name: str, options: dict[str, Any] | None = None, weights: Weights | None = None):
    """The Keras model `name` of the registry, with seeded random weights or a local `.weights.h5` file.

    Random weights are deterministic: `keras.utils.set_random_seed(weights.seed)` before building (and the seeded
    numpy re-draw of `_unit_scale_init` where it applies), so the same seed gives identical weights.  The model is
    built under the caller's device scope and global dtype policy.
    """
    import keras

    spec = get_model(name)
    if spec.user is not None:  # a user's Keras 3 file
        from models.user_keras import load_user_keras_model

        return load_user_keras_model(spec)
    options = spec.resolve_options(options)
    weights = weights or Weights()
    keras.utils.set_random_seed(weights.seed)
    model = _BUILDERS[spec.name](spec, options)
    if spec.name == "mobilenet_v2" and weights.kind == "random":
        _unit_scale_init(model, weights.seed)
    if weights.kind == "file":
        _load_weights_file(model, spec.name, weights.path)
    model.trainable = False
    return model


def parameter_count(model) -> int:
    return int(model.count_params())


def input_signature(spec: ModelSpec, batch_size: int | None, options: dict[str, Any], layout: str = "NHWC",
                    ids_dtype: str = "int32") -> list:
    """tf.TensorSpec per registry input, in the registry's order and with its names.

    Images: float32 in `layout` ("NHWC" for the Keras model, "NCHW" as the registry makes them).  Token inputs:
    `ids_dtype` (the Keras-Hub model's own int32, or the registry's int64, cast inside the function).
    """
    import tensorflow as tf

    out = []
    for inp in spec.inputs:
        shape = spec.input_shape(inp, 1, options)[1:]
        if inp.kind == "image":
            if layout == "NHWC":
                shape = (shape[1], shape[2], shape[0])
            elif layout != "NCHW":
                raise ValueError(f"layout must be NHWC or NCHW, not {layout!r}")
            out.append(tf.TensorSpec((batch_size, *shape), tf.float32, name=inp.name))
        elif inp.kind == "user":  # a user model's input, in the dtype it declares
            out.append(tf.TensorSpec((batch_size, *shape), tf.as_dtype(inp.dtype), name=inp.name))
        else:
            out.append(tf.TensorSpec((batch_size, *shape), tf.as_dtype(ids_dtype), name=inp.name))
    return out


def serving_function(model, spec: ModelSpec) -> Callable[..., dict]:
    """A plain Python function of the registry's input names returning {registry output name: tensor}.

    Images take NHWC float32 `pixel_values`; BERT takes input_ids / attention_mask / token_type_ids of any integer
    type (cast to the int32 the Keras-Hub model declares).  Inference mode (training=False): dropout off, batch
    normalisation on its moving statistics.  Wrap it in tf.function with an input_signature.
    """
    import tensorflow as tf

    if spec.user is not None:
        from models.user_keras import user_serving_function

        return user_serving_function(model, spec)
    if spec.task == "image-classification":
        def image_fn(pixel_values):
            return {"logits": model(pixel_values, training=False)}

        return image_fn

    def bert_fn(input_ids, attention_mask, token_type_ids):
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        feed = {hub: tf.cast(given[reg], tf.int32) for reg, hub in BERT_INPUTS.items()}
        out = model(feed, training=False)
        return {reg: out[hub] for reg, hub in BERT_OUTPUTS.items()}

    return bert_fn
