"""The one table of runtimes: per framework and model format, its adapter, its execution providers (which of them
need a GPU, the environment each runs in), its precisions, the frameworks an ONNX model is exported from, the
generative runtimes and the conversion each needs from a Hugging Face checkpoint, and the provider options each
adapter accepts (ONNX Runtime's session.* entries among them), which a sweep's config is
checked against before anything runs.

Read by the runner's adapter registry (runners.adapters), the adapters' request check (runners.adapters.contract)
and the orchestrator's runtimes (orchestrator.planning.runtimes), so that a provider is declared once.  The bottom
of runners/: standard library only, imports nothing of greenrt and no framework.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from runners.ort_session_keys import SESSION_CONFIG_KEYS

# Execution provider -> whether it needs an NVIDIA GPU.
PROVIDERS: dict[str, bool] = {"cpu": False, "cuda": True, "tensorrt": True, "openvino": False}
GPU_PROVIDERS = frozenset(name for name, gpu in PROVIDERS.items() if gpu)

PRECISIONS = ("fp32", "fp16", "tf32")
# Weight-quantized precisions of the generative runtimes (their own schemes: Family.schemes); int8 is also the
# quantized QDQ ONNX model's precision.
INT8, INT4 = "int8", "int4"
# tf32: fp32 data with TensorFloat-32 tensor-core math allowed (runners/math_policy.py); "fp32" is strict IEEE fp32.
TF32_PROVIDERS = ("cuda", "tensorrt")
ONNX_FROM = "onnx-from-"  # the model format of an ONNX model exported from a source framework: onnx-from-<framework>
TFLITE_FROM = "tflite-from-"  # a TensorFlow Lite (LiteRT) model converted from a source framework
# Converted model formats: the prefix of the runtime's model format -> the file format exported (ExportRequest.target).
CONVERTED_FORMATS: dict[str, str] = {ONNX_FROM: "onnx", TFLITE_FROM: "tflite"}


# What one inference is, per model and runtime kind: "forward", one forward pass of a batch (the classifiers and
# encoders); "generative", one generate call of a batch of prompts producing exactly N new tokens each (docs/
# generative.md). A model pairs only with runtimes of its kind (models.registry.ModelSpec.kind).
FORWARD, GENERATIVE = "forward", "generative"
KINDS = (FORWARD, GENERATIVE)
# Generative runtimes are converted from, and judged against, one Hugging Face checkpoint folder per model and
# weights: made in the torch environment by the exporter of (CHECKPOINT_FRAMEWORK, CHECKPOINT_TARGET) for a
# built-in model, a user's own folder as is. The reference outputs are this runtime's, at fp32.
CHECKPOINT_FRAMEWORK, CHECKPOINT_TARGET = "torch", "hf-checkpoint"
CHECKPOINT_VIEW_TARGET = "hf-checkpoint-view"
GENERATIVE_REFERENCE_RUNTIME = "torch/transformers/cpu"


@dataclass(frozen=True)
class CpuPrecision:
    """What a precision asks of a CPU, by the flags Linux reports in /proc/cpuinfo (x86 names; Arm's in brackets)."""

    needs: tuple[str, ...] = ()  # any one of these, or a CPU cell at this precision is skipped with the reason
    fast: tuple[str, ...] = ()  # any one of these, or it runs without its fast kernels (recorded, not skipped)
    fast_label: str = ""


CPU_PRECISIONS: dict[str, CpuPrecision] = {
    # int8 runs on every x86-64 and Arm CPU (ONNX Runtime's MLAS has SSE2 and NEON integer kernels), several times
    # faster with an int8 dot-product instruction: AVX512-VNNI, AVX-VNNI, AMX-INT8 (Arm: asimddp).
    "int8": CpuPrecision(fast=("avx512_vnni", "avx_vnni", "amx_int8", "asimddp"), fast_label="vnni"),
    # bf16 only where the CPU computes it: without AVX512-BF16 or AMX-BF16 (Arm: bf16) it is emulated in fp32.
    "bf16": CpuPrecision(needs=("avx512_bf16", "amx_bf16", "bf16")),
}


def cpu_precision_refusal(precision: str, cpu_flags: tuple[str, ...] | frozenset[str] | None) -> str | None:
    """Why a CPU whose flags are `cpu_flags` does not run `precision` (None when it does, or when the host reported
    no flags: then nothing is known to be missing). Pure."""
    need = CPU_PRECISIONS.get(precision)
    if need is None or not need.needs or cpu_flags is None or set(need.needs) & set(cpu_flags):
        return None
    return (f"{precision} needs a CPU with {' or '.join(need.needs)}; this host's CPU reports none of them "
            f"(it would be emulated, not measured)")


def cpu_precision_fast(precision: str, cpu_flags: tuple[str, ...] | frozenset[str] | None) -> dict[str, object]:
    """For the record: whether the CPU has the instructions that make `precision` fast, e.g. {"vnni": False,
    "vnni_flags": []}; {} for a precision without such instructions. Pure."""
    need = CPU_PRECISIONS.get(precision)
    if need is None or not need.fast:
        return {}
    if cpu_flags is None:
        return {need.fast_label: None, f"{need.fast_label}_flags": "the CPU reported no flags"}
    have = sorted(set(need.fast) & set(cpu_flags))
    return {need.fast_label: bool(have), f"{need.fast_label}_flags": have}


@dataclass(frozen=True)
class ModelLimits:
    """What a generative runtime cannot run, known from the model's config and the cell before anything is converted
    or loaded (FINDINGS): the planner skips such a cell with the reason, the adapter refuses such a request."""

    head_dim_multiple: int | None = None  # head_dim must be a multiple of this; None: any
    head_dim_why: str = ""
    max_batch: int | None = None  # the most sequences one generation holds; None: any batch
    batch_why: str = ""

    def head_dim_refusal(self, head_dim: int) -> str | None:
        if self.head_dim_multiple is None or head_dim % self.head_dim_multiple == 0:
            return None
        return f"head_dim {head_dim} is not a multiple of {self.head_dim_multiple} ({self.head_dim_why})"

    def batch_refusal(self, batch_size: int) -> str | None:
        if self.max_batch is None or batch_size <= self.max_batch:
            return None
        return f"batch {batch_size} > {self.max_batch} is not measured: {self.batch_why}"


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
    int8_providers: tuple[str, ...] | None = None  # where int8 (a quantized QDQ model) is measured; None: everywhere
    exporter: str | None = None  # native only: "module:function" converting this framework's models to ONNX
    # A compiler of the framework's own model in its own environment (torch.compile, XLA): its outputs are compared
    # with the framework's native CPU run, as a converted model's are with its source's.
    compiled: bool = False
    # A converted format (model_format a prefix such as ONNX_FROM): the source frameworks it is converted from;
    # None: every framework with an ONNX exporter.
    sources: tuple[str, ...] | None = None
    kind: str = FORWARD  # FORWARD or GENERATIVE: the models it runs
    # Generative only: the format the Hugging Face checkpoint is converted to for this runtime, in the runtime's
    # own environment (EXPORTERS[(framework, target)]); None where the runtime loads the checkpoint folder as is.
    target: str | None = None
    # Generative only: a provider whose converter writes another graph (ORT GenAI's builder for `-e cuda`: fp16 inputs
    # and outputs, accuracy level 0), and that graph's target; the others take `target`.
    provider_targets: dict[str, str] = field(default_factory=dict, hash=False)
    # Generative only: greenrt's precision -> the runtime's own scheme the converter is asked for (recorded).
    schemes: dict[str, str] = field(default_factory=dict, hash=False)
    # Generative only: the head_dim and batch sizes it cannot run (asked by the planner and by the adapter).
    limits: ModelLimits = ModelLimits()

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(self.environments)

    @property
    def generative(self) -> bool:
        return self.kind == GENERATIVE

    def conversion(self, provider: str) -> tuple[str, str] | None:
        """The EXPORTERS key converting a checkpoint into this generative runtime's format for `provider` (run in
        that provider's environment); None where it converts nothing."""
        target = self.provider_targets.get(provider, self.target)
        return (self.framework, target) if target is not None else None

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
        """How messages name the family: 'torch/native', 'torch/inductor'; 'onnxruntime', 'openvino' (a runtime of
        converted models: one adapter for every source)."""
        converted = self.model_format.endswith("-") or self.model_format == "onnx"
        return self.framework if converted else f"{self.framework}/{self.model_format}"

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
        if precision == "tf32" and provider not in TF32_PROVIDERS:
            return (f"{self.label}: tf32 is a GPU math mode (TensorFloat-32 tensor cores), measured on "
                    f"{' and '.join(p for p in TF32_PROVIDERS if p in self.providers) or 'GPU providers'} only")
        if precision == "int8" and self.int8_providers is not None and provider not in self.int8_providers:
            return (f"{self.label}: int8 is measured on {' and '.join(self.int8_providers)} only (the quantized QDQ "
                    f"model's integer kernels are CPU ones; TensorRT's INT8 needs its own calibration)")
        return None

    def head_dim_refusal(self, head_dim: int) -> str | None:
        """Why this runtime cannot run a model of this head_dim (None when it can)."""
        refusal = self.limits.head_dim_refusal(head_dim)
        return f"{self.framework}: {refusal}" if refusal else None

    def batch_refusal(self, batch_size: int) -> str | None:
        """Why this runtime cannot generate `batch_size` sequences at once (None when it can)."""
        refusal = self.limits.batch_refusal(batch_size)
        return f"{self.framework}: {refusal}" if refusal else None

    def refusal(self, provider: str, precision: str) -> str | None:
        """Why this family cannot run `precision` on `provider`, or None."""
        return self.provider_refusal(provider) or self.precision_refusal(precision, provider)


def _native(framework: str, adapter: str, exporter: str) -> Family:
    module, cls = adapter.split(":")
    return Family(framework, "native", f"runners.adapters.{module}", cls,
                  {"cpu": framework, "cuda": framework}, fp16_providers=("cuda",), exporter=exporter)


# openvino: ONNX Runtime's OpenVINO execution provider (device_type CPU), from the onnxruntime-openvino wheel.
_ORT_ENVIRONMENTS = {"cpu": "onnxruntime", "cuda": "onnxruntime-cuda", "tensorrt": "onnxruntime-tensorrt",
                     "openvino": "onnxruntime-openvino"}
_ORT = ("runners.adapters.onnxruntime_session", "OnnxRuntimeAdapter")

FAMILIES: tuple[Family, ...] = (
    _native("torch", "torch_native:TorchNativeAdapter", "models.torch_export:export_onnx"),
    _native("tensorflow", "tensorflow_native:TensorflowNativeAdapter", "models.tensorflow_export:export_onnx"),
    _native("mxnet", "mxnet_native:MxnetNativeAdapter", "models.mxnet_export:export_onnx"),
    # An .onnx file given as is, and one exported from a source framework (what a sweep plans).
    Family("onnxruntime", "onnx", *_ORT, _ORT_ENVIRONMENTS),
    # int8: the fp32 ONNX model quantized by models.quantize (QDQ, or dynamic for BERT), on the CPU providers.
    Family("onnxruntime", ONNX_FROM, *_ORT, _ORT_ENVIRONMENTS, precisions=(*PRECISIONS, "int8"),
           int8_providers=("cpu", "openvino")),
    # OpenVINO's own runtime on the converted ONNX model, CPU plugin (OpenVINO has no CUDA build).
    # int8: the same QDQ model as ONNX Runtime's (OpenVINO runs its QuantizeLinear/DequantizeLinear pairs as int8).
    Family("openvino", ONNX_FROM, "runners.adapters.openvino_runtime", "OpenVinoAdapter", {"cpu": "openvino"},
           precisions=("fp32", "int8")),
    # OpenVINO's own runtime on a user's ONNX file as is (models.user_models), CPU plugin.
    Family("openvino", "onnx", "runners.adapters.openvino_runtime", "OpenVinoAdapter", {"cpu": "openvino"},
           precisions=("fp32",)),
    # torch.compile with inductor: the native PyTorch model compiled in warm-up (C++/OpenMP on cpu, Triton on cuda).
    Family("torch", "inductor", "runners.adapters.torch_compiled", "TorchCompiledAdapter",
           {"cpu": "torch", "cuda": "torch"}, fp16_providers=("cuda",), compiled=True),
    # XLA: the native Keras model in one tf.function(jit_compile=True), compiled in warm-up.
    Family("tensorflow", "xla", "runners.adapters.tensorflow_xla", "TensorflowXlaAdapter",
           {"cpu": "tensorflow", "cuda": "tensorflow"}, fp16_providers=("cuda",), compiled=True),
    # LiteRT (TensorFlow Lite) on a model converted in the tensorflow environment; CPU only (no CUDA build).
    Family("litert", TFLITE_FROM, "runners.adapters.litert_interpreter", "LiteRtAdapter", {"cpu": "litert"},
           precisions=("fp32",), sources=("tensorflow",)),
    # Generative runtimes (docs/generative.md), each on the same Hugging Face checkpoint: transformers' generate
    # loads it as is; the others load what their own converter made of it, in their own environment.
    Family("torch", "transformers", "runners.adapters.torch_generate", "TorchGenerateAdapter",
           {"cpu": "torch", "cuda": "torch"}, precisions=("fp32", "fp16"), fp16_providers=("cuda",),
           kind=GENERATIVE),
    # int4: the model builder's MatMulNBits (block 32, symmetric: its defaults are recorded by the converter).
    Family("onnxruntime-genai", "genai-from-hf", "runners.adapters.ort_genai", "OrtGenaiAdapter",
           {"cpu": "onnxruntime-genai", "cuda": "onnxruntime-genai-cuda"}, precisions=("fp32", INT4),
           kind=GENERATIVE, target="ort-genai", provider_targets={"cuda": "ort-genai-cuda"},
           schemes={"fp32": "fp32", INT4: "int4"},
           # Its GroupQueryAttention kernels: a head_dim of 24 builds, then fails at run time (FINDINGS).
           limits=ModelLimits(head_dim_multiple=16, head_dim_why="its GroupQueryAttention kernels need one: the "
                              "model builds, then fails at run time")),
    Family("ctranslate2", "ct2-from-hf", "runners.adapters.ctranslate2_generator", "Ctranslate2Adapter",
           {"cpu": "ctranslate2"}, precisions=("fp32", INT8), kind=GENERATIVE, target="ct2",
           schemes={"fp32": "float32", INT8: "int8"}),
    # optimum-intel's weight compression (int8: per channel; int4: group size 32, symmetric; FINDINGS).
    Family("openvino-genai", "ir-from-hf", "runners.adapters.openvino_genai", "OpenvinoGenaiAdapter",
           {"cpu": "openvino-genai"}, precisions=("fp32", INT8, INT4), kind=GENERATIVE, target="openvino-genai",
           schemes={"fp32": "fp32", INT8: "int8", INT4: "int4"}),
    # GGUF written from the checkpoint; f16 is a CPU deployment format too, so fp16 is measured on every provider.
    Family("llama.cpp", "gguf-from-hf", "runners.adapters.llama_cpp", "LlamaCppAdapter",
           {"cpu": "llama-cpp", "cuda": "llama-cpp"}, precisions=("fp32", "fp16", INT8, INT4), kind=GENERATIVE,
           target="gguf", schemes={"fp32": "f32", "fp16": "f16", INT8: "q8_0", INT4: "q4_K_M"},
           # llama-cpp-python's high-level API has no batching (FINDINGS; the low-level llama_batch API is not used).
           limits=ModelLimits(max_batch=1, batch_why="llama-cpp-python's Llama holds one sequence (its generate "
                              "takes one prompt); greenrt's llama.cpp runner generates batch 1 only")),
    # vLLM loads the checkpoint folder as is; GPU only, unverified here (no GPU, no wheel for this host: FINDINGS).
    Family("vllm", "hf", "runners.adapters.vllm_engine", "VllmAdapter", {"cuda": "vllm"}, precisions=("fp16",),
           kind=GENERATIVE),
    # client languages (issue 25): the torch model saved as a file (models/torch_artifacts.py) that Python runs here
    # (runners/adapters/torch_artifact.py) and C++ runs through libtorch (runners/cpp/, runtime id suffix "@cpp").
    Family("torch", "torchscript", "runners.adapters.torch_artifact", "TorchScriptAdapter", {"cpu": "torch"},
           precisions=("fp32",)),
    Family("torch", "aoti", "runners.adapters.torch_artifact", "AotiAdapter", {"cpu": "torch"}, precisions=("fp32",)),
)

GENERATIVE_FAMILIES = tuple(f for f in FAMILIES if f.generative)
NATIVE_FRAMEWORKS = tuple(f.framework for f in FAMILIES if f.model_format == "native")
# The frameworks an ONNX model is exported from (in that framework's environment), and the exporter of each.
ONNX_SOURCE_FRAMEWORKS = NATIVE_FRAMEWORKS
ONNX_EXPORTERS: dict[str, str] = {f.framework: f.exporter for f in FAMILIES
                                  if f.model_format == "native" and f.exporter}
# The TFLite converters, run in the source framework's environment.
TFLITE_EXPORTERS: dict[str, str] = {"tensorflow": "models.tensorflow_export:export_tflite"}
# The generative conversions: the checkpoint itself (torch environment), then each runtime's format from it, in
# that runtime's environment ((its framework, Family.target); each function takes an ExportRequest whose
# source_path is the checkpoint folder and whose output_path is the folder to write).
GENERATIVE_EXPORTERS: dict[tuple[str, str], str] = {
    (CHECKPOINT_FRAMEWORK, CHECKPOINT_TARGET): "models.llm.checkpoint:export_checkpoint",
    # A user's checkpoint folder as the converters need it (links, tokenizer files where absent): checkpoint_view.py
    (CHECKPOINT_FRAMEWORK, CHECKPOINT_VIEW_TARGET): "models.llm.checkpoint_view:export_checkpoint_view",
    ("onnxruntime-genai", "ort-genai"): "models.llm.ort_genai_export:export_ort_genai",
    ("onnxruntime-genai", "ort-genai-cuda"): "models.llm.ort_genai_export:export_ort_genai_cuda",  # UNVERIFIED: no GPU
    ("ctranslate2", "ct2"): "models.llm.ct2_export:export_ct2",
    ("openvino-genai", "openvino-genai"): "models.llm.convert_openvino:export_openvino_genai",
    ("llama.cpp", "gguf"): "models.llm.convert_gguf:export_gguf",
}
# (framework of the environment it runs in, target format) -> "module:function" of `python -m runners export`: the
# SOURCE framework for ONNX and TFLite, the DESTINATION runtime's for a generative runtime's format.
EXPORTERS: dict[tuple[str, str], str] = {**{(f, "onnx"): e for f, e in ONNX_EXPORTERS.items()},
                                         **{(f, "tflite"): e for f, e in TFLITE_EXPORTERS.items()},
                                         **GENERATIVE_EXPORTERS,
                                         # client languages (issue 25): files other clients load
                                         ("torch", "torchscript"): "models.torch_artifacts:export_torchscript",
                                         ("torch", "aoti"): "models.torch_artifacts:export_aoti"}


def converted_format(model_format: str) -> tuple[str, str] | None:
    """(target format, source framework) of a converted model format ('tflite-from-tensorflow' -> ('tflite',
    'tensorflow')); None for a format that is not converted from a source framework."""
    for prefix, target in CONVERTED_FORMATS.items():
        if model_format.startswith(prefix) and len(model_format) > len(prefix):
            return target, model_format[len(prefix):]
    return None


@dataclass(frozen=True)
class ProviderOption:
    """A provider option an adapter accepts (RunRequest.provider_options[key]), checked when a sweep is planned."""

    key: str  # exact, or a prefix ending in "." or "_" (ONNX Runtime's session.* entries, TensorRT's trt_*)
    providers: tuple[str, ...] | None = None  # the providers it applies to; None: each of the family's
    choices: tuple[str | bool, ...] | None = None  # the values it accepts; None: any string, number or boolean
    kind: type | None = None  # bool, int or str where the adapter reads only that type; None: any of them
    span: tuple[int, int] | None = None  # an int option's range, both ends included

    def matches(self, key: str) -> bool:
        return key.startswith(self.key) if self.key.endswith((".", "_")) else key == self.key

    def value_refusal(self, value: object) -> str | None:
        """What is wrong with `value` for this option by its type and range (a boolean is no integer here: TOML's
        true is not a stream count); None when it is acceptable so far."""
        valid = self.describe_valid()
        if self.choices is not None:
            if not any(type(value) is type(c) and value == c for c in self.choices):
                return f"valid: {valid}"
        elif self.kind is not None and type(value) is not self.kind:
            return f"not {_KIND_NAMES[self.kind]}; valid: {valid}"
        if self.span is not None and isinstance(value, int) and not self.span[0] <= value <= self.span[1]:
            return f"out of range; valid: {valid}"
        return None

    def describe_valid(self) -> str:
        if self.choices is not None:
            return ", ".join(repr(c).lower() if isinstance(c, bool) else str(c) for c in self.choices)
        if self.span is not None:
            return f"an integer from {self.span[0]} to {self.span[1]}"
        return _KIND_NAMES[self.kind] if self.kind is not None else "a string, an integer, a number or a boolean"


_KIND_NAMES = {bool: "a boolean (true or false)", int: "an integer", str: "a string"}
MAX_DEVICE_ID = 1023
MAX_STREAMS = 1024
MAX_OPTION_THREADS = 4096


# ONNX Runtime's session config entries (SessionOptions.add_session_config_entry) are provider options with this
# prefix; with DISABLE_CPU_FALLBACK = "1" a GPU session that would put any node on the CPU is refused.
SESSION_CONFIG_PREFIX = "session."
DISABLE_CPU_FALLBACK = "session.disable_cpu_ep_fallback"
# ONNX Runtime's CUDA EP options (OrtCUDAProviderOptionsV2's fields): a flat provider option goes to the first EP of
# the chain (runners/adapters/onnxruntime_session.py provider_chain), and the CUDA EP refuses a key it does not know.
_ORT_CUDA_OPTIONS = ("device_id", "gpu_mem_limit", "arena_extend_strategy", "do_copy_in_default_stream",
                     "cudnn_conv_use_max_workspace", "cudnn_conv1d_pad_to_nc1d", "enable_cuda_graph",
                     "tunable_op_enable", "tunable_op_tuning_enable", "tunable_op_max_tuning_duration_ms",
                     "enable_skip_layer_norm_strict_mode", "prefer_nhwc", "use_ep_level_unified_stream", "use_tf32")
_ORT_OPTIONS = (
    ProviderOption(SESSION_CONFIG_PREFIX),  # SessionOptions.add_session_config_entry, on every provider
    *(ProviderOption(key, ("cuda",)) for key in _ORT_CUDA_OPTIONS),
    ProviderOption("cudnn_conv_algo_search", ("cuda",), ("EXHAUSTIVE", "HEURISTIC", "DEFAULT")),
    ProviderOption("device_id", ("tensorrt",)),
    ProviderOption("trt_", ("tensorrt",)),  # the TensorRT EP's own options all start with trt_
    # The OpenVINO EP's own options (onnxruntime-openvino 1.24.1 refuses others); its CPU takes FP32 or ACCURACY.
    ProviderOption("device_type", ("openvino",), ("CPU",)),
    ProviderOption("precision", ("openvino",), ("FP32", "ACCURACY")),
    *(ProviderOption(key, ("openvino",)) for key in ("num_of_threads", "num_streams", "cache_dir", "load_config",
                                                     "enable_qdq_optimizer", "disable_dynamic_shapes",
                                                     "model_priority")),
)
# OpenVINO's own runtime (runners/adapters/openvino_runtime.py maps each to the CPU plugin's property, and also
# checks the numbers: num_streams a positive integer or AUTO/NUMA, inference_num_threads a positive integer).
OPENVINO_OPTIONS = (
    ProviderOption("performance_hint", None, ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")),
    ProviderOption("num_streams", kind=int, span=(1, MAX_STREAMS)),
    ProviderOption("inference_num_threads", kind=int, span=(1, MAX_OPTION_THREADS)),
    ProviderOption("inference_precision_hint", None, ("f32", "bf16", "f16")),
)
# torch.compile's modes (runners/adapters/torch_compiled.py): reduce-overhead replays CUDA graphs, so cuda only.
INDUCTOR_MODES = ("default", "reduce-overhead", "max-autotune")
INDUCTOR_OPTIONS = (
    ProviderOption("mode", ("cuda",), INDUCTOR_MODES),
    ProviderOption("mode", ("cpu",), tuple(m for m in INDUCTOR_MODES if m != "reduce-overhead")),
    ProviderOption("dynamic", None, (False, True)),
    ProviderOption("cache_dir", kind=str),
    ProviderOption("device_id", ("cuda",), kind=int, span=(0, MAX_DEVICE_ID)),
)
_TENSORFLOW_OPTIONS = (ProviderOption("device_id", ("cuda",), kind=int, span=(0, MAX_DEVICE_ID)),
                       ProviderOption("memory_growth", ("cuda",), (False, True)))

# transformers' KV cache (runners/adapters/torch_generate.py): "static" preallocates it to prompt + new tokens (what
# CUDA graphs and torch.compile want), "dynamic" grows it; the default is static on cuda, dynamic on cpu (a static
# cache does not help on the CPU without torch.compile: FINDINGS).
KV_CACHES = ("dynamic", "static")
TORCH_GENERATE_OPTIONS = (
    ProviderOption("cache_implementation", None, KV_CACHES),
    ProviderOption("device_id", ("cuda",), kind=int, span=(0, MAX_DEVICE_ID)),
)

# The provider options each family's adapter reads, by (framework, model format) as Family.matches finds them.
# A family missing here is not checked when a sweep is planned: its adapter refuses what it does not know at run time.
ACCEPTED_OPTIONS: dict[tuple[str, str], tuple[ProviderOption, ...]] = {
    ("torch", "native"): (ProviderOption("device_id", ("cuda",), kind=int, span=(0, MAX_DEVICE_ID)),),
    ("torch", "inductor"): INDUCTOR_OPTIONS,
    ("tensorflow", "native"): _TENSORFLOW_OPTIONS,
    ("tensorflow", "xla"): _TENSORFLOW_OPTIONS,  # the native adapter's, compiled
    ("litert", TFLITE_FROM): (),  # threads come from the config's `threads`; the interpreter takes nothing else
    # MXNet's graph backends (runners/adapters/mxnet_native.py BACKENDS): oneDNN fusion on the CPU only.
    ("mxnet", "native"): (ProviderOption("backend", ("cpu",), ("MKLDNN",)),
                          ProviderOption("device_id", ("cuda",), kind=int, span=(0, MAX_DEVICE_ID))),
    ("onnxruntime", "onnx"): _ORT_OPTIONS,
    ("onnxruntime", ONNX_FROM): _ORT_OPTIONS,
    ("openvino", ONNX_FROM): OPENVINO_OPTIONS,
    ("openvino", "onnx"): OPENVINO_OPTIONS,
    ("torch", "transformers"): TORCH_GENERATE_OPTIONS,
    # A saved torch model, from Python and from C++ (@cpp): both runners refuse every provider option.
    ("torch", "torchscript"): (),
    ("torch", "aoti"): (),
}

# The ONNX opsets each source framework's exporter writes, as its installed converter declares them: torch 2.13's
# TorchScript exporter (the default) torch.onnx._constants.ONNX_MIN_OPSET..ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET;
# tf2onnx 1.17's tf2onnx.constants.OPSET_TO_IR_VERSION up to 18 (from models.export_flow.MIN_OPSET); MXNet 1.9's
# mx2onnx only 12 and 13 (models/mxnet_export.py SUPPORTED_OPSETS).
EXPORTER_OPSETS: dict[str, tuple[int, ...]] = {
    "torch": tuple(range(7, 21)),
    "tensorflow": tuple(range(7, 19)),
    "mxnet": (12, 13),
}


def option_refusal(framework: str, model_format: str, provider: str, key: str, value: object) -> str | None:
    """Why the adapter of framework/model_format does not accept provider option `key` = `value` on `provider`
    (None when it does, or when the family declares no options here)."""
    family = find(framework, model_format)
    declared = next((opts for (fw, fmt), opts in ACCEPTED_OPTIONS.items()
                     if family is not None and fw == family.framework and fmt == family.model_format), None)
    if declared is None:
        return None
    here = [o for o in declared if o.providers is None or provider in o.providers]
    option = next((o for o in here if o.matches(key)), None)
    if option is None:
        valid = ", ".join(o.key + ("*" if o.key.endswith((".", "_")) else "") for o in here) or "none"
        return f"unknown provider option for {framework}/{model_format}/{provider}; valid: {valid}"
    wrong = option.value_refusal(value)
    if wrong is None:
        return None
    return f"not accepted by {framework}/{model_format}/{provider}{'; ' if wrong.startswith('valid:') else ': '}{wrong}"


def session_entry_refusal(key: str, framework: str, provider: str, sweep: dict[str, tuple[str, str]]) -> str | None:
    """Why `key`, an ONNX Runtime session config entry (session.*), is refused on a runtime of `framework` on
    `provider`; `sweep` (runtime name -> (framework, provider)) names the runtimes where it is valid. None: it is
    not refused here, or `key` is no session.* entry (the entry's value: session_entry_value_refusal)."""
    if not key.startswith(SESSION_CONFIG_PREFIX):
        return None
    onnx = [name for name, (fw, _) in sweep.items() if fw == "onnxruntime"]
    if framework != "onnxruntime":
        return (f"session.* keys are ONNX Runtime session config entries; valid only for onnxruntime runtimes "
                f"({', '.join(onnx) or 'none in runtimes'})")
    if key not in SESSION_CONFIG_KEYS and not any(k.endswith(".") and key.startswith(k) for k in SESSION_CONFIG_KEYS):
        close = difflib.get_close_matches(key, sorted(SESSION_CONFIG_KEYS), n=3, cutoff=0.6)
        return (f"not a session config entry ONNX Runtime reads; valid: {', '.join(close) if close else 'one of '}"
                + ("" if close else "onnxruntime_session_options_config_keys.h's session.* keys"))
    if key == DISABLE_CPU_FALLBACK and provider == "cpu":
        gpu = [name for name in onnx if sweep[name][1] != "cpu"]
        return (f"refuses nodes on the CPU provider, which is all a cpu runtime runs on; valid for cuda/tensorrt "
                f"runtimes ({', '.join(gpu) or 'none in runtimes'})")
    return None


def session_entry_value_refusal(key: str, value: object) -> str | None:
    """What is wrong with `value` for the session config entry `key`, said after the value ("... is not one of");
    None when ONNX Runtime reads it (a boolean is read as 1 or 0)."""
    if key == DISABLE_CPU_FALLBACK and str(int(value) if isinstance(value, bool) else value) not in ("0", "1"):
        return "is not one of \"1\" (refuse CPU fallback), \"0\""
    return None


def find(framework: str, model_format: str) -> Family | None:
    return next((f for f in FAMILIES if f.matches(framework, model_format)), None)


def adapter_present(family: Family) -> bool:
    """Whether this checkout holds the family's adapter module (read as a file, nothing imported): a runtime being
    added to the table before its adapter is planned as not implemented."""
    return (Path(__file__).parent.joinpath(*family.module.split(".")[1:])).with_suffix(".py").is_file()


def runtime_kind(runtime: str) -> str | None:
    """FORWARD or GENERATIVE for a runtime name framework/format/provider; None for one the table does not know."""
    parts = runtime.split("/")
    family = find(parts[0], parts[1]) if len(parts) == 3 else None
    return family.kind if family is not None else None


def runtime_names() -> list[str]:
    """Every runtime a sweep may name: framework/<format>/<provider> for each family of the table, a converted
    format once per source (onnxruntime/onnx-from-<source>/<provider>). The bare "onnx" format runs a user's ONNX
    file as is (onnxruntime/onnx/<provider>, openvino/onnx/cpu)."""
    names = []
    for family in FAMILIES:
        if family.model_format.endswith("-"):
            sources = family.sources if family.sources is not None else ONNX_SOURCE_FRAMEWORKS
            names += [f"{family.framework}/{family.model_format}{source}/{p}"
                      for source in sources for p in family.providers]
        else:
            names += [f"{family.framework}/{family.model_format}/{p}" for p in family.providers]
    return names
