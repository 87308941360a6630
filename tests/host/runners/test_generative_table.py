"""The generative runtimes in the one table of runtimes (issue 24's contract): families of kind "generative", the
conversion each needs from the Hugging Face checkpoint, their precisions, environments and exporters."""
import pytest

from runners import runtimes_table as table
from runners.adapters import resolve
from runners.failures import UnsupportedError

CONTRACT = {  # runtime pattern -> (precisions, conversion, adapter)
    "torch/transformers/{cpu,cuda}": (("fp32", "fp16"), None, "runners.adapters.torch_generate:TorchGenerateAdapter"),
    "onnxruntime-genai/genai-from-hf/{cpu,cuda}": (("fp32", "int4"), ("onnxruntime-genai", "ort-genai"),
                                                  "runners.adapters.ort_genai:OrtGenaiAdapter"),
    "ctranslate2/ct2-from-hf/{cpu}": (("fp32", "int8"), ("ctranslate2", "ct2"),
                                      "runners.adapters.ctranslate2_generator:Ctranslate2Adapter"),
    "openvino-genai/ir-from-hf/{cpu}": (("fp32", "int8", "int4"), ("openvino-genai", "openvino-genai"),
                                        "runners.adapters.openvino_genai:OpenvinoGenaiAdapter"),
    "llama.cpp/gguf-from-hf/{cpu,cuda}": (("fp32", "fp16", "int8", "int4"), ("llama.cpp", "gguf"),
                                          "runners.adapters.llama_cpp:LlamaCppAdapter"),
    "vllm/hf/{cuda}": (("fp16",), None, "runners.adapters.vllm_engine:VllmAdapter"),
}


def test_every_generative_runtime_of_the_contract_is_a_generative_family():
    rows = {f.pattern: (f.precisions, f.conversion("cpu"), f"{f.module}:{f.cls}") for f in table.GENERATIVE_FAMILIES}
    assert rows == CONTRACT
    for family in table.GENERATIVE_FAMILIES:
        conversions = [key for provider in family.providers if (key := family.conversion(provider)) is not None]
        for key in conversions:
            assert table.EXPORTERS[key].startswith("models.llm.")
        if conversions:
            assert set(family.schemes) == set(family.precisions)  # each precision names the runtime's own scheme
    assert table.EXPORTERS[(table.CHECKPOINT_FRAMEWORK, table.CHECKPOINT_TARGET)] == \
        "models.llm.checkpoint:export_checkpoint"
    assert table.find("llama.cpp", "gguf-from-hf").schemes == {"fp32": "f32", "fp16": "f16", "int8": "q8_0",
                                                               "int4": "q4_K_M"}


def test_the_forward_runtimes_keep_their_rows():
    assert all(f.kind == table.FORWARD for f in table.FAMILIES if not f.generative)
    assert table.runtime_kind("onnxruntime/onnx-from-torch/cpu") == table.FORWARD
    assert table.runtime_kind("llama.cpp/gguf-from-hf/cuda") == table.GENERATIVE
    assert table.runtime_kind("nothing/here/cpu") is None
    assert table.EXPORTERS[("torch", "onnx")] == "models.torch_export:export_onnx"
    assert table.NATIVE_FRAMEWORKS == ("torch", "tensorflow", "mxnet")


def test_environments_per_provider():
    assert table.find("onnxruntime-genai", "genai-from-hf").environments == {
        "cpu": "onnxruntime-genai", "cuda": "onnxruntime-genai-cuda"}
    assert table.find("torch", "transformers").environments == {"cpu": "torch", "cuda": "torch"}
    assert table.find("vllm", "hf").providers == ("cuda",)


@pytest.mark.parametrize(("runtime", "precision", "said"), [
    ("torch/transformers/cpu", "fp16", "fp16 is measured on cuda only"),
    ("ctranslate2/ct2-from-hf/cpu", "int4", "precision 'int4' is not one of fp32, int8"),
    ("onnxruntime-genai/genai-from-hf/cpu", "int8", "precision 'int8' is not one of fp32, int4"),
])
def test_precisions_a_generative_runtime_does_not_measure_are_refused(runtime, precision, said):
    framework, fmt, provider = runtime.split("/")
    assert said in table.find(framework, fmt).refusal(provider, precision)


def test_precisions_it_measures_are_not():
    assert table.find("llama.cpp", "gguf-from-hf").refusal("cpu", "fp16") is None  # f16 GGUF runs on CPUs
    assert table.find("openvino-genai", "ir-from-hf").refusal("cpu", "int4") is None


def test_the_registry_resolves_generative_runtimes_and_refuses_their_missing_providers():
    assert resolve("torch/transformers/cuda").cls == "TorchGenerateAdapter"
    with pytest.raises(UnsupportedError, match="no provider 'cpu'; valid: cuda"):
        resolve("vllm/hf/cpu")


def test_the_kv_cache_option_of_transformers_is_checked():
    assert table.option_refusal("torch", "transformers", "cpu", "cache_implementation", "static") is None
    assert "valid: dynamic, static" in table.option_refusal("torch", "transformers", "cpu", "cache_implementation",
                                                            "offloaded")


def test_a_family_is_implemented_once_its_adapter_module_is_in_the_checkout():
    from dataclasses import replace

    assert table.adapter_present(table.find("torch", "transformers"))
    assert table.adapter_present(table.find("torch", "native"))
    assert not table.adapter_present(replace(table.find("vllm", "hf"), module="runners.adapters.not_written_yet"))


def test_what_a_generative_runtime_cannot_run_is_its_rows_limits_and_only_its():
    """One rule each, read by the planner (generative_refusal) and the adapter (ort_genai, llama_cpp)."""
    ort, llama = table.find("onnxruntime-genai", "genai-from-hf"), table.find("llama.cpp", "gguf-from-hf")
    assert ort.head_dim_refusal(64) is None and ort.head_dim_refusal(32) is None and ort.batch_refusal(8) is None
    assert ort.head_dim_refusal(24).startswith("onnxruntime-genai: head_dim 24 is not a multiple of 16 (")
    assert llama.batch_refusal(1) is None and llama.head_dim_refusal(24) is None
    assert llama.batch_refusal(2).startswith("llama.cpp: batch 2 > 1 is not measured: ")
    others = [f for f in table.GENERATIVE_FAMILIES if f not in (ort, llama)]
    assert all(f.limits == table.ModelLimits() for f in others)


def test_ort_genai_on_cuda_is_converted_to_the_builders_cuda_graph_not_the_cpu_one():
    # the builder's `-e cuda` graph differs (fp16 inputs and outputs, accuracy level 0): a CUDA run of the CPU graph
    # would not measure what ONNX Runtime GenAI deploys on a GPU
    from orchestrator.planning.runtimes import parse_runtime

    family = table.find("onnxruntime-genai", "genai-from-hf")
    assert family.conversion("cpu") == ("onnxruntime-genai", "ort-genai")
    assert family.conversion("cuda") == ("onnxruntime-genai", "ort-genai-cuda")
    assert table.EXPORTERS[family.conversion("cuda")] == "models.llm.ort_genai_export:export_ort_genai_cuda"
    cuda = parse_runtime("onnxruntime-genai/genai-from-hf/cuda")
    assert (cuda.conversion, cuda.target_format, cuda.environment) == (
        ("onnxruntime-genai", "ort-genai-cuda"), "ort-genai-cuda", "onnxruntime-genai-cuda")
    assert parse_runtime("llama.cpp/gguf-from-hf/cuda").conversion == ("llama.cpp", "gguf")  # one GGUF for both
