"""A user's Keras 3 model (imported only inside a tensorflow environment): loaded with safe_mode=True (Keras then
refuses Lambda layers' pickled bytecode), called with the entry's input names, its outputs named by the entry."""
from __future__ import annotations

import inspect
from typing import Any, Callable

from models.registry import ModelSpec
from runners.failures import RunnerError


def load_user_keras_model(spec: ModelSpec):
    import keras

    path = spec.user.path
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - Keras' own words: not a zip, unknown layer, unsafe Lambda, ...
        raise RunnerError(f"keras {keras.__version__} cannot load {path}: {type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:400]}", kind="load") from None
    model.trainable = False
    return model


def user_serving_function(model, spec: ModelSpec) -> Callable[..., dict]:
    """{output name: tensor} of the model on the entry's inputs, in inference mode (training=False)."""
    names = [i.name for i in spec.inputs]
    outputs = spec.outputs

    signature = inspect.Signature([inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names])

    def user_fn(*args: Any, **kwargs: Any) -> dict:
        inputs = signature.bind(*args, **kwargs).arguments
        feed = inputs[names[0]] if len(names) == 1 else {name: inputs[name] for name in names}
        out = model(feed, training=False)
        if isinstance(out, dict):
            return {name: out[name] for name in outputs}
        out = list(out) if isinstance(out, (list, tuple)) else [out]
        if len(out) != len(outputs):
            raise RunnerError(f"the model returned {len(out)} outputs; the entry names {', '.join(outputs)}")
        return dict(zip(outputs, out))

    # tf.function reads the parameters' names (the input_signature's), called by keyword or in the entry's order.
    user_fn.__signature__ = signature
    return user_fn
