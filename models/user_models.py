"""A user's own model as a registry entry: made from the typed runners.protocol.UserModel that the config's
`[user_models.<name>]` table becomes (orchestrator/planning/user_models.py) and that travels to the runner in
RunRequest.user_model, so that the runner's registry knows the model without the orchestrator loading anything.

Standard library, runners.protocol and models.registry only: imported by the orchestrator (no framework) and by every
runner.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from models.registry import MODELS, InputSpec, ModelSpec, register_user_model
from runners.protocol import UserModel

FORMATS = ("onnx", "torch", "keras", "hf", "hf_checkpoint")
# How each format is loaded in its runner (recorded in every run's provenance): nothing that runs code the user did
# not ask for (no pickle; weights_only and safe_mode where the library has them).
LOADERS = {
    "onnx": "the runtime's own ONNX reader (onnxruntime.InferenceSession / openvino.Core.read_model)",
    "torch": "torch.export.load (a torch.export program: weights read without unpickling code)",
    "keras": "keras.saving.load_model(safe_mode=True)",
    "hf": "transformers AutoConfig + AutoModel.from_config (seeded random weights, or safetensors), offline",
    # A generative model: the user's Hugging Face checkpoint folder, converted by each runtime's own tool.
    "hf_checkpoint": "the checkpoint folder (config.json + safetensors, no remote code), as each runtime loads it",
}


def spec_from_entry(entry: UserModel) -> ModelSpec:
    """The registry's ModelSpec of a user model. Pure."""
    if entry.format == "hf_checkpoint":  # a generative model: its workload and limits from its config.json
        from models.registry import generative_model

        assert entry.hf is not None and entry.hf.config is not None, "an hf_checkpoint entry carries its config"
        return generative_model(entry.name, f"user checkpoint ({entry.hf.model_type}): {entry.path}",
                                entry.hf.config, user=entry)
    inputs = tuple(
        InputSpec(name=i.name, shape=tuple(i.shape), dtype=i.dtype, kind="user",
                  range=tuple(i.range) if i.range is not None else None)
        for i in entry.inputs)
    return ModelSpec(name=entry.name, description=f"user model ({entry.format}): {entry.path or '-'}",
                     task="user", inputs=inputs, outputs=tuple(entry.outputs), user=entry)


def ensure_registered(entry: UserModel) -> ModelSpec:
    """Register the entry's model (again, if its entry changed: a new file under the same name) and return it."""
    spec = spec_from_entry(entry)
    current = MODELS.get(spec.name)
    if current is None or current.user != spec.user:
        register_user_model(spec)
    return spec


def is_user_model(name: str) -> bool:
    spec = MODELS.get(name)
    return spec is not None and spec.user is not None


def provenance(entry: UserModel) -> dict[str, Any]:
    """What a run record says of where its model came from."""
    hf = asdict(entry.hf) if entry.hf else {}
    return {"format": entry.format, "file": entry.path, "size_bytes": entry.size, "sha256": entry.sha256,
            "loader": entry.loader or LOADERS[entry.format],
            **({"model_type": hf.get("model_type"), "weights": hf.get("weights")} if entry.format == "hf" else {})}
