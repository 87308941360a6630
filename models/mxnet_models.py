"""MXNet (Gluon) builders for the models of the registry (imported only inside the mxnet environment).

- resnet50: the Gluon model zoo's `resnet50_v1`: ResNet-50 **v1**, the stride sits on the first 1x1 convolution of
  a downsampling bottleneck (as in Keras' ResNet50), whereas torch's (transformers') is v1.5, stride on the 3x3.
  Gluon's v1 bottleneck also has biases on its two 1x1 convolutions (18,880 values): 25,575,912 trainable
  parameters (torch's v1.5: 25,557,032), 25,629,032 with BatchNorm's running statistics; 1000 classes.  Compare
  runtimes, not frameworks, on this model: the FLOPs and numerics differ from torch's.
- mobilenet_v2: the model zoo's `mobilenet_v2_1_0` (width 1.0), 1000 classes, 3,504,960 trainable parameters
  (3,539,136 with BatchNorm's running statistics): Gluon's variant keeps the 1x1 expansion convolution in the
  first (t=1) bottleneck and classifies with a bias-free 1x1 convolution (+1,088 - 1,000 = 88 parameters against
  the reference 3,504,872 of torch's).
- bert-base-uncased: GluonNLP 0.10's `BERTModel(BERTEncoder(...))` with bert_12_768_12's hyper-parameters (12 layers,
  hidden 768, 12 heads, feed-forward 3072, vocabulary 30522, 512 positions, 2 token types, GELU, LayerNorm eps
  1e-12), with its pooler and neither the masked-LM decoder nor the next-sentence classifier: 109,482,240
  parameters, as transformers' BertModel.  Built from the encoder directly: `bert_12_768_12` would want a
  vocabulary, which is a download.

Each model is wrapped in a HybridBlock whose forward takes the registry's inputs, in the registry's order, and
returns the registry's outputs in order: images (pixel_values,) -> (logits,), BERT (input_ids, attention_mask,
token_type_ids) -> (last_hidden_state, pooler_output); BERT's valid_length is computed inside the graph as
attention_mask.sum(axis=1), so the native runtime and its ONNX export take the same inputs as every other runtime.
(GluonNLP masks by valid length, not by an arbitrary mask: a mask that is not a prefix of ones is read as its
count of ones, and positions past the valid length come out as zeros in last_hidden_state.)

Random weights are seeded (mx.random.seed + np.random.seed before initialisation, on the CPU, and materialised by a
forward pass inside the builder, before anything else can draw from the generator): the same seed gives identical
weights on every context.  Convolutions: Kaiming-normal fan-in (MSRAPrelu(factor_type="in", slope=0)), classifier
N(0, 0.01), BatchNorm at its identity defaults, as in models.torch_models: Gluon's default (Uniform(0.07)) and Xavier
make random MobileNetV2 logits vanish (~1e-15 and ~1e-11).  Random logits then have a std of ~0.7 (MobileNetV2)
and ~650 (ResNet-50 v1: at inference BatchNorm is the identity, so each of the 16 residual sums adds variance).  BERT: N(0, 0.02), LayerNorm 1/0, biases 0 (BERT's own
initialiser).  A local file is an MXNet `.params` file (Block.save_parameters), read with load_parameters: no pickle.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
from mxnet.gluon import HybridBlock

from models.registry import get_model
from runners.protocol import Weights

# bert_12_768_12's hyper-parameters (gluonnlp.model.bert.bert_hparams), written out so nothing is fetched.
BERT_BASE = {"num_layers": 12, "units": 768, "hidden_size": 3072, "max_length": 512, "num_heads": 12,
             "embed_size": 768, "token_type_vocab_size": 2, "vocab_size": 30522, "layer_norm_eps": 1e-12}

# Trainable parameters per model (what models.torch_models.parameter_count counts for torch).
PARAMETER_COUNTS = {"resnet50": 25_575_912, "mobilenet_v2": 3_504_960, "bert-base-uncased": 109_482_240}


class WeightsError(ValueError):
    """A weights file that is missing, of an unknown format, or does not fit the architecture."""


class ImageClassifier(HybridBlock):
    """pixel_values (N, 3, H, W) float32 -> (logits,)."""

    def __init__(self, net: HybridBlock, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.net = net

    def hybrid_forward(self, F, pixel_values):  # noqa: N803 - Gluon's signature
        return (self.net(pixel_values),)


class TextEncoder(HybridBlock):
    """input_ids, attention_mask, token_type_ids (N, L) int64 -> (last_hidden_state (N, L, 768), pooler_output (N, 768)).

    valid_length = attention_mask.sum(axis=1), cast to the float type the encoder computes in (GluonNLP adds it to
    a float position range: MXNet refuses mixed int64 + float32 operands).
    """

    def __init__(self, net: HybridBlock, **kwargs) -> None:
        super().__init__(**kwargs)
        self._float_dtype = "float32"
        with self.name_scope():
            self.net = net

    def cast(self, dtype):
        self._float_dtype = np.dtype(dtype).name
        super().cast(dtype)

    def hybrid_forward(self, F, input_ids, attention_mask, token_type_ids):  # noqa: N803
        valid_length = F.cast(F.sum(attention_mask, axis=1), dtype=self._float_dtype)
        sequence, pooled = self.net(input_ids, token_type_ids, valid_length)
        return sequence, pooled


def _resnet50(options: dict[str, Any]) -> HybridBlock:
    from mxnet.gluon.model_zoo import vision

    return ImageClassifier(vision.resnet50_v1(classes=1000))


def _mobilenet_v2(options: dict[str, Any]) -> HybridBlock:
    from mxnet.gluon.model_zoo import vision

    return ImageClassifier(vision.mobilenet_v2_1_0(classes=1000))


def _bert(options: dict[str, Any]) -> HybridBlock:
    from gluonnlp.model.bert import BERTEncoder, BERTModel

    h = BERT_BASE
    if options["seq_len"] > h["max_length"]:
        raise ValueError(f"seq_len {options['seq_len']} exceeds BERT's {h['max_length']} positions")
    encoder = BERTEncoder(num_layers=h["num_layers"], units=h["units"], hidden_size=h["hidden_size"],
                          max_length=h["max_length"], num_heads=h["num_heads"], dropout=0.1,
                          output_attention=False, output_all_encodings=False, activation="gelu",
                          layer_norm_eps=h["layer_norm_eps"])
    net = BERTModel(encoder, vocab_size=h["vocab_size"], token_type_vocab_size=h["token_type_vocab_size"],
                    units=h["units"], embed_size=h["embed_size"], use_pooler=True, use_decoder=False,
                    use_classifier=False, use_token_type_embed=True)
    return TextEncoder(net)


_BUILDERS = {"resnet50": _resnet50, "mobilenet_v2": _mobilenet_v2, "bert-base-uncased": _bert}


def _initialise(name: str, block: HybridBlock) -> None:
    """Seeded random weights on the CPU (the caller has seeded the generators)."""
    if name == "bert-base-uncased":
        block.initialize(mx.init.Normal(0.02), ctx=mx.cpu())
        return
    block.initialize(mx.init.MSRAPrelu(factor_type="in", slope=0.0), ctx=mx.cpu())
    # The classifier (the zoo's `output`: a Dense for ResNet, a 1x1 convolution for MobileNetV2): N(0, 0.01).
    block.net.output.initialize(mx.init.Normal(0.01), ctx=mx.cpu(), force_reinit=True)


def example_inputs(name: str, batch_size: int = 1, options: dict[str, Any] | None = None,
                   seq_len: int | None = None) -> list[np.ndarray]:
    """Registry-shaped zero inputs (token ids 0, mask 1) in the registry's order; seq_len overrides the option."""
    spec = get_model(name)
    options = dict(spec.resolve_options(options))
    if seq_len is not None and "seq_len" in options:
        options["seq_len"] = seq_len
    arrays = []
    for inp in spec.inputs:
        shape = spec.input_shape(inp, batch_size, options)
        fill = 1 if inp.kind == "attention_mask" else 0
        arrays.append(np.full(shape, fill, dtype=inp.dtype))
    return arrays


def load_params_file(block: HybridBlock, path: str | Path, ctx) -> None:
    """Block.load_parameters on an MXNet .params file (NDArray container: no pickle), strictly."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    if path.suffix.lower() != ".params":
        raise WeightsError(f"weights file {path}: unknown format {path.suffix or '(none)'}; use an MXNet .params "
                           f"file (Block.save_parameters)")
    try:
        block.load_parameters(str(path), ctx=ctx, allow_missing=False, ignore_extra=False, cast_dtype=False)
    except (AssertionError, ValueError, mx.base.MXNetError) as exc:
        first = " ".join(str(exc).split())
        raise WeightsError(f"weights file {path} does not fit this model: {first[:300]}") from None


def build_mxnet_model(name: str, options: dict[str, Any] | None = None, weights: Weights | None = None,
                      ctx=None, hybridize: bool = True) -> HybridBlock:
    """The model `name` of the registry, hybridised (static_alloc, static_shape), on `ctx` (default CPU).

    Random weights are deterministic: the same seed gives identical parameters.  A `.params` file is loaded
    strictly: a missing, extra or mis-shaped parameter raises WeightsError with one line.
    """
    spec = get_model(name)
    options = spec.resolve_options(options)
    weights = weights or Weights()
    ctx = ctx or mx.cpu()
    block = _BUILDERS[spec.name](options)
    if weights.kind == "file":
        # Shapes must be known before loading: materialise (unseeded: every value is overwritten) on the CPU.
        _initialise(spec.name, block)
        block(*(mx.nd.array(a, dtype=a.dtype) for a in example_inputs(spec.name, 1, options, seq_len=2)))
        load_params_file(block, weights.path, mx.cpu())
    else:
        mx.random.seed(weights.seed)
        np.random.seed(weights.seed)
        _initialise(spec.name, block)
        # Deferred initialisation draws the values at the first forward: do it now, seeded, on the CPU.
        block(*(mx.nd.array(a, dtype=a.dtype) for a in example_inputs(spec.name, 1, options, seq_len=2)))
    mx.nd.waitall()
    if ctx != mx.cpu():
        block.collect_params().reset_ctx(ctx)
    if hybridize:
        block.hybridize(static_alloc=True, static_shape=True)
    return block


def parameter_count(block: HybridBlock, trainable_only: bool = True) -> int:
    """Number of parameter values; trainable_only=False adds BatchNorm's running statistics."""
    total = 0
    for param in block.collect_params().values():
        if trainable_only and param.grad_req == "null":
            continue
        total += int(np.prod(param.shape))
    return total


def parameters_numpy(block: HybridBlock) -> dict[str, np.ndarray]:
    """Parameters by their structural names ("net.features.0.weight"), as in a .params file."""
    return {k: v.data(v.list_ctx()[0]).asnumpy() for k, v in block._collect_params_with_prefix().items()}
