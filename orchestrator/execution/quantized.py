"""INT8 models, quantized from the fp32 ONNX artifact in the onnxruntime environment and cached across sweeps.

A quantized model is derived from a converted one, so its cache key is the fp32 artifact's key (source framework
and versions, model, options, weights, opset) plus the quantization settings (models.quantize.settings_for) and the
quantizing environment's versions. Produced once by `python -m runners quantize`, in a staging folder renamed into
place, under the same cross-process lock as the exports.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.quantize import QuantizationSettings, settings_for
from orchestrator.execution.artifacts import Artifact, ArtifactCache, _export_lock, publish, staging_folder
from runners.protocol import QuantizeRequest, QuantizeResult, read_json
from runners.runtimes_table import find, ONNX_FROM

INT8 = "int8"


def quantize_environment() -> str:
    """The environment the quantization runs in: ONNX Runtime's CPU one (it has onnxruntime and onnx)."""
    family = find("onnxruntime", ONNX_FROM + "torch")
    assert family is not None and "cpu" in family.environments, "the runtimes table lost onnxruntime's cpu provider"
    return family.environments["cpu"]


@dataclass(frozen=True)
class QuantizedArtifact(Artifact):
    """An INT8 model: `path` is the quantized file, the fp32 artifact it came from and how, beside it."""

    precision: str = INT8
    source_path: str = ""  # the fp32 .onnx it was quantized from
    source_key: str = ""
    quantization: dict[str, Any] = field(default_factory=dict)  # models.quantize's facts: calibration, op types
    quantize_seconds: float | None = None


def quantized_key(fp32: Artifact, settings: QuantizationSettings, versions: dict[str, str]) -> str:
    identity = {"fp32": fp32.key, "settings": settings.to_request_fields(), "versions": versions}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def ensure_quantized(artifacts: ArtifactCache, fp32: Artifact, source: str, model: str,
                     options: dict[str, Any]) -> QuantizedArtifact:
    """The INT8 model of `fp32` (quantized now, or from the cache); ExportFailed with the reason if it cannot be."""
    environment = quantize_environment()
    settings = settings_for(model)
    key = quantized_key(fp32, settings, artifacts.source_versions(environment))
    folder = artifacts.root.parent / "quantized" / f"{source}-{model}-{INT8}-{key}"
    result_json = folder / "quantize.json"
    if not result_json.exists():
        with _export_lock(folder):
            if not result_json.exists():  # another process may have quantized it meanwhile
                _quantize(artifacts, environment, fp32, settings, model, options, folder)
    result: QuantizeResult = read_json(QuantizeResult, result_json)
    return QuantizedArtifact(path=result.output_path, key=key, opset=fp32.opset, exporter=fp32.exporter,
                             versions={**fp32.versions, **{f"quantize:{k}": v for k, v in result.versions.items()}},
                             export_seconds=fp32.export_seconds, source_path=fp32.path, source_key=fp32.key,
                             quantization=result.quantization, quantize_seconds=result.seconds)


def _quantize(artifacts: ArtifactCache, environment: str, fp32: Artifact, settings: QuantizationSettings, model: str,
              options: dict[str, Any], folder: Path) -> None:
    staging = staging_folder(folder)
    request = QuantizeRequest(model=model, source_path=fp32.path, output_path=str(staging / "model.onnx"),
                              result_path=str(staging / "quantize.json"), model_options=options,
                              **settings.to_request_fields())
    publish(artifacts, environment, "quantize", request, QuantizeResult, folder, [Path(fp32.path).parent],
            f"INT8 quantization of {model} ({settings.method})")
