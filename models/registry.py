"""The models of the study, described independently of any framework."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from runners.protocol import UserModel
from runners.runtimes_table import FORWARD, GENERATIVE


class UnknownModelError(ValueError):
    pass


@dataclass(frozen=True)
class InputSpec:
    name: str
    # Shape without the batch dimension; a string names a model option (e.g. "seq_len").
    shape: tuple[int | str, ...]
    dtype: str  # numpy dtype name
    # "image" | "token_ids" | "attention_mask" | "token_type_ids" | "prompt_ids" (a generative model's prompt:
    # models/llm/prompts.py) | "user" (a user model's: as declared)
    kind: str
    # A user model's input: the [low, high) its seeded values are drawn from (None: standard normal floats, 0/1 ints).
    range: tuple[float, float] | None = None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    task: str
    inputs: tuple[InputSpec, ...]
    outputs: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)  # defaults; a sweep may override them
    option_limits: dict[str, int] = field(default_factory=dict)  # largest value the architecture admits
    vocab_size: int | None = None
    num_classes: int | None = None
    # A user's own model (models.user_models): its format, file, size, sha256 and how it is loaded; None: built in.
    user: UserModel | None = None
    # What one inference is (runners.runtimes_table.KINDS): a forward pass, or a generate call (generative models
    # pair only with generative runtimes).
    kind: str = FORWARD
    # Limits on sums of options: ((names, largest sum, what sets it), ...), e.g. a prompt and its new tokens must fit
    # the position embeddings.
    option_sum_limits: tuple[tuple[tuple[str, ...], int, str], ...] = ()
    # A generative model's LlamaConfig fields and derived facts (models/llm/configs.py); None for other models.
    llm_config: Mapping[str, Any] | None = None

    def resolve_options(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(self.options))
        if unknown:
            valid = ", ".join(sorted(self.options)) or "none"
            raise UnknownModelError(f"model {self.name}: unknown option(s) {', '.join(unknown)}; valid: {valid}")
        resolved = {**self.options, **overrides}
        for key, value in resolved.items():
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise UnknownModelError(f"model {self.name}: option {key} must be a positive integer, not {value!r}")
            limit = self.option_limits.get(key)
            if limit is not None and value > limit:
                raise UnknownModelError(f"model {self.name}: option {key} = {value} exceeds its limit {limit}")
        for names, limit, why in self.option_sum_limits:
            total = sum(resolved[n] for n in names)
            if total > limit:
                raise UnknownModelError(f"model {self.name}: {' + '.join(names)} = {total} exceeds its limit "
                                        f"{limit} ({why})")
        return resolved

    @property
    def generative(self) -> bool:
        return self.kind == GENERATIVE

    def input_shape(self, spec: InputSpec, batch_size: int, options: dict[str, Any]) -> tuple[int, ...]:
        return (batch_size, *(options[d] if isinstance(d, str) else d for d in spec.shape))


def _image_classifier(name: str, description: str) -> ModelSpec:
    """A 224x224 RGB image (NCHW float32) in, the logits of 1000 ImageNet classes out."""
    return ModelSpec(name=name, description=description, task="image-classification",
                     inputs=(InputSpec("pixel_values", (3, 224, 224), "float32", "image"),), outputs=("logits",),
                     num_classes=1000)


# A generative model's workload defaults: a prompt of 512 tokens, exactly 128 new tokens (issue 24).
PROMPT_TOKENS, NEW_TOKENS = 512, 128


def generative_model(name: str, description: str, config: Mapping[str, Any], user: UserModel | None = None) -> ModelSpec:
    """A Llama-style decoder of this config (LlamaConfig fields): B prompts of `prompt_tokens` seeded ids in, for
    each exactly `new_tokens` greedy tokens and the logits of the prompt's last position out."""
    positions = int(config["max_position_embeddings"])
    return ModelSpec(
        name=name, description=description, task="text-generation",
        inputs=(InputSpec("input_ids", ("prompt_tokens",), "int64", "prompt_ids"),),
        outputs=("tokens", "prefill_logits"),
        options={"prompt_tokens": PROMPT_TOKENS, "new_tokens": NEW_TOKENS},
        option_limits={"prompt_tokens": positions - 1, "new_tokens": positions - 1},
        option_sum_limits=((("prompt_tokens", "new_tokens"), positions, "max_position_embeddings"),),
        vocab_size=int(config["vocab_size"]), user=user, kind=GENERATIVE,
        llm_config=MappingProxyType(dict(config)))


def _generative_models() -> tuple[ModelSpec, ...]:
    from models.llm.configs import DESCRIPTIONS, GENERATIVE_MODELS

    return tuple(generative_model(name, DESCRIPTIONS[name], config) for name, config in GENERATIVE_MODELS.items())


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        # Each framework's own zoo architecture, as in the study: PyTorch's (transformers) is v1.5, stride on the 3x3
        # convolution; Keras' ResNet50 and Gluon's resnet50_v1 are v1, stride on the 1x1.
        _image_classifier("resnet50", "ResNet-50, 224x224, 1000 classes (v1.5 in PyTorch, v1 in TensorFlow and MXNet)"),
        _image_classifier("mobilenet_v2", "MobileNetV2, width multiplier 1.0, 224x224, 1000 classes"),
        ModelSpec(
            name="bert-base-uncased",
            description="BERT-base encoder: 12 layers, hidden 768, 12 heads, vocabulary 30522",
            task="feature-extraction",
            inputs=(
                InputSpec("input_ids", ("seq_len",), "int64", "token_ids"),
                InputSpec("attention_mask", ("seq_len",), "int64", "attention_mask"),
                InputSpec("token_type_ids", ("seq_len",), "int64", "token_type_ids"),
            ),
            outputs=("last_hidden_state", "pooler_output"),
            options={"seq_len": 128},
            option_limits={"seq_len": 512},  # BERT-base's position embeddings
            vocab_size=30522,
        ),
        *_generative_models(),
    )
}


# The built-in models, never changed: what the orchestrator looks models up in, beside the user models a sweep's
# config carries (SweepConfig.model_spec). MODELS above is a runner's: it also holds the user model of its request.
BUILT_IN_MODELS: Mapping[str, ModelSpec] = MappingProxyType(dict(MODELS))


def register_user_model(spec: ModelSpec) -> None:
    """Add a user's model (models.user_models) beside the built-in ones, in a runner, from its request's entry; a
    built-in name is never replaced."""
    if spec.name in BUILT_IN_MODELS:
        raise UnknownModelError(f"model {spec.name!r} is a built-in model's name; choose another name for your model")
    MODELS[spec.name] = spec


def model_names() -> list[str]:
    return list(MODELS)


def get_model(name: str, models: Mapping[str, ModelSpec] | None = None) -> ModelSpec:
    """The model `name` among `models` (default: MODELS, this process's registry)."""
    models = MODELS if models is None else models
    try:
        return models[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; valid: {', '.join(models)}") from None
