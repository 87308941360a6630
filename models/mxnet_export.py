"""ONNX export from MXNet (runs in the mxnet environment): `export_onnx(ExportRequest) -> ExportResult`.

Route: the hybridised Gluon block (models.mxnet_models) is run once and exported (HybridBlock.export: symbol JSON +
.params), then converted by MXNet's own converter, `mx.onnx.export_model`, with a dynamic batch dimension
(dynamic=True, dynamic_input_shapes with None in the batch position); the other axes (image size, seq_len) are
fixed from the model options.

Opset: export_model has no opset argument; it writes onnx.defs.onnx_opset_version(), 18 with onnx 1.13.1, but MXNet
1.9's converter has operator translations for opsets 12 and 13 only, and writes the opset-13 form of an operator
under an opset-18 header: BERT then fails (`ReduceMean` with an `axes` attribute, an input since opset 18).  So the
exporter makes export_model see the requested opset (default 13, also 12; nothing else is valid for this
converter) for the duration of the call, and records the opset read back from the written file.

Post-processing with the onnx package, so that one ONNX Runtime runner serves every source framework:
- the initializers (weights) are removed from the graph inputs.  MXNet lists every weight as a graph input too,
  which makes them overridable at run time and so stops ONNX Runtime from constant-folding them (ResNet-50 batch 1
  on 2 cores: 24.8 ms with them, 17.7 ms without, see FINDINGS);
- the graph inputs and outputs are renamed to the registry's (pixel_values; input_ids, attention_mask,
  token_type_ids; logits; last_hidden_state, pooler_output), outputs in the registry's order, and the batch axis of
  each is named "batch", as the torch exporter writes them.

The flow is models.export_flow's: the written file is run in ONNX Runtime CPU (graph optimisation ALL) on
make_inputs(seed 0, batch 2) and compared with MXNet by models.fidelity.compare_outputs; max_abs_diff is recorded,
and an unfaithful model, or one that ONNX Runtime refuses to load or run, fails the export (status "error", kind
"export", the converter's or ONNX Runtime's own message).  Only a verified file reaches output_path (temporary
file, then a rename).
"""
from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any

from models.export_flow import ExportError, SourceExporter, run_export
from runners.protocol import ExportRequest, ExportResult, Weights

DEFAULT_OPSET = 13
SUPPORTED_OPSETS = (12, 13)  # MXNet 1.9's mx2onnx has translations for these two only


@contextlib.contextmanager
def _onnx_opset(opset: int):
    """Make mx.onnx.export_model target `opset` for the duration of the call; restored on exit.

    export_model and onnx.helper.make_model read onnx.defs.onnx_opset_version() at call time; the converter's
    final onnx.checker.check_graph(graph) uses onnx.checker.DEFAULT_CONTEXT, whose opset onnx fixed at import
    (its newest): left alone, it rejects the opset-13 form of ReduceMean (axes attribute) in BERT.
    """
    import onnx.checker
    import onnx.defs

    original = onnx.defs.onnx_opset_version
    checker_opsets = dict(onnx.checker.DEFAULT_CONTEXT.opset_imports)
    onnx.defs.onnx_opset_version = lambda: opset
    onnx.checker.DEFAULT_CONTEXT.opset_imports = {**checker_opsets, "": opset}
    try:
        yield
    finally:
        onnx.defs.onnx_opset_version = original
        onnx.checker.DEFAULT_CONTEXT.opset_imports = checker_opsets


def _mx_output_names(symbol) -> list[str]:
    """The ONNX names mx2onnx gives the symbol's outputs, in the symbol's order (its own rule: '_output' dropped)."""
    import re

    names = []
    for name in symbol.list_outputs():
        if name.endswith("_output"):
            names.append(name[: -len("_output")])
        elif re.search(r".*_output[0-9]$", name):
            names.append(name[: -len("_output0")] + name[-1])
        else:
            names.append(name)
    return names


def _rename(graph, old: str, new: str) -> None:
    """Rename a value everywhere it is produced or consumed."""
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
    for coll in (graph.input, graph.output, graph.value_info):
        for vi in coll:
            if vi.name == old:
                vi.name = new


def postprocess(model, input_map: dict[str, str], output_map: dict[str, str], output_order: list[str],
                output_shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """Weights out of the graph inputs; registry names for inputs and outputs; a named batch axis.

    input_map / output_map: converter's name -> registry name.  Returns what was changed (for the record).
    """
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    kept = [vi for vi in graph.input if vi.name not in initializers]
    removed = len(graph.input) - len(kept)
    del graph.input[:]
    graph.input.extend(kept)

    have_in = [vi.name for vi in graph.input]
    if sorted(have_in) != sorted(input_map):
        raise ExportError(f"the converter's graph inputs {have_in} are not the exported symbol's {sorted(input_map)}")
    have_out = [vi.name for vi in graph.output]
    if sorted(have_out) != sorted(output_map):
        raise ExportError(f"the converter's graph outputs {have_out} are not the symbol's {sorted(output_map)}")
    clash = (set(input_map.values()) | set(output_map.values())) & (
        {n for node in graph.node for n in (*node.input, *node.output)} | initializers) - set(input_map) - set(output_map)
    if clash:
        raise ExportError(f"registry name(s) {sorted(clash)} already name values inside the converted graph")
    for old, new in {**input_map, **output_map}.items():
        if old != new:
            _rename(graph, old, new)
    by_name = {vi.name: vi for vi in graph.output}
    ordered = [by_name[name] for name in output_order]
    for vi in ordered:  # the converter leaves every output dimension unknown with dynamic=True
        shape = output_shapes[vi.name]
        dims = vi.type.tensor_type.shape.dim
        del dims[:]
        for i, size in enumerate(shape):
            dim = dims.add()
            if i == 0:
                dim.dim_param = "batch"
            else:
                dim.dim_value = int(size)
    outputs = [type(ordered[0])() for _ in ordered]
    for dst, src in zip(outputs, ordered):
        dst.CopyFrom(src)
    del graph.output[:]
    graph.output.extend(outputs)
    for vi in graph.input:
        dim = vi.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = "batch"
    return {"initializers_removed_from_inputs": removed}


class MXNetExporter(SourceExporter):
    framework = "mxnet"
    source = "MXNet"
    exporters = ("mx2onnx",)
    distributions = ("mxnet", "gluonnlp", "onnx", "protobuf", "onnxruntime", "numpy")

    def resolve_opset(self, requested: int | None) -> int:
        opset = DEFAULT_OPSET if requested is None else requested
        if opset not in SUPPORTED_OPSETS or isinstance(opset, bool):
            raise ExportError(f"opset {opset!r} is not supported by MXNet's ONNX converter; valid: "
                              f"{', '.join(map(str, SUPPORTED_OPSETS))} (it has no translations for later opsets)",
                              "bad-request")
        return opset

    def describe(self, exporter: str, versions: dict[str, str]) -> str:
        return (f"mxnet.onnx.export_model (mxnet {versions.get('mxnet', '?')}, "
                f"onnx {versions.get('onnx', '?')})")

    def load(self, spec, options: dict[str, Any], weights: Weights):
        import mxnet as mx

        from models.mxnet_models import build_mxnet_model

        return build_mxnet_model(spec.name, options, weights, ctx=mx.cpu())

    def reference(self, block, spec, options: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        import mxnet as mx

        outs = block(*(mx.nd.array(inputs[i.name], dtype=inputs[i.name].dtype) for i in spec.inputs))
        outs = outs if isinstance(outs, (tuple, list)) else (outs,)
        return {name: o.asnumpy() for name, o in zip(spec.outputs, outs)}

    def convert(self, block, spec, options, inputs, reference, opset, exporter, workdir: Path):
        import mxnet as mx
        import onnx

        input_names = [i.name for i in spec.inputs]
        output_names = list(spec.outputs)
        prefix = str(workdir / "model")
        block.export(prefix, epoch=0)
        symbol_file, params_file = f"{prefix}-symbol.json", f"{prefix}-0000.params"
        symbol = mx.sym.load(symbol_file)
        exported_inputs = ["data"] if len(input_names) == 1 else [f"data{i}" for i in range(len(input_names))]
        input_map = dict(zip(exported_inputs, input_names))
        mx_outputs = _mx_output_names(symbol)
        if len(mx_outputs) != len(output_names):
            raise ExportError(f"the exported symbol has {len(mx_outputs)} outputs, the registry names "
                              f"{len(output_names)}")
        output_map = dict(zip(mx_outputs, output_names))
        # in_shapes/in_types follow the symbol's own order of its data inputs (what export_model binds them to).
        data_order = [n for n in symbol.list_inputs() if n in input_map]
        if sorted(data_order) != sorted(exported_inputs):
            raise ExportError(f"the exported symbol's data inputs {data_order} are not {exported_inputs}")
        in_shapes = [inputs[input_map[n]].shape for n in data_order]
        in_types = [inputs[input_map[n]].dtype for n in data_order]
        dynamic_shapes = [(None, *shape[1:]) for shape in in_shapes]

        raw = str(workdir / "raw.onnx")
        with _onnx_opset(opset), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # mx2onnx's use of onnx.mapping, once per tensor
            mx.onnx.export_model(symbol_file, params_file, in_shapes=in_shapes, in_types=in_types,
                                 onnx_file_path=raw, dynamic=True, dynamic_input_shapes=dynamic_shapes)
        model = onnx.load(raw)
        postprocess(model, input_map, output_map, output_names,
                    {name: reference[name].shape for name in output_names})
        onnx.checker.check_model(model)  # in memory: every model here is far below protobuf's 2 GB
        return model


def export_onnx(request: ExportRequest) -> ExportResult:
    """Export request.model to request.output_path; every failure becomes an error result (never raises)."""
    return run_export(request, MXNetExporter())
