"""Runtimes: framework x model format x execution provider, and what each needs from the host.

Everything here is read from the one table of runtimes, runners.runtimes_table (standard library only), which the
runners' adapter registry and the adapters' own checks read as well.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runners import clients
from runners import runtimes_table as table


def _providers(model_format: str) -> tuple[str, ...]:
    """The providers of the table's families of `model_format`, in the table's order."""
    return tuple(dict.fromkeys(p for f in table.FAMILIES if f.model_format == model_format for p in f.providers))


NATIVE_FRAMEWORKS = table.NATIVE_FRAMEWORKS
NATIVE_PROVIDERS = _providers("native")
ONNX_PROVIDERS = _providers(table.ONNX_FROM)
GPU_PROVIDERS = table.GPU_PROVIDERS

# What the runners implement, read from the table (which imports no framework). A runtime outside these is planned
# as skipped with the reason, so a config can still show the whole matrix.
# A family whose adapter module is not in this checkout yet (a runtime being added) is not implemented: its
# environment may not exist either.
IMPLEMENTED_RUNNERS = frozenset(family.framework for family in table.FAMILIES if table.adapter_present(family))
ONNX_EXPORT_SOURCES = frozenset(table.ONNX_EXPORTERS)


class UnknownRuntimeError(ValueError):
    pass


@dataclass(frozen=True)
class Runtime:
    framework: str
    model_format: str  # "native" | "onnx-from-<source framework>"
    provider: str
    # The client that drives it (runners/clients.py: "node", "cpp", "python"); None: the Python runner in the
    # runtime's own environment (an id without a suffix, as every id written before clients existed).
    client: str | None = None

    @property
    def base_name(self) -> str:
        """framework/format/provider, without the client suffix: what the table, exports and references know."""
        return f"{self.framework}/{self.model_format}/{self.provider}"

    @property
    def name(self) -> str:
        return self.base_name + (f"{clients.SEPARATOR}{self.client}" if self.client else "")

    @property
    def python_client(self) -> bool:
        """Whether `python -m runners` runs it (no suffix, or @python), rather than a runner in another language."""
        return self.client in (None, clients.PYTHON)

    @property
    def source_framework(self) -> str | None:
        """The framework a converted model (ONNX, TFLite) is exported from (in that framework's environment); for a
        generative runtime, the one whose environment makes the Hugging Face checkpoint it is converted from."""
        if self.generative:
            return table.CHECKPOINT_FRAMEWORK
        converted = table.converted_format(self.model_format)
        if converted:
            return converted[1]
        return self.framework if self.saves_itself else None

    @property
    def saves_itself(self) -> bool:
        """A framework's own model saved as a file in its own environment (torch/torchscript, torch/aoti: the files
        the C++ client runs too): exported like a converted model, by EXPORTERS[(framework, model_format)]."""
        return not self.generative and (self.framework, self.model_format) in table.EXPORTERS

    @property
    def target_format(self) -> str | None:
        """The file format of the converted model this runtime loads ("onnx", "tflite"; a generative runtime's own
        format, or "hf-checkpoint" for one that loads the checkpoint as is); None where it loads none."""
        if self.generative:
            return self.conversion[1] if self.conversion else table.CHECKPOINT_TARGET
        converted = table.converted_format(self.model_format)
        if converted:
            return converted[0]
        return self.model_format if self.saves_itself else None

    @property
    def generative(self) -> bool:
        """A runtime of generative models (a generate call per inference), converted from a Hugging Face
        checkpoint folder (runtimes_table Family.kind)."""
        family = table.find(self.framework, self.model_format)
        return family is not None and family.generative

    @property
    def conversion(self) -> tuple[str, str] | None:
        """A generative runtime's conversion of the checkpoint: (the framework whose environment runs it, the
        target format; runtimes_table.EXPORTERS' key); None where it loads the checkpoint folder as is."""
        family = table.find(self.framework, self.model_format)
        return family.conversion(self.provider) if family is not None and family.generative else None

    @property
    def reference_framework(self) -> str | None:
        """Whose native CPU run this runtime's outputs are compared with (fidelity): a converted model's source
        framework, a compiler's own framework, and for a framework's native GPU runtime the framework itself (its
        kernels, cuDNN's algorithms and an fp16 cell's arithmetic are not the CPU's: an fp16 overflow or a broken
        kernel must show); None for a framework's native CPU runtime (it is the reference). A generative runtime's
        reference is transformers' generate on the CPU at fp32 (runtimes_table.GENERATIVE_REFERENCE_RUNTIME) on
        the same checkpoint; that runtime is the reference itself."""
        if self.generative:
            reference = table.GENERATIVE_REFERENCE_RUNTIME
            return None if self.name == reference else reference.split("/")[0]
        if self.source_framework is not None:
            return self.source_framework
        if self.model_format == "onnx":  # a user's ONNX file: compared with ONNX Runtime's CPU provider on it
            return None if (self.framework, self.provider) == ("onnxruntime", "cpu") else "onnxruntime"
        if self.model_format == "native":
            return self.framework if self.provider in GPU_PROVIDERS else None
        family = table.find(self.framework, self.model_format)
        return self.framework if family is not None and family.compiled else None

    @property
    def reference_runtime(self) -> str | None:
        """The runtime of the reference run (reference_framework's native CPU run; ONNX Runtime's CPU provider on the
        same file for a user's ONNX file)."""
        reference = self.reference_framework
        if reference is None:
            return None
        if self.generative:
            return table.GENERATIVE_REFERENCE_RUNTIME
        return "onnxruntime/onnx/cpu" if self.model_format == "onnx" else f"{reference}/native/cpu"

    @property
    def needs_gpu(self) -> bool:
        return self.provider in GPU_PROVIDERS

    @property
    def environment(self) -> str:
        """The images/<environment>/ folder whose requirements build this runtime's venv or image (a client's own,
        for a runtime id with a client suffix)."""
        if self.client is not None:
            return clients.CLIENTS[self.client].environment
        family = table.find(self.framework, self.model_format)
        if family is None or self.provider not in family.environments:
            return self.framework
        return family.environments[self.provider]

    def not_implemented_reason(self, runners: frozenset[str] = IMPLEMENTED_RUNNERS,
                               export_sources: frozenset[str] = ONNX_EXPORT_SOURCES) -> str | None:
        if self.framework not in runners:
            return f"no {self.framework} runner in this version of greenrt"
        if self.generative:
            family = table.find(self.framework, self.model_format)
            if family is None or not table.adapter_present(family):
                return f"no {self.framework}/{self.model_format} runner in this version of greenrt"
            needed = [(table.CHECKPOINT_FRAMEWORK, table.CHECKPOINT_TARGET)] + ([self.conversion] if self.conversion
                                                                               else [])
            absent = [f"{target} conversion (in {framework}'s environment)" for framework, target in needed
                      if not _exporter_present(framework, target)]
            return f"no {absent[0]} in this version of greenrt" if absent else None
        source = self.source_framework
        if source is not None and self.target_format == "onnx" and source not in export_sources:
            return f"no ONNX export from {source} in this version of greenrt"
        if source is not None and self.target_format != "onnx" and (source, self.target_format) not in table.EXPORTERS:
            return f"no {self.target_format} export from {source} in this version of greenrt"
        return None


def _exporter_present(framework: str, target: str) -> bool:
    """Whether EXPORTERS names a converter for (framework, target) whose module is in this checkout (read as a
    file, nothing imported, as table.adapter_present reads an adapter's)."""
    exporter = table.EXPORTERS.get((framework, target))
    source_root = Path(table.__file__).resolve().parents[1]  # where runners/ and models/ are
    return exporter is not None and source_root.joinpath(*exporter.split(":")[0].split(".")).with_suffix(".py").is_file()


def all_runtime_names() -> list[str]:
    return table.runtime_names()


def client_runtime_names() -> list[str]:
    """Every runtime id with a client suffix a sweep may name (base@client, runners/clients.py), in table order."""
    return [f"{base}{clients.SEPARATOR}{client}" for base in all_runtime_names() for client in clients.clients_of(base)]


def parse_runtime(name: str) -> Runtime:
    """The runtime of an id framework/format/provider[@client]; UnknownRuntimeError naming the valid ids."""
    base, client = clients.split_client(name)
    if base not in all_runtime_names():
        raise UnknownRuntimeError(f"unknown runtime {name!r}; valid: {', '.join(all_runtime_names())}; with a client: "
                                  f"{', '.join(client_runtime_names())}")
    refusal = clients.client_refusal(name)
    if refusal:
        raise UnknownRuntimeError(f"runtime {name!r}: {refusal}")
    framework, model_format, provider = base.split("/")
    return Runtime(framework, model_format, provider, client)
