"""Runtimes: framework x model format x execution provider, and what each needs from the host."""
from __future__ import annotations

from dataclasses import dataclass

from runners.adapters import ADAPTERS
from runners.cli import EXPORTERS

NATIVE_FRAMEWORKS = ("torch", "tensorflow", "mxnet")
NATIVE_PROVIDERS = ("cpu", "cuda")
ONNX_PROVIDERS = ("cpu", "cuda", "tensorrt")
GPU_PROVIDERS = frozenset({"cuda", "tensorrt"})

# What the runners implement, read from their registries (which import no framework). A runtime outside these
# is planned as skipped with the reason, so a config can still show the whole matrix.
IMPLEMENTED_RUNNERS = frozenset(entry.framework for entry in ADAPTERS)
ONNX_EXPORT_SOURCES = frozenset(EXPORTERS)


class UnknownRuntimeError(ValueError):
    pass


@dataclass(frozen=True)
class Runtime:
    framework: str
    model_format: str  # "native" | "onnx-from-<source framework>"
    provider: str

    @property
    def name(self) -> str:
        return f"{self.framework}/{self.model_format}/{self.provider}"

    @property
    def source_framework(self) -> str | None:
        """The framework an ONNX model is exported from (in that framework's environment)."""
        prefix = "onnx-from-"
        return self.model_format[len(prefix):] if self.model_format.startswith(prefix) else None

    @property
    def needs_gpu(self) -> bool:
        return self.provider in GPU_PROVIDERS

    @property
    def environment(self) -> str:
        """The images/<environment>/ folder whose requirements build this runtime's venv or image."""
        if self.framework == "onnxruntime":
            return {"cpu": "onnxruntime", "cuda": "onnxruntime-cuda", "tensorrt": "onnxruntime-tensorrt"}[self.provider]
        return self.framework

    def not_implemented_reason(self, runners: frozenset[str] = IMPLEMENTED_RUNNERS,
                               export_sources: frozenset[str] = ONNX_EXPORT_SOURCES) -> str | None:
        if self.framework not in runners:
            return f"no {self.framework} runner in this version of greenrt"
        source = self.source_framework
        if source is not None and source not in export_sources:
            return f"no ONNX export from {source} in this version of greenrt"
        return None


def all_runtime_names() -> list[str]:
    names = [f"{fw}/native/{p}" for fw in NATIVE_FRAMEWORKS for p in NATIVE_PROVIDERS]
    names += [f"onnxruntime/onnx-from-{fw}/{p}" for fw in NATIVE_FRAMEWORKS for p in ONNX_PROVIDERS]
    return names


def parse_runtime(name: str) -> Runtime:
    if name not in all_runtime_names():
        raise UnknownRuntimeError(f"unknown runtime {name!r}; valid: {', '.join(all_runtime_names())}")
    framework, model_format, provider = name.split("/")
    return Runtime(framework, model_format, provider)
