"""The registry's torch model saved as a file another client loads (runs in the torch environment): TorchScript
(`torch.jit.trace`, a .pt) and AOTInductor (`torch.export` + `aoti_compile_and_package`, a .pt2 package of compiled
CPU code).  The same file is run from Python (runners/adapters/torch_artifact.py) and from C++ (runners/cpp/), so the
two clients are compared on one artifact (issue 25).

The flow is models.export_flow's (validation, phases, atomic write, verification against the eager model on
make_inputs(seed 0, batch 2)); the verification loads the written file back in Python.  Inputs are positional in the
registry's order, axis 0 (the batch) dynamic.  What a client without the registry needs travels inside the file:
ARTIFACT_METADATA_KEY holds {"model", "inputs", "outputs"} as JSON (a TorchScript extra file; AOTI package metadata).

AOTInductor compiles C++ with g++ (about 30 s for MobileNetV2 on this host) and caches it in TORCHINDUCTOR_CACHE_DIR
(about 300 MB: point it somewhere kept).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from models.export_flow import ExportError, SourceExporter, TargetFormat, judged_faithful, run_export
from runners.protocol import ExportRequest, ExportResult, Weights

ARTIFACT_METADATA_KEY = "greenrt.json"
MAX_BATCH = 4096  # the dynamic batch axis' upper bound in the exported program (torch.export needs one to reason)


def artifact_metadata(spec) -> dict[str, Any]:
    """What a client outside Python needs of the registry: the model, its inputs in call order, its outputs."""
    return {"model": spec.name, "inputs": [i.name for i in spec.inputs], "outputs": list(spec.outputs)}


def load_torchscript(path: str | Path):
    import torch

    return torch.jit.load(str(path), map_location="cpu").eval()


def load_aoti(path: str | Path):
    import torch._inductor

    return torch._inductor.aoti_load_package(str(path))


def run_artifact(module, names: list[str], arrays: dict[str, Any]) -> tuple:
    """The artifact's outputs (a tuple of tensors) on inputs given positionally in the registry's order."""
    import torch

    with torch.inference_mode():
        out = module(*[torch.from_numpy(arrays[name]) for name in names])
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


class _ArtifactExporter(SourceExporter):
    framework = "torch"
    source = "torch"
    distributions = ("torch", "transformers", "safetensors")
    suffix = ""

    def resolve_opset(self, requested: int | None) -> int | None:
        if requested is not None:
            raise ExportError(f"opset is an ONNX setting; a {self.target} export takes none", "bad-request")
        return None

    def load(self, spec, options: dict[str, Any], weights: Weights):
        from models.torch_models import build_torch_model

        return build_torch_model(spec.name, options, weights)

    def reference(self, model, spec, options: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        outs = run_artifact(model, [i.name for i in spec.inputs], inputs)
        return {name: t.numpy() for name, t in zip(spec.outputs, outs)}

    def convert(self, model, spec, options, inputs, reference, opset, exporter, workdir: Path):
        import torch

        names = [i.name for i in spec.inputs]
        example = tuple(torch.from_numpy(inputs[name]) for name in names)
        path = workdir / f"model{self.suffix}"
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings
            self.save(model, example, artifact_metadata(spec), path)
        self.names, self.outputs = names, list(spec.outputs)
        return path

    def save(self, model, example: tuple, metadata: dict[str, Any], path: Path) -> None:
        raise NotImplementedError

    def load_written(self, path: Path):
        raise NotImplementedError

    def verify(self, path: Path, reference: dict[str, Any], inputs: dict[str, Any], source: str) -> dict[str, Any]:
        """The written file, loaded back as a client would, against the eager model's outputs."""
        try:
            outs = run_artifact(self.load_written(path), self.names, inputs)
        except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError and its own types
            raise ExportError(f"the {self.target} artifact cannot be run from Python: {type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:500]}") from exc
        got = {name: t.numpy() for name, t in zip(self.outputs, outs)}
        return judged_faithful(reference, got, source, f"the {self.target} artifact", "torch")

    @property
    def target_format(self) -> TargetFormat:
        return TargetFormat(_moved_next_to, lambda path: None, self.verify)


def _moved_next_to(written: Path, out: Path) -> list[Path]:
    """The file convert() wrote in its scratch folder, moved to a temporary name next to `out` for the rename."""
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=out.suffix)
    os.close(fd)
    try:
        shutil.move(str(written), name)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return [Path(name)]


class TorchScriptExporter(_ArtifactExporter):
    target = "torchscript"
    exporters = ("trace",)
    suffix = ".pt"

    def describe(self, exporter: str, versions: dict[str, str]) -> str:
        return f"torch.jit.trace (torch {versions.get('torch', '?')})"

    def save(self, model, example: tuple, metadata: dict[str, Any], path: Path) -> None:
        import torch

        traced = torch.jit.trace(model, example, check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={ARTIFACT_METADATA_KEY: json.dumps(metadata)})

    def load_written(self, path: Path):
        return load_torchscript(path)


class AotiExporter(_ArtifactExporter):
    target = "aoti"
    exporters = ("export",)
    suffix = ".pt2"

    def describe(self, exporter: str, versions: dict[str, str]) -> str:
        return f"torch.export + torch._inductor.aoti_compile_and_package, cpu (torch {versions.get('torch', '?')})"

    def save(self, model, example: tuple, metadata: dict[str, Any], path: Path) -> None:
        import torch
        import torch._inductor

        batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
        program = torch.export.export(model, example, dynamic_shapes=tuple({0: batch} for _ in example))
        torch._inductor.aoti_compile_and_package(
            program, package_path=str(path),
            inductor_configs={"aot_inductor.metadata": {ARTIFACT_METADATA_KEY: json.dumps(metadata)}})

    def load_written(self, path: Path):
        return load_aoti(path)


def export_torchscript(request: ExportRequest) -> ExportResult:
    """request.model traced to TorchScript at request.output_path (.pt); every failure becomes an error result."""
    return run_export(request, TorchScriptExporter())


def export_aoti(request: ExportRequest) -> ExportResult:
    """request.model compiled by AOTInductor for the CPU at request.output_path (.pt2)."""
    return run_export(request, AotiExporter())
