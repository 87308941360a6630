"""One math policy on GPUs (issue 20, points 3, 4 and 6): what each run is asked and given, without a GPU.

ONNX Runtime's provider options are plain dicts (provider_chain), the TensorRT options of a bs1 and a bs64 run are
compared, the sweep's request carries each TensorRT run's own engine folder and the CUDA JIT cache, and the report
says which policy the sweep used.  The frameworks' own switches are tested in tests/torch and tests/tensorflow.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.execution.preparation import build_request, run_mounts
from orchestrator.planning.config import parse_config
from orchestrator.planning.planner import Cell, HostCapabilities, PlannedRun, skip_reason
from orchestrator.report.provenance import math_policy_line
from orchestrator.results.record import RunRecord
from runners.adapters.onnxruntime_session import provider_chain
from runners.adapters.ort_options import engine_build_facts, policy_overrides, session_math, tf32_allowed
from runners.math_policy import (CUDA_CACHE_MAX_BYTES, CUDA_CACHE_MAXSIZE, CUDA_CACHE_PATH, POLICY, TF32_OVERRIDE,
                                 apply_environment, jit_cache_facts, policy_for)
from runners.protocol import RunRequest, from_dict, to_dict

TRT = "onnxruntime/onnx-from-torch/tensorrt"


def request(tmp_path: Path, runtime: str = TRT, batch_size: int = 1, precision: str = "fp32", model: str = "resnet50",
            **kwargs) -> RunRequest:
    return RunRequest(run_id="r", runtime=runtime, model=model, batch_size=batch_size, precision=precision,
                      result_path=str(tmp_path / "run" / "result.json"), **kwargs)


def chain_of(req: RunRequest) -> dict[str, dict]:
    return dict(provider_chain(req.provider, req))


# -- ONNX Runtime: the CUDA EP's math options -----------------------------------------------------------------------

def test_cuda_ep_runs_fp32_without_tf32_and_with_exhaustive_cudnn_search(tmp_path):
    cuda = chain_of(request(tmp_path, runtime="onnxruntime/onnx-from-torch/cuda"))["CUDAExecutionProvider"]
    # ORT's CUDA EP defaults to use_tf32 = 1: fp32 would silently be TF32 math.
    assert cuda["use_tf32"] == 0
    assert cuda["cudnn_conv_algo_search"] == "EXHAUSTIVE"


def test_a_tf32_cell_allows_tf32_in_the_cuda_ep_and_in_tensorrt_s_cuda_fallback(tmp_path):
    assert chain_of(request(tmp_path, runtime="onnxruntime/onnx-from-torch/cuda",
                            precision="tf32"))["CUDAExecutionProvider"]["use_tf32"] == 1
    chain = chain_of(request(tmp_path, precision="tf32"))
    assert chain["CUDAExecutionProvider"]["use_tf32"] == 1
    assert chain["TensorrtExecutionProvider"]["trt_fp16_enable"] is False  # tf32 is fp32 data
    assert chain_of(request(tmp_path))["CUDAExecutionProvider"]["use_tf32"] == 0


def test_a_users_use_tf32_overrides_the_policy_and_is_named(tmp_path):
    req = request(tmp_path, runtime="onnxruntime/onnx-from-torch/cuda", provider_options={"use_tf32": 1})
    chain = provider_chain("cuda", req)
    assert dict(chain)["CUDAExecutionProvider"]["use_tf32"] == 1
    assert policy_overrides(chain, policy_for("fp32")) == {"CUDAExecutionProvider.use_tf32": 1}
    assert tf32_allowed(chain, policy_for("fp32")) is True
    assert policy_overrides(provider_chain("cuda", request(tmp_path, runtime=req.runtime)), policy_for("fp32")) == {}


def test_tensorrt_has_no_tf32_option_so_the_session_s_environment_carries_the_policy(tmp_path):
    strict, settings = session_math("fp32", "tensorrt", provider_chain("tensorrt", request(tmp_path)))
    assert strict.library_env == {TF32_OVERRIDE: "0"}
    assert settings["TensorrtExecutionProvider.tf32"].startswith("NVIDIA_TF32_OVERRIDE=0")
    assert settings["CUDAExecutionProvider.use_tf32"] == 0
    tf32, _ = session_math("tf32", "tensorrt", provider_chain("tensorrt", request(tmp_path, precision="tf32")))
    assert tf32.library_env == {TF32_OVERRIDE: None}


# -- TensorRT: a profile of exactly the run's shapes ----------------------------------------------------------------

def test_tensorrt_options_of_a_bs1_and_a_bs64_run(tmp_path):
    bs1 = chain_of(request(tmp_path, batch_size=1))["TensorrtExecutionProvider"]
    bs64 = chain_of(request(tmp_path, batch_size=64))["TensorrtExecutionProvider"]
    for key in ("trt_profile_min_shapes", "trt_profile_opt_shapes", "trt_profile_max_shapes"):
        assert bs1[key] == "pixel_values:1x3x224x224"
        assert bs64[key] == "pixel_values:64x3x224x224"
    assert bs1["trt_engine_cache_enable"] is True and bs1["trt_timing_cache_enable"] is True


def test_bert_s_profile_names_every_input_at_the_run_s_sequence_length(tmp_path):
    trt = chain_of(request(tmp_path, model="bert-base-uncased", batch_size=8,
                           model_options={"seq_len": 64}))["TensorrtExecutionProvider"]
    assert trt["trt_profile_opt_shapes"] == "input_ids:8x64,attention_mask:8x64,token_type_ids:8x64"
    assert trt["trt_profile_min_shapes"] == trt["trt_profile_max_shapes"] == trt["trt_profile_opt_shapes"]


def test_engine_build_facts_tell_a_built_engine_from_a_cached_one():
    options = {"trt_engine_cache_path": "/e", "trt_timing_cache_path": "/t", "trt_profile_min_shapes": "x:1",
               "trt_profile_opt_shapes": "x:1", "trt_profile_max_shapes": "x:1"}
    built = engine_build_facts(options, set(), {"a_sm90.engine"}, 41.5, [0.02, 0.005, 0.004, 0.006])
    assert built["engine"] == "built" and built["build_seconds"] == 41.5 and built["profile"] == "x:1"
    assert built["first_run_excess_seconds"] == pytest.approx(0.015)
    cached = engine_build_facts(options, {"a_sm90.engine"}, {"a_sm90.engine"}, 1.2, [0.005, 0.005])
    assert cached["engine"] == "loaded from cache" and cached["build_seconds"] is None


# -- the sweep's requests: engine folders per key, a shared timing cache, the JIT cache ------------------------------

def _request_for(tmp_path: Path, runtime: str, batch_size: int = 1, precision: str = "fp32",
                 model: str = "resnet50") -> RunRequest:
    config = parse_config({"name": "t", "models": [model], "batch_sizes": [batch_size], "runtimes": [runtime],
                           "precisions": [precision]})
    cell = Cell(model, batch_size, runtime, precision)
    run_dir = tmp_path / "results" / "runs" / f"run-{batch_size}-{precision}"
    return build_request(config, PlannedRun(f"run-{batch_size}", 0, 0, cell), run_dir, None)


def test_each_tensorrt_run_gets_its_own_engine_folder_and_the_sweep_one_timing_cache(tmp_path):
    bs1, bs64 = _request_for(tmp_path, TRT, 1), _request_for(tmp_path, TRT, 64)
    tf32 = _request_for(tmp_path, TRT, 1, "tf32")
    engines = {r.provider_options["trt_engine_cache_path"] for r in (bs1, bs64, tf32)}
    assert len(engines) == 3  # a bs1 run never measures an engine built for 64, nor fp32 a TF32 engine
    assert Path(bs1.provider_options["trt_engine_cache_path"]).name == "resnet50-torch-bs1-fp32"
    assert bs1.provider_options["trt_timing_cache_path"] == bs64.provider_options["trt_timing_cache_path"]
    assert tf32.provider_options["trt_timing_cache_path"] != bs1.provider_options["trt_timing_cache_path"]
    bert = _request_for(tmp_path, TRT, 1, model="bert-base-uncased")
    assert Path(bert.provider_options["trt_engine_cache_path"]).name == "bert-base-uncased-torch-bs1-fp32-seq_len128"
    mounts = run_mounts(bs1)["writable"]
    assert Path(bs1.provider_options["trt_engine_cache_path"]) in mounts
    assert Path(bs1.provider_options["trt_timing_cache_path"]) in mounts


def test_gpu_runs_get_a_persistent_cuda_jit_cache_mounted_writable_and_cpu_runs_none(tmp_path):
    gpu = _request_for(tmp_path, "tensorflow/native/cuda")
    assert gpu.cuda_jit_cache == {"path": str(tmp_path / "results" / "cuda-jit-cache"),
                                  "max_bytes": CUDA_CACHE_MAX_BYTES}
    assert Path(gpu.cuda_jit_cache["path"]) in run_mounts(gpu)["writable"]
    cpu = _request_for(tmp_path, "tensorflow/native/cpu")
    assert cpu.cuda_jit_cache is None and run_mounts(cpu)["writable"] == []


def test_requests_written_before_the_jit_cache_field_stay_readable(tmp_path):
    old = to_dict(request(tmp_path))
    del old["cuda_jit_cache"]
    assert from_dict(RunRequest, old).cuda_jit_cache is None
    new = request(tmp_path, cuda_jit_cache={"path": "/c", "max_bytes": 5})
    assert from_dict(RunRequest, to_dict(new)) == new


# -- the runner's process environment ------------------------------------------------------------------------------

@pytest.fixture
def clean_env(monkeypatch):
    """The policy's variables absent, and absent again after the test: apply_environment sets them in os.environ
    itself, and a delenv of an absent variable records nothing to undo (a later sweep's runner would inherit them)."""
    for name in (TF32_OVERRIDE, CUDA_CACHE_PATH, CUDA_CACHE_MAXSIZE, "CUDA_CACHE_DISABLE"):
        monkeypatch.setenv(name, "")  # recorded: undone to the value before the test, absent or not
        monkeypatch.delenv(name)
    return monkeypatch


def test_strict_fp32_sets_nvidia_tf32_override_and_the_jit_cache_for_gpu_runs(clean_env, tmp_path):
    cache = {"path": str(tmp_path / "jit"), "max_bytes": CUDA_CACHE_MAX_BYTES}
    set_, kept = apply_environment(policy_for("fp32"), True, cache)
    assert os.environ[TF32_OVERRIDE] == "0"
    assert os.environ[CUDA_CACHE_PATH] == str(tmp_path / "jit") and (tmp_path / "jit").is_dir()
    assert os.environ[CUDA_CACHE_MAXSIZE] == str(4 * 2**30)
    assert set_[TF32_OVERRIDE] == "0" and set_[CUDA_CACHE_PATH] == str(tmp_path / "jit") and kept == {}
    assert jit_cache_facts(cache, True) == {"path": str(tmp_path / "jit"), "max_bytes": 4 * 2**30,
                                            "persistent": True}


def test_a_variable_the_user_set_is_kept_and_named_as_overriding_the_policy(clean_env, tmp_path):
    clean_env.setenv(TF32_OVERRIDE, "0")  # e.g. the sweep's [environment] for this runtime
    clean_env.setenv("CUDA_CACHE_DISABLE", "1")
    cache = {"path": str(tmp_path / "jit"), "max_bytes": CUDA_CACHE_MAX_BYTES}
    set_, kept = apply_environment(policy_for("tf32"), True, cache)
    assert os.environ[TF32_OVERRIDE] == "0" and kept == {TF32_OVERRIDE: "0", "CUDA_CACHE_DISABLE": "1"}
    assert jit_cache_facts(cache, True)["persistent"] is False  # disabled by the user: said, not assumed


def test_tf32_leaves_nvidia_s_libraries_their_default_and_cpu_runs_change_nothing(clean_env):
    set_, kept = apply_environment(policy_for("tf32"), True)
    assert TF32_OVERRIDE not in os.environ and set_ == {TF32_OVERRIDE: None} and kept == {}
    assert apply_environment(policy_for("fp32"), False, {"path": "/nowhere", "max_bytes": 1}) == ({}, {})
    assert TF32_OVERRIDE not in os.environ and CUDA_CACHE_PATH not in os.environ


# -- the table, the plan and the report ------------------------------------------------------------------------------

def test_tf32_is_planned_on_gpu_providers_and_cpu_cells_are_skipped_with_the_reason():
    host = HostCapabilities()
    reason = skip_reason(Cell("resnet50", 1, "torch/native/cpu", "tf32"), host)
    assert reason is not None and "tf32 is a GPU math mode" in reason and "cuda" in reason
    gpu_reason = skip_reason(Cell("resnet50", 1, "torch/native/cuda", "tf32"), host)
    assert "needs an NVIDIA GPU" in gpu_reason  # not refused for its precision: only for this GPU-less host
    assert "tf32" in skip_reason(Cell("resnet50", 1, "openvino/onnx-from-torch/cpu", "tf32"), host)


def _record(runtime: str, provider: str, precision: str, math: dict | None) -> RunRecord:
    return RunRecord(run_id=f"{runtime}-{precision}", index=0, repetition=0, model="resnet50", batch_size=1,
                     runtime=runtime, framework=runtime.split("/")[0], model_format=runtime.split("/")[1],
                     provider=provider, precision=precision, started_at="", launcher="local", environment="x",
                     result={"status": "ok", "runtime_facts": {"math": math} if math else None})


def test_the_report_names_the_sweep_s_policy_once_with_the_config_s_overrides():
    math = {"policy": POLICY}
    records = [_record("torch/native/cuda", "cuda", "fp32", math),
               _record("onnxruntime/onnx-from-torch/cuda", "cuda", "tf32", math),
               _record("torch/native/cpu", "cpu", "fp32", math)]
    plan = {"config": {"precisions": ["fp32", "tf32"],
                       "provider_options": {"onnxruntime/onnx-from-torch/cuda": {"use_tf32": 1}}}}
    line = math_policy_line(records, plan)
    assert line.count(POLICY) == 1 and "TF32 off" in line and "2 GPU runtime(s)" in line
    assert "tf32 allow TF32" in line
    assert "onnxruntime/onnx-from-torch/cuda use_tf32=1" in line
    kept = math_policy_line([_record("torch/native/cuda", "cuda", "tf32",
                                     {"policy": POLICY, "overridden_by_environment": {TF32_OVERRIDE: "0"}})], {})
    assert "overridden by the runner's environment: torch/native/cuda NVIDIA_TF32_OVERRIDE=0" in kept
    older = math_policy_line([_record("torch/native/cuda", "cuda", "fp32", None)], {})
    assert "not recorded by torch/native/cuda" in older
    assert math_policy_line([records[2]], {}).startswith("no GPU run")


def test_mxnet_cuda_sets_its_autotuning_and_tf32_override_before_importing_mxnet(clean_env, tmp_path):
    """MXNet has no TF32 switch: cuBLAS/cuDNN read NVIDIA_TF32_OVERRIDE, and MXNet its autotuning variable, when it
    loads; both are set before the import (which fails here: no CUDA MXNet), and recorded."""
    from runners.adapters.mxnet_native import MxnetNativeAdapter
    from runners.failures import UnsupportedError

    clean_env.delenv("MXNET_CUDNN_AUTOTUNE_DEFAULT", raising=False)
    adapter = MxnetNativeAdapter()
    req = request(tmp_path, runtime="mxnet/native/cuda", cuda_jit_cache={"path": str(tmp_path / "jit"),
                                                                         "max_bytes": CUDA_CACHE_MAX_BYTES})
    with pytest.raises(UnsupportedError):
        adapter.load(req)
    math = adapter.runtime_facts()["math"]
    assert math["policy"] == POLICY and math["tf32_requested"] is False
    assert math["settings"]["MXNET_CUDNN_AUTOTUNE_DEFAULT"] == "1" == os.environ["MXNET_CUDNN_AUTOTUNE_DEFAULT"]
    assert math["environment"][TF32_OVERRIDE] == "0"
    assert math["cuda_jit_cache"] == {"path": str(tmp_path / "jit"), "max_bytes": CUDA_CACHE_MAX_BYTES,
                                      "persistent": True}


# -- a TensorRT session's engine cost, with a stand-in for onnxruntime-gpu ------------------------------------------

class _FakeSession:
    """Builds its "engine" at construction, as ORT's TensorRT EP does when every input has an explicit profile."""

    def __init__(self, path, sess_options=None, providers=(), provider_options=()):
        import time
        from types import SimpleNamespace

        self.options = dict(zip(providers, provider_options))
        trt = self.options["TensorrtExecutionProvider"]
        folder = Path(trt["trt_engine_cache_path"])
        if not list(folder.glob("*.engine")):
            time.sleep(0.3)  # the build
            (folder / "TensorrtExecutionProvider_TRTKernel_sm90.engine").write_bytes(b"engine")
        self.providers = list(providers)
        self.runs = 0
        self._inputs = [SimpleNamespace(name="pixel_values", type="tensor(float)")]
        self._outputs = [SimpleNamespace(name="logits")]

    def get_providers(self):
        return self.providers

    def get_inputs(self):
        return self._inputs

    def get_outputs(self):
        return self._outputs

    def get_provider_options(self):
        return {name: {k: str(v) for k, v in opts.items()} for name, opts in self.options.items()}

    def io_binding(self):
        from types import SimpleNamespace

        return SimpleNamespace(bind_ortvalue_input=lambda *a: None, bind_output=lambda *a: None,
                               synchronize_inputs=lambda: None, synchronize_outputs=lambda: None)

    def run_with_iobinding(self, binding, run_options=None):
        import time

        self.runs += 1
        time.sleep(0.2 if self.runs == 1 else 0.01)  # the first run's own set-up, then steady state


def _fake_onnxruntime():
    from types import ModuleType, SimpleNamespace

    ort = ModuleType("onnxruntime")
    ort.__version__ = "0.fake"
    ort.get_available_providers = lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                                           "CPUExecutionProvider"]
    ort.SessionOptions = lambda: SimpleNamespace(add_session_config_entry=lambda *a: None)
    ort.GraphOptimizationLevel = SimpleNamespace(ORT_ENABLE_ALL=99)
    ort.RunOptions = SimpleNamespace
    ort.InferenceSession = _FakeSession
    ort.OrtValue = SimpleNamespace(ortvalue_from_numpy=lambda array, device, index: array)
    return ort


def test_a_tensorrt_run_records_its_engine_build_and_a_repetition_its_cached_engine(clean_env, tmp_path):
    import sys

    import numpy as np

    from runners.adapters.onnxruntime_session import OnnxRuntimeAdapter

    clean_env.setitem(sys.modules, "onnxruntime", _fake_onnxruntime())
    artifact = tmp_path / "model.onnx"
    artifact.write_bytes(b"onnx")
    engines = tmp_path / "trt-engines" / "resnet50-torch-bs1-fp32"

    def one_run(name: str) -> dict:
        adapter = OnnxRuntimeAdapter()
        adapter.load(request(tmp_path / name, artifact_path=str(artifact),
                             provider_options={"trt_engine_cache_path": str(engines),
                                               "trt_timing_cache_path": str(tmp_path / "trt-timing" / "fp32")}))
        prepared = adapter.prepare({"pixel_values": np.zeros((1, 3, 224, 224), np.float32)})
        for _ in range(3):  # warm-up
            adapter.run(prepared)
        adapter.on_window_start()
        return adapter.runtime_facts()

    first = one_run("first")
    trt = first["tensorrt"]
    assert trt["engine"] == "built" and trt["engines_written"] == ["TensorrtExecutionProvider_TRTKernel_sm90.engine"]
    assert trt["build_seconds"] >= 0.3 and trt["profile"] == "pixel_values:1x3x224x224"
    assert 0.15 < trt["first_run_excess_seconds"] < 0.3
    assert first["math"]["environment"][TF32_OVERRIDE] == "0"
    assert first["math"]["read_back"] == {"CUDAExecutionProvider.use_tf32": "0",
                                          "CUDAExecutionProvider.cudnn_conv_algo_search": "EXHAUSTIVE"}
    again = one_run("again")["tensorrt"]
    assert again["engine"] == "loaded from cache" and again["build_seconds"] is None
    assert again["session_seconds"] < trt["session_seconds"]
