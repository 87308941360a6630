"""Lazy registry of framework adapters, keyed by (framework, model format).

Importing this module imports no framework: an entry names the module and class, which are imported only when a
request for that runtime is executed.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from runners.loop import Adapter, UnsupportedError


@dataclass(frozen=True)
class AdapterEntry:
    framework: str
    model_format: str  # exact, or a prefix ending in "-" ("onnx-from-" matches onnx-from-torch, ...)
    module: str
    cls: str
    providers: tuple[str, ...]

    def matches(self, framework: str, model_format: str) -> bool:
        if framework != self.framework:
            return False
        if self.model_format.endswith("-"):
            return model_format.startswith(self.model_format) and len(model_format) > len(self.model_format)
        return model_format == self.model_format


ADAPTERS: tuple[AdapterEntry, ...] = (
    AdapterEntry("torch", "native", "runners.adapters.torch_native", "TorchNativeAdapter", ("cpu", "cuda")),
    AdapterEntry("tensorflow", "native", "runners.adapters.tensorflow_native", "TensorflowNativeAdapter",
                 ("cpu", "cuda")),
    AdapterEntry("mxnet", "native", "runners.adapters.mxnet_native", "MxnetNativeAdapter", ("cpu", "cuda")),
    AdapterEntry("onnxruntime", "onnx", "runners.adapters.onnxruntime_session", "OnnxRuntimeAdapter",
                 ("cpu", "cuda", "tensorrt")),
    AdapterEntry("onnxruntime", "onnx-from-", "runners.adapters.onnxruntime_session", "OnnxRuntimeAdapter",
                 ("cpu", "cuda", "tensorrt")),
)


def supported_runtimes() -> list[str]:
    """Runtime patterns this runner knows, e.g. 'torch/native/{cpu,cuda}'."""
    out = []
    for e in ADAPTERS:
        fmt = e.model_format + "<framework>" if e.model_format.endswith("-") else e.model_format
        out.append(f"{e.framework}/{fmt}/{{{','.join(e.providers)}}}")
    return out


def resolve(runtime: str) -> AdapterEntry:
    parts = runtime.split("/")
    if len(parts) != 3:
        raise UnsupportedError(f"runtime {runtime!r} is not framework/format/provider; known: {', '.join(supported_runtimes())}")
    framework, model_format, provider = parts
    for entry in ADAPTERS:
        if entry.matches(framework, model_format):
            if provider not in entry.providers:
                raise UnsupportedError(
                    f"runtime {runtime}: provider {provider!r} is not one of {framework}/{model_format}'s "
                    f"({', '.join(entry.providers)})")
            return entry
    raise UnsupportedError(f"no adapter for runtime {runtime!r}; known: {', '.join(supported_runtimes())}")


def adapter_class(runtime: str) -> type[Adapter]:
    entry = resolve(runtime)
    return getattr(importlib.import_module(entry.module), entry.cls)


def create_adapter(request) -> Adapter:
    """A new adapter for request.runtime (imports the adapter module, which still imports no framework)."""
    return adapter_class(request.runtime)()
