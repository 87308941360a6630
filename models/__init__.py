"""What greenrt measures: model specifications, deterministic inputs, and per-framework builders and exporters.

`models.registry` and `models.inputs` need only numpy; the builders (`models.torch_models`, ...) import their
framework and are imported only inside that framework's environment.
"""
from models.registry import MODELS, InputSpec, ModelSpec, UnknownModelError, get_model, model_names

__all__ = ["MODELS", "InputSpec", "ModelSpec", "UnknownModelError", "get_model", "model_names"]
