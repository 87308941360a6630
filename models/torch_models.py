"""PyTorch builders for the models of the registry (imported only inside a torch environment).

The architectures come from `transformers` (torchvision's PyPI build breaks the CPU torch, see FINDINGS):

- resnet50: `ResNetForImageClassification(ResNetConfig(...))`, ResNet-50 v1.5: bottleneck blocks, depths
  [3, 4, 6, 3], stride 2 on the 3x3 convolution (`downsample_in_bottleneck=False`), 1000 classes, 25.6M parameters.
- mobilenet_v2: `MobileNetV2ForImageClassification(MobileNetV2Config(num_labels=1000))`, width 1.0, 3.5M parameters.
  `tf_padding=False`: symmetric static padding (as torchvision's reference), which gives the same output sizes at
  224x224 as TF's "SAME" padding but no per-layer dynamic pad in the graph.  Random weights are re-initialised
  to keep unit-scale activations (transformers' default makes them vanish, see `_unit_scale_init`).
- bert-base-uncased: `BertModel(BertConfig())`, base defaults (12 layers, hidden 768, vocabulary 30522), with its
  pooler, 109.5M parameters; attention through torch's scaled_dot_product_attention ("sdpa").

Each model is wrapped in a small module whose forward takes the registry's input names as keyword arguments and
returns a tuple of plain tensors in the registry's `outputs` order, which keeps ONNX export and digests simple.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.registry import get_model
from runners.protocol import Weights


class WeightsError(ValueError):
    """A weights file that is missing, of an unknown format, or does not fit the architecture."""


class ImageClassifier(nn.Module):
    """pixel_values (N, 3, H, W) float32 -> (logits,)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.net(pixel_values=pixel_values, return_dict=False)[0],)


class TextEncoder(nn.Module):
    """input_ids, attention_mask, token_type_ids (N, L) int64 -> (last_hidden_state, pooler_output)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, return_dict=False
        )
        return out[0], out[1]


def _resnet50(options: dict[str, Any]) -> nn.Module:
    from transformers import ResNetConfig, ResNetForImageClassification

    config = ResNetConfig(
        num_labels=1000,
        layer_type="bottleneck",
        depths=[3, 4, 6, 3],
        hidden_sizes=[256, 512, 1024, 2048],
        embedding_size=64,
        downsample_in_bottleneck=False,  # v1.5: the stride sits on the 3x3 convolution
        downsample_in_first_stage=False,
    )
    return ImageClassifier(ResNetForImageClassification(config))


def _mobilenet_v2(options: dict[str, Any]) -> nn.Module:
    from transformers import MobileNetV2Config, MobileNetV2ForImageClassification

    config = MobileNetV2Config(num_labels=1000, depth_multiplier=1.0, image_size=224, tf_padding=False)
    net = MobileNetV2ForImageClassification(config)
    _unit_scale_init(net)
    return ImageClassifier(net)


def _unit_scale_init(net: nn.Module) -> None:
    """Variance-preserving random weights: Kaiming-normal fan-in convolutions, N(0, 0.01) classifier.

    transformers' default, N(0, 0.02) for every convolution, shrinks the activations ~10x per block (torchvision's
    fan-out Kaiming does too: a depthwise kernel's fan-out counts every channel): random MobileNetV2 logits come out
    near 1e-22, which makes fidelity checks meaningless and invites denormal slow paths.  Fan-in keeps the
    activations at unit scale through all 17 blocks.
    """
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)


def _bert(options: dict[str, Any]) -> nn.Module:
    from transformers import BertConfig, BertModel

    config = BertConfig()  # bert-base-uncased: 12 layers, 768 hidden, 12 heads, vocabulary 30522
    if options["seq_len"] > config.max_position_embeddings:
        raise ValueError(f"seq_len {options['seq_len']} exceeds BERT's {config.max_position_embeddings} positions")
    config._attn_implementation = "sdpa"
    return TextEncoder(BertModel(config, add_pooling_layer=True))


_BUILDERS = {"resnet50": _resnet50, "mobilenet_v2": _mobilenet_v2, "bert-base-uncased": _bert}


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors file, or of a .pt/.pth/.bin file read with weights_only=True (never unpickles code)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    if suffix in (".pt", ".pth", ".bin"):
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # pickled code, corrupt file, ...
            raise WeightsError(f"weights file {path}: cannot be read with weights_only=True ({exc})".splitlines()[0]) from exc
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise WeightsError(f"weights file {path} holds a {type(state).__name__}, not a state dict")
        return state
    raise WeightsError(f"weights file {path}: unknown format {suffix or '(none)'}; use .safetensors, .pt, .pth or .bin")


def _match_keys(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a file's keys onto the wrapper's: the wrapper's own state dict, the bare transformers model's
    (`resnet.*`, `mobilenet_v2.*`, BERT's `embeddings.*`), or a BERT pre-training checkpoint (`bert.*` kept,
    the `cls.*` pre-training heads dropped) as in Hugging Face's bert-base-uncased.  The best fit wins; the strict
    check that follows reports what still does not fit."""
    candidates = [state, {f"net.{k}": v for k, v in state.items()}]
    if any(k.startswith("bert.") for k in state):
        candidates.append({f"net.{k[5:]}": v for k, v in state.items() if k.startswith("bert.")})
    return max(candidates, key=lambda c: (len(own.keys() & c.keys()), -len(c.keys() - own.keys())))


def build_torch_model(name: str, options: dict[str, Any] | None = None, weights: Weights | None = None) -> nn.Module:
    """The model `name` of the registry, in eval mode, on the CPU, with seeded random weights or a local file.

    Random weights are deterministic: the same seed gives an identical state_dict.  A file is loaded strictly;
    a mismatch raises WeightsError with the counts of missing and unexpected keys.
    """
    spec = get_model(name)
    if spec.user is not None:  # a user's torch.export program or transformers architecture
        from models.user_torch import build_user_torch_model

        return build_user_torch_model(spec, weights or Weights())
    options = spec.resolve_options(options)
    weights = weights or Weights()
    torch.manual_seed(weights.seed)
    model = _BUILDERS[spec.name](options)
    if weights.kind == "file":
        own = model.state_dict()
        state = _match_keys(load_state_dict_file(weights.path), own)
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            example = ", ".join((missing + unexpected)[:3])
            raise WeightsError(
                f"weights file {weights.path} does not fit {spec.name}: {len(missing)} missing and "
                f"{len(unexpected)} unexpected key(s) (e.g. {example})"
            )
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:  # shape mismatches
            first = str(exc).replace("\n", " ").replace("\t", "")
            raise WeightsError(f"weights file {weights.path} does not fit {spec.name}: {first[:300]}") from exc
    model.eval()
    return model


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
