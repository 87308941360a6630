"""The one table of runtimes: per framework and model format, its adapter, its execution providers (which of them
need a GPU, the environment each runs in), its precisions, and the frameworks an ONNX model is exported from.

Read by the runner's adapter registry (runners.adapters), the adapters' request check (runners.adapters.contract)
and the orchestrator's runtimes (orchestrator.planning.runtimes), so that a provider is declared once.  The bottom
of runners/: standard library only, imports nothing of greenrt and no framework.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# Execution provider -> whether it needs an NVIDIA GPU.
PROVIDERS: dict[str, bool] = {"cpu": False, "cuda": True, "tensorrt": True}
GPU_PROVIDERS = frozenset(name for name, gpu in PROVIDERS.items() if gpu)

PRECISIONS = ("fp32", "fp16")
ONNX_FROM = "onnx-from-"  # the model format of an ONNX model exported from a source framework: onnx-from-<framework>


@dataclass(frozen=True)
class Family:
    """The runtimes framework/model_format/<provider>, one adapter class for all of its providers."""

    framework: str
    model_format: str  # exact, or a prefix ending in "-" (ONNX_FROM matches onnx-from-torch, ...)
    module: str  # the adapter's module and class, imported only when a request for this family is executed
    cls: str
    environments: dict[str, str] = field(hash=False)  # provider -> the images/<environment>/ it runs in, in order
    precisions: tuple[str, ...] = PRECISIONS
    fp16_providers: tuple[str, ...] | None = None  # where fp16 is measured; None: on every provider
    exporter: str | None = None  # native only: "module:function" converting this framework's models to ONNX
    # A compiler of the framework's own model in its own environment (torch.compile, XLA): its outputs are compared
    # with the framework's native CPU run, as a converted model's are with its source's.
    compiled: bool = False
    # A converted format (model_format a prefix such as ONNX_FROM): the source frameworks it is converted from;
    # None: every framework with an ONNX exporter.
    sources: tuple[str, ...] | None = None

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(self.environments)

    @property
    def pattern(self) -> str:
        """e.g. 'torch/native/{cpu,cuda}', 'onnxruntime/onnx-from-<framework>/{cpu,cuda,tensorrt}'."""
        fmt = self.model_format + "<framework>" if self.model_format.endswith("-") else self.model_format
        return f"{self.framework}/{fmt}/{{{','.join(self.providers)}}}"

    def matches(self, framework: str, model_format: str) -> bool:
        if framework != self.framework:
            return False
        if self.model_format.endswith("-"):
            return model_format.startswith(self.model_format) and len(model_format) > len(self.model_format)
        return model_format == self.model_format

    @property
    def label(self) -> str:
        """How messages name the family: 'torch/native'; 'onnxruntime' (one adapter for every ONNX format)."""
        return f"{self.framework}/{self.model_format}" if self.model_format == "native" else self.framework

    def provider_refusal(self, provider: str) -> str | None:
        """Why `provider` is not one of this family's (None when it is)."""
        if provider in self.environments:
            return None
        return f"{self.label} has no provider {provider!r}; valid: {', '.join(self.providers)}"

    def precision_refusal(self, precision: str, provider: str) -> str | None:
        """Why this family does not measure `precision` on `provider` (None when it does)."""
        if precision not in self.precisions:
            return f"{self.label}: precision {precision!r} is not one of {', '.join(self.precisions)}"
        if precision == "fp16" and self.fp16_providers is not None and provider not in self.fp16_providers:
            return (f"{self.label}: fp16 is measured on {' and '.join(self.fp16_providers)} only (CPU "
                    f"half-precision kernels are not a deployment target)")
        return None

    def refusal(self, provider: str, precision: str) -> str | None:
        """Why this family cannot run `precision` on `provider`, or None."""
        return self.provider_refusal(provider) or self.precision_refusal(precision, provider)


def _native(framework: str, adapter: str, exporter: str) -> Family:
    module, cls = adapter.split(":")
    return Family(framework, "native", f"runners.adapters.{module}", cls,
                  {"cpu": framework, "cuda": framework}, fp16_providers=("cuda",), exporter=exporter)


_ORT_ENVIRONMENTS = {"cpu": "onnxruntime", "cuda": "onnxruntime-cuda", "tensorrt": "onnxruntime-tensorrt"}
_ORT = ("runners.adapters.onnxruntime_session", "OnnxRuntimeAdapter")

FAMILIES: tuple[Family, ...] = (
    _native("torch", "torch_native:TorchNativeAdapter", "models.torch_export:export_onnx"),
    _native("tensorflow", "tensorflow_native:TensorflowNativeAdapter", "models.tensorflow_export:export_onnx"),
    _native("mxnet", "mxnet_native:MxnetNativeAdapter", "models.mxnet_export:export_onnx"),
    # An .onnx file given as is, and one exported from a source framework (what a sweep plans).
    Family("onnxruntime", "onnx", *_ORT, _ORT_ENVIRONMENTS),
    Family("onnxruntime", ONNX_FROM, *_ORT, _ORT_ENVIRONMENTS),
)

NATIVE_FRAMEWORKS = tuple(f.framework for f in FAMILIES if f.model_format == "native")
# The frameworks an ONNX model is exported from (in that framework's environment), and the exporter of each.
ONNX_SOURCE_FRAMEWORKS = NATIVE_FRAMEWORKS
ONNX_EXPORTERS: dict[str, str] = {f.framework: f.exporter for f in FAMILIES if f.model_format == "native" and f.exporter}


def find(framework: str, model_format: str) -> Family | None:
    return next((f for f in FAMILIES if f.matches(framework, model_format)), None)


def runtime_names() -> list[str]:
    """Every runtime a sweep may name: framework/<format>/<provider> for each family of the table, a converted
    format once per source (onnxruntime/onnx-from-<source>/<provider>). The bare "onnx" format (a file given as is)
    is not a sweep's runtime."""
    names = []
    for family in FAMILIES:
        if family.model_format.endswith("-"):
            sources = family.sources if family.sources is not None else ONNX_SOURCE_FRAMEWORKS
            names += [f"{family.framework}/{family.model_format}{source}/{p}"
                      for source in sources for p in family.providers]
        elif family.model_format != "onnx":
            names += [f"{family.framework}/{family.model_format}/{p}" for p in family.providers]
    return names
