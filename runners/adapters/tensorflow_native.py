"""tensorflow/native/{cpu,cuda}: a Keras model run through one tf.function (graph mode, not eager).

- Device: `cpu` hides every GPU from TensorFlow for the whole process (tf.config.set_visible_devices([], "GPU"),
  the first thing after importing TensorFlow), so a CPU run cannot place a kernel on a GPU; `cuda` needs a GPU
  that TensorFlow sees, else the run fails as "unsupported" (never a silent CPU run).  Model, inputs and the traced
  function all live under an explicit tf.device scope as well.
- Inputs arrive NCHW from models.inputs; `prepare` transposes images to NHWC (Keras' layout) and casts token ids to
  the int32 Keras-Hub declares, before the window.  BERT's inputs are renamed by models.tensorflow_models
  (input_ids -> token_ids, attention_mask -> padding_mask, token_type_ids -> segment_ids); outputs carry the
  registry's names (logits; last_hidden_state, pooler_output).
- One tf.function with a fixed input_signature (the request's batch size): traced once, by the first warm-up
  iteration (engine_build_seconds), never inside the window.  XLA (jit_compile) is off: TensorFlow as shipped;
  tensorflow/xla/* (runners.adapters.tensorflow_xla) is this adapter with jit_compile on.
- runtime_facts: jit_compile, how often the function was traced, and how often inside the window (0 expected).
- threads: request.threads sets TensorFlow's intra-op pool (tf.config.threading), FIRST: listing logical GPUs
  (needed to place the model on cuda) initialises TensorFlow's runtime, after which the pool is fixed.
- Math (runners/math_policy.py): TF32 off (tf.config.experimental.enable_tensor_float_32_execution(False), and
  NVIDIA_TF32_OVERRIDE=0 in the process) unless the precision is tf32; cuDNN autotuning on (TF_CUDNN_USE_AUTOTUNE=1,
  TensorFlow's default, set explicitly); XLA's own autotuning (XLA_FLAGS) as the environment gives it.  Read back
  into runtime_facts["math"].
- fp16: Keras' "mixed_float16" policy, on cuda only.
"""
from __future__ import annotations

import contextlib
import os
from importlib import metadata
from typing import Any

import numpy as np

from runners.adapters.contract import Adapter, import_framework
from runners.failures import UnsupportedError
from runners.hostinfo import cpu_device, nvidia_gpu_name
from runners.math_policy import MathPolicy, apply_environment, jit_cache_facts, policy_for
from runners.math_policy import facts as math_facts
from runners.protocol import RunRequest

# TensorFlow's cuDNN autotuning switch (default on), read when its GPU kernels first pick an algorithm.
AUTOTUNE_VARIABLE = "TF_CUDNN_USE_AUTOTUNE"


def apply_tensorflow_math(tf: Any, policy: MathPolicy, gpu: bool) -> dict[str, Any]:
    """Set TensorFlow's TF32 switch by the policy (a process-wide flag, settable before or after initialisation);
    what TensorFlow reports back."""
    tf.config.experimental.enable_tensor_float_32_execution(policy.tf32 and gpu)
    return {"tf.config.experimental.tensor_float_32_execution_enabled":
            bool(tf.config.experimental.tensor_float_32_execution_enabled()),
            AUTOTUNE_VARIABLE: os.environ.get(AUTOTUNE_VARIABLE), "XLA_FLAGS": os.environ.get("XLA_FLAGS")}


def _import_tf():
    # INFO lines (oneDNN notices, CPU feature guard) are noise in a runner's log; warnings and errors stay.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    return import_framework("tensorflow")


class TensorflowNativeAdapter(Adapter):
    jit_compile = False  # XLA: the one difference of tensorflow/xla (a subclass)

    def __init__(self) -> None:
        self.tf = None
        self.model = None
        self.fn = None
        self.device: str | None = None  # the tf.device string everything runs under
        self.memory_device: str | None = None  # for tf.config.experimental.get_memory_info
        self.device_id = 0
        self.gpu_name: str | None = None
        self.spec = None
        self.output_names: tuple[str, ...] = ()
        self._sync = None
        self._traces_at_window_start: int | None = None
        self.math: dict[str, Any] | None = None

    # -- device set-up -----------------------------------------------------------------------------------------

    def _use_cpu(self, tf) -> None:
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:
            # TensorFlow was initialised earlier in this process (visibility is fixed from then on).  Where GPUs
            # are still visible, the explicit /CPU:0 scope below keeps every kernel on the CPU.
            pass
        self.device = "/CPU:0"

    def _use_cuda(self, tf, request: RunRequest) -> None:
        physical = tf.config.list_physical_devices("GPU")
        build = tf.sysconfig.get_build_info()
        if not physical:
            raise UnsupportedError(
                f"{request.runtime}: TensorFlow {tf.__version__} sees no GPU (CUDA build: "
                f"{build.get('is_cuda_build', False)}, built for CUDA {build.get('cuda_version', 'none')}, cuDNN "
                f"{build.get('cudnn_version', 'none')}); refusing to run on the CPU instead")
        device_id = int(request.provider_options.get("device_id", 0))
        if not 0 <= device_id < len(physical):
            raise UnsupportedError(f"{request.runtime}: device_id {device_id} is not one of the "
                                   f"{len(physical)} GPU(s) TensorFlow sees")
        gpu = physical[device_id]
        logical_index = device_id
        try:  # only the measured GPU: TensorFlow otherwise reserves memory on every visible GPU
            tf.config.set_visible_devices([gpu], "GPU")
            if request.provider_options.get("memory_growth"):
                tf.config.experimental.set_memory_growth(gpu, True)
            logical_index = 0
        except RuntimeError:
            pass  # initialised earlier in this process: keep its numbering
        logical = tf.config.list_logical_devices("GPU")
        if logical_index >= len(logical):
            raise UnsupportedError(
                f"{request.runtime}: GPU {device_id} exists but is hidden from TensorFlow in this process "
                f"(logical GPUs: {len(logical)}); refusing to run on the CPU instead")
        self.device_id = device_id
        self.device = f"/GPU:{logical_index}"
        self.memory_device = f"GPU:{logical_index}"
        with contextlib.suppress(Exception):
            self.gpu_name = tf.config.experimental.get_device_details(gpu).get("device_name")
        with contextlib.suppress(Exception):
            tf.config.experimental.reset_memory_stats(self.memory_device)

    def _set_threads(self, tf, threads: int | None) -> None:
        if threads is None:
            return
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError:
            current = tf.config.threading.get_intra_op_parallelism_threads()
            if current != threads:
                raise UnsupportedError(
                    f"tensorflow/native: cannot set {threads} intra-op threads, TensorFlow was already initialised "
                    f"in this process with {current or 'its default'}") from None
        self.n_threads = threads

    def configure_runtime(self, tf, request: RunRequest) -> None:
        """Thread pools, then devices: both are fixed once TensorFlow initialises its runtime, and placing the model
        on a GPU initialises it (list_logical_devices), so threads go first."""
        self._set_threads(tf, request.threads)
        if request.provider == "cuda":
            self._use_cuda(tf, request)
        else:
            self._use_cpu(tf)

    # -- the Adapter protocol ----------------------------------------------------------------------------------

    def load(self, request: RunRequest) -> None:
        provider = request.provider
        gpu = provider == "cuda"
        policy = policy_for(request.precision)
        # Before TensorFlow loads CUDA, cuBLAS and cuDNN: they read these once.
        environment, kept = apply_environment(policy, gpu, request.cuda_jit_cache,
                                        {AUTOTUNE_VARIABLE: "1" if policy.autotune else "0"})
        tf = self.tf = _import_tf()
        self.configure_runtime(tf, request)
        self.math = math_facts(policy, gpu, apply_tensorflow_math(tf, policy, gpu), environment,
                               kept_environment=kept)
        if gpu:
            self.math["cuda_jit_cache"] = jit_cache_facts(request.cuda_jit_cache, gpu)
        self.provider = provider

        import keras

        from models.registry import get_model
        from models.tensorflow_models import build_tensorflow_model, input_signature, serving_function

        spec = self.spec = get_model(request.model)
        options = spec.resolve_options(request.model_options)
        self.output_names = spec.outputs
        previous_policy = keras.mixed_precision.global_policy()
        try:
            if request.precision == "fp16":
                keras.mixed_precision.set_global_policy("mixed_float16")
            with tf.device(self.device):
                self.model = build_tensorflow_model(request.model, options, request.weights)
        finally:
            keras.mixed_precision.set_global_policy(previous_policy)
        signature = input_signature(spec, request.batch_size, options, layout="NHWC", ids_dtype="int32")
        self.fn = tf.function(serving_function(self.model, spec), input_signature=signature,
                              jit_compile=self.jit_compile)
        if provider == "cuda":
            # A tf.function call returns once its GPU kernels are ENQUEUED on the device's stream: the outputs are
            # handles to buffers the GPU may still be computing.  sync_devices() blocks until every pending op on
            # every device has finished, which is what a latency sample must include.  (Without it - older TF -
            # fetching one element of the last output to the host waits for that stream, and the function's
            # kernels before it, to drain.)
            self._sync = getattr(getattr(tf.test, "experimental", None), "sync_devices", None)

    def context(self) -> contextlib.AbstractContextManager:
        # prepare, the first call (the trace) and every call after it run under the adapter's device.
        return self.tf.device(self.device)

    def prepare(self, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
        tf = self.tf
        kinds = {i.name: i.kind for i in self.spec.inputs}
        prepared = {}
        with tf.device(self.device):
            for name, array in inputs.items():
                if kinds.get(name) == "image":
                    array = np.ascontiguousarray(np.transpose(array, (0, 2, 3, 1)), dtype=np.float32)  # NCHW->NHWC
                elif kinds.get(name) != "user" and np.issubdtype(array.dtype, np.integer):  # a user's: as declared
                    array = np.ascontiguousarray(array, dtype=np.int32)
                prepared[name] = tf.identity(tf.constant(array))  # identity: a copy on self.device
        self._last = next(iter(prepared.values()))
        self.synchronize()
        return prepared

    def run(self, prepared: dict[str, Any]) -> Any:
        outputs = self.fn(**prepared)
        self._last = outputs
        return outputs

    def synchronize(self) -> None:
        # CPU: a tf.function call executes synchronously (the call returns with its outputs computed): no-op.
        if self.provider != "cuda":
            return
        if self._sync is not None:
            self._sync()
            return
        last = getattr(self, "_last", None)
        if last is not None:
            tensor = next(iter(last.values())) if isinstance(last, dict) else last
            tensor[(0,) * len(tensor.shape)].numpy()

    def to_numpy(self, outputs: Any) -> dict[str, np.ndarray]:
        missing = [n for n in self.output_names if n not in outputs]
        if missing:
            raise RuntimeError(f"model returned {', '.join(sorted(outputs))}; the registry names "
                               f"{', '.join(self.output_names)}")
        return {name: outputs[name].numpy() for name in self.output_names}

    # -- description -------------------------------------------------------------------------------------------

    def tracing_count(self) -> int:
        """How many times the tf.function was traced (1 after a run: traced once, in warm-up)."""
        return int(self.fn.experimental_get_tracing_count()) if self.fn is not None else 0

    def on_window_start(self) -> None:
        self._traces_at_window_start = self.tracing_count()

    def runtime_facts(self) -> dict[str, Any] | None:
        if self.fn is None:
            return {"math": self.math} if self.math is not None else None
        traces = self.tracing_count()
        facts: dict[str, Any] = {"jit_compile": self.jit_compile, "traces": traces}
        if self.math is not None:
            facts["math"] = self.math
        if self._traces_at_window_start is not None:  # a retrace in the window is a compilation measured as latency
            facts["traces_before_window"] = self._traces_at_window_start
            facts["traces_in_window"] = traces - self._traces_at_window_start
        return facts

    def versions(self) -> dict[str, str]:
        out = {}
        for dist in ("tensorflow", "keras", "keras-hub", "tensorflow-text"):
            with contextlib.suppress(metadata.PackageNotFoundError):
                out[dist] = metadata.version(dist)
        tf = self.tf
        if tf is not None:
            out["tensorflow"] = tf.__version__
            if self.provider == "cuda":
                with contextlib.suppress(Exception):
                    build = tf.sysconfig.get_build_info()
                    out["cuda"] = str(build.get("cuda_version"))
                    out["cudnn"] = str(build.get("cudnn_version"))
        return out

    def devices(self) -> list[str]:
        if self.provider is None:
            return []
        if self.provider == "cuda":
            return [f"cuda:{self.device_id}: {self.gpu_name}" if self.gpu_name else nvidia_gpu_name(self.device_id)]
        return [cpu_device()]

    def threads(self) -> int | None:
        if self.tf is None:
            return None
        configured = self.tf.config.threading.get_intra_op_parallelism_threads()
        return configured or self.n_threads  # 0: TensorFlow's default (all cores): not a number it reports

    def peak_device_bytes(self) -> int | None:
        if self.provider == "cuda" and self.memory_device:
            return int(self.tf.config.experimental.get_memory_info(self.memory_device)["peak"])
        return None
