"""ONNX export from PyTorch (runs in the torch environment): `export_onnx(ExportRequest) -> ExportResult`.

The flow (validation, atomic write, opset read-back, verification by models.fidelity.compare_outputs in ONNX Runtime
CPU, error kinds) is models.export_flow's; this module builds the torch model, runs it for the reference outputs and
converts it.

One self-contained .onnx file per model (no side .onnx.data file; all three models are far below protobuf's 2 GB),
a dynamic batch axis named "batch" on every input and output, input/output names from the registry, other axes
(image size, seq_len) fixed from the model options.

Exporter: the legacy TorchScript exporter ("torchscript", torch.onnx.export(dynamo=False)) is the default, chosen
by measurement: its graphs ran 5-15% faster in ONNX Runtime CPU (the figures are in docs/runtimes.md). The dynamo
exporter ("dynamo") is kept as an option (ExportRequest.exporter).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from models.export_flow import ExportError, SourceExporter, run_export
from runners.protocol import ExportRequest, ExportResult, Weights


class TorchExporter(SourceExporter):
    framework = "torch"
    source = "torch"
    exporters = ("torchscript", "dynamo")  # the default (measured faster in ONNX Runtime) first
    distributions = ("torch", "transformers", "onnx", "onnxscript", "onnxruntime", "safetensors")

    def describe(self, exporter: str, versions: dict[str, str]) -> str:
        return f"torch.onnx.export(dynamo={exporter == 'dynamo'})"

    def load(self, spec, options: dict[str, Any], weights: Weights):
        from models.torch_models import build_torch_model

        return build_torch_model(spec.name, options, weights)

    def reference(self, model, spec, options: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        import torch

        with torch.inference_mode():
            outputs = model(**{k: torch.from_numpy(v) for k, v in inputs.items()})
        return {name: t.numpy() for name, t in zip(spec.outputs, outputs)}

    def convert(self, model, spec, options, inputs, reference, opset, exporter, workdir: Path):
        import onnx
        import torch

        path = workdir / "model.onnx"
        example = {k: torch.from_numpy(v) for k, v in inputs.items()}
        input_names = [i.name for i in spec.inputs]
        output_names = list(spec.outputs)
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings and the legacy exporter's deprecation notice
            if exporter == "dynamo":
                batch = torch.export.Dim("batch")
                torch.onnx.export(
                    model, (), str(path), kwargs=example, dynamo=True, input_names=input_names,
                    output_names=output_names, dynamic_shapes={name: {0: batch} for name in input_names},
                    opset_version=opset, external_data=False, optimize=True, verbose=False)
            else:
                dynamic_axes = {name: {0: "batch"} for name in input_names + output_names}
                kwargs = {} if opset is None else {"opset_version": opset}
                torch.onnx.export(
                    model, tuple(example[name] for name in input_names), str(path), dynamo=False,
                    input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes,
                    do_constant_folding=True, **kwargs)
        if Path(f"{path}.data").exists():
            raise ExportError("the exporter wrote a side .onnx.data file; expected one self-contained file")
        return onnx.load(str(path))


def export_onnx(request: ExportRequest) -> ExportResult:
    """Export request.model to request.output_path; every failure becomes an error result (never raises)."""
    return run_export(request, TorchExporter())
