"""A generative model's files: its Hugging Face checkpoint folder, and each runtime's conversion of it, cached across
runs and sweeps like the ONNX exports (artifacts.py: the same cache root, lock, staging folder and publication).

The checkpoint of a built-in model is written in the torch environment (ExportRequest target "hf-checkpoint"), keyed by
the model's config, its weights and the torch environment's versions; a user's checkpoint is their folder, as is,
keyed by the digest of its files, and its converters read a view of it (target "hf-checkpoint-view": links to its
files, tokenizer files generated where it has none). A conversion runs in the DESTINATION runtime's environment (ExportRequest with the
runtime's target, greenrt's precision and source_path = the checkpoint folder) and is keyed by the checkpoint's
digest, the target, the precision, the model options and the converter's environment and versions: a new checkpoint
or a new converter is a new folder, never a stale one.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.execution.artifacts import (Artifact, ArtifactCache, _export_lock, publish, staging_folder,
                                              weights_identity)
from orchestrator.planning.checkpoints import folder_digest
from orchestrator.planning.runtimes import Runtime, parse_runtime
from runners.protocol import ExportRequest, ExportResult, UserModel, Weights, read_json, write_json_atomic
from runners.runtimes_table import (CHECKPOINT_FRAMEWORK, CHECKPOINT_TARGET, CHECKPOINT_VIEW_TARGET,
                                    GENERATIVE_REFERENCE_RUNTIME)

CHECKPOINT_FOLDER = "checkpoint"  # inside the cached artifact folder, beside export.json and digest.json
CONVERTED_FOLDER = "model"
USER_CHECKPOINT = "the user's checkpoint folder, as is"


@dataclass(frozen=True)
class GenerativeArtifact(Artifact):
    """A folder a generative runtime loads: the checkpoint itself (source_path == path) or a runtime's conversion of
    it; `source_key` is the checkpoint's digest, `quantization` the converter's scheme for `precision`."""

    precision: str = "fp32"
    source_path: str = ""
    source_key: str = ""
    quantization: dict[str, Any] = field(default_factory=dict)


def _key(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def checkpoint_environment() -> str:
    """The environment that writes a built-in model's checkpoint: the generative reference runtime's (torch)."""
    return parse_runtime(GENERATIVE_REFERENCE_RUNTIME).environment


def user_checkpoint(user: UserModel) -> GenerativeArtifact:
    """A user's checkpoint folder: nothing to make; its digest was taken when the config was checked."""
    assert user.path and user.sha256, f"user model {user.name} has no checked checkpoint folder"
    return GenerativeArtifact(path=user.path, key=user.sha256[:16], opset=None, exporter=USER_CHECKPOINT,
                              versions={}, export_seconds=None, source_path=user.path, source_key=user.sha256)


def ensure_checkpoint_view(cache: ArtifactCache, user: UserModel) -> GenerativeArtifact:
    """A user's checkpoint as the converters read it (made now in the torch environment, or from the cache): links
    to the user's files, and tokenizer files generated where the folder has none (models/llm/checkpoint_view.py).
    Keyed by the folder's digest; ExportFailed with the reason if it cannot be made."""
    checkpoint = user_checkpoint(user)
    environment = checkpoint_environment()
    key = _key({"target": CHECKPOINT_VIEW_TARGET, "checkpoint": checkpoint.source_key,
                "versions": cache.source_versions(environment)})
    folder = cache.root / f"{CHECKPOINT_FRAMEWORK}-{user.name}-{CHECKPOINT_VIEW_TARGET}-{key}"
    export_json = folder / "export.json"
    if not export_json.exists():
        with _export_lock(folder):
            if not export_json.exists():
                staging = staging_folder(folder)
                request = ExportRequest(framework=CHECKPOINT_FRAMEWORK, model=user.name,
                                        output_path=str(staging / CHECKPOINT_FOLDER),
                                        result_path=str(staging / "export.json"), target=CHECKPOINT_VIEW_TARGET,
                                        user_model=user, source_path=checkpoint.path)
                publish(cache, environment, "export", request, ExportResult, folder, [Path(checkpoint.path)],
                        f"the converters' view of checkpoint {checkpoint.path} (in {environment})")
    result: ExportResult = read_json(ExportResult, export_json)
    return GenerativeArtifact(path=result.output_path, key=key, opset=None, exporter=result.exporter,
                              versions=result.versions, export_seconds=result.seconds, source_path=checkpoint.path,
                              source_key=checkpoint.source_key)


def ensure_checkpoint(cache: ArtifactCache, model: str, llm_config: Mapping[str, Any],
                      weights: Weights) -> GenerativeArtifact:
    """The checkpoint folder of a built-in generative model (written now in the torch environment, or from the
    cache); ExportFailed with the reason if it cannot be written."""
    environment = checkpoint_environment()
    key = _key({"target": CHECKPOINT_TARGET, "model": model, "config": dict(llm_config),
                "weights": weights_identity(weights), "versions": cache.source_versions(environment)})
    folder = cache.root / f"{CHECKPOINT_FRAMEWORK}-{model}-{CHECKPOINT_TARGET}-{key}"
    digest_json = folder / "digest.json"
    if not digest_json.exists():
        with _export_lock(folder):
            if not (folder / "export.json").exists():
                staging = staging_folder(folder)
                request = ExportRequest(framework=CHECKPOINT_FRAMEWORK, model=model,
                                        output_path=str(staging / CHECKPOINT_FOLDER),
                                        result_path=str(staging / "export.json"), weights=weights,
                                        target=CHECKPOINT_TARGET)
                readonly = [Path(weights.path)] if weights.kind == "file" and weights.path else []
                publish(cache, environment, "export", request, ExportResult, folder, readonly,
                        f"Hugging Face checkpoint of {model} (in {environment})")
            if not digest_json.exists():  # what every conversion of it is keyed by: hashed once
                size, sha256 = folder_digest(folder / CHECKPOINT_FOLDER)
                write_json_atomic(digest_json, {"sha256": sha256, "size": size})
    result: ExportResult = read_json(ExportResult, folder / "export.json")
    digest = json.loads(digest_json.read_text())["sha256"]
    return GenerativeArtifact(path=result.output_path, key=key, opset=None, exporter=result.exporter,
                              versions=result.versions, export_seconds=result.seconds, source_path=result.output_path,
                              source_key=digest)


def conversion_key(checkpoint: GenerativeArtifact, runtime: Runtime, precision: str, options: dict[str, Any],
                   versions: dict[str, str]) -> str:
    """What a conversion is: the checkpoint's digest, the target format, greenrt's precision, the model options,
    and the converting environment and its versions."""
    assert runtime.conversion is not None, f"{runtime.name} converts nothing"
    framework, target = runtime.conversion
    return _key({"checkpoint": checkpoint.source_key, "framework": framework, "target": target,
                 "precision": precision, "options": options, "environment": runtime.environment,
                 "versions": versions})


def ensure_conversion(cache: ArtifactCache, runtime: Runtime, model: str, checkpoint: GenerativeArtifact,
                      precision: str, options: dict[str, Any], user_model: UserModel | None = None
                      ) -> GenerativeArtifact:
    """`runtime`'s conversion of the checkpoint at `precision` (made now in the runtime's environment, or from the
    cache); ExportFailed with the converter's reason if it cannot be made."""
    assert runtime.conversion is not None, f"{runtime.name} loads the checkpoint as is"
    framework, target = runtime.conversion
    environment = runtime.environment
    key = conversion_key(checkpoint, runtime, precision, options, cache.source_versions(environment))
    folder = cache.root / f"{environment}-{model}-{target}-{precision}-{key}"
    export_json = folder / "export.json"
    if not export_json.exists():
        with _export_lock(folder):
            if not export_json.exists():  # another process (a shard on another node) may have made it meanwhile
                staging = staging_folder(folder)
                request = ExportRequest(framework=framework, model=model, output_path=str(staging / CONVERTED_FOLDER),
                                        result_path=str(staging / "export.json"),
                                        model_options=options, target=target, user_model=user_model,
                                        precision=precision, source_path=checkpoint.path)
                readonly = [Path(checkpoint.path)] + ([Path(user_model.path)] if user_model and user_model.path else [])
                publish(cache, environment, "export", request, ExportResult, folder, readonly,
                        f"{target} conversion of {model} at {precision} (in {environment})")
    result: ExportResult = read_json(ExportResult, export_json)
    return GenerativeArtifact(path=result.output_path, key=key, opset=None, exporter=result.exporter,
                              versions=result.versions, export_seconds=result.seconds, precision=precision,
                              source_path=checkpoint.path, source_key=checkpoint.source_key,
                              quantization=dict(result.quantization or {}))
