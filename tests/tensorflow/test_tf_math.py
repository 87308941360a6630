"""TensorFlow under the math policy, and the order of its start-up: threads are fixed before anything initialises
TensorFlow's runtime, so a GPU cell with `threads` set is run, not refused."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import tensorflow as tf

import tf_helpers  # noqa: F401  (sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads)
from runners.adapters.tensorflow_native import TensorflowNativeAdapter, apply_tensorflow_math
from runners.loop import execute
from runners.math_policy import POLICY, policy_for
from tf_helpers import make_request


class FakeTensorflow:
    """TensorFlow's configuration calls as far as the adapter's start-up uses them, with TensorFlow's rule: once the
    runtime is initialised (listing logical devices does it), thread pools and visibility are fixed."""

    def __init__(self, gpus: int = 1) -> None:
        self.initialised = False
        self.calls: list[str] = []
        self.intra = 0
        physical = [SimpleNamespace(name=f"/physical_device:GPU:{i}", device_type="GPU") for i in range(gpus)]
        fake = self

        def fixed_after_init(name):
            def call(*args, **kwargs):
                fake.calls.append(name)
                if fake.initialised:
                    raise RuntimeError(f"{name} cannot be modified after initialization")
            return call

        def set_threads(n):
            fixed_after_init("set_intra_op_parallelism_threads")()
            fake.intra = n

        def list_logical(kind):
            fake.calls.append("list_logical_devices")
            fake.initialised = True
            return [SimpleNamespace(name=f"/device:GPU:{i}") for i in range(len(physical))]

        self.config = SimpleNamespace(
            list_physical_devices=lambda kind: list(physical),
            set_visible_devices=fixed_after_init("set_visible_devices"),
            list_logical_devices=list_logical,
            threading=SimpleNamespace(set_intra_op_parallelism_threads=set_threads,
                                      get_intra_op_parallelism_threads=lambda: fake.intra),
            experimental=SimpleNamespace(set_memory_growth=fixed_after_init("set_memory_growth"),
                                         get_device_details=lambda gpu: {"device_name": "NVIDIA H200"},
                                         reset_memory_stats=lambda name: None))
        self.sysconfig = SimpleNamespace(get_build_info=lambda: {"is_cuda_build": True})


def test_a_gpu_cell_with_threads_sets_them_before_tensorflow_initialises(tmp_path):
    fake = FakeTensorflow()
    adapter = TensorflowNativeAdapter()
    request = make_request(tmp_path, runtime="tensorflow/native/cuda", threads=4,
                           provider_options={"memory_growth": True})
    adapter.configure_runtime(fake, request)
    assert fake.intra == 4 and adapter.n_threads == 4
    assert fake.calls.index("set_intra_op_parallelism_threads") < fake.calls.index("list_logical_devices")
    assert adapter.device == "/GPU:0" and adapter.gpu_name == "NVIDIA H200"


def test_threads_asked_of_an_already_initialised_tensorflow_are_refused_with_the_reason(tmp_path):
    fake = FakeTensorflow()
    fake.initialised = True
    with pytest.raises(Exception, match="already initialised"):
        TensorflowNativeAdapter().configure_runtime(fake, make_request(tmp_path, threads=3))


@pytest.fixture
def restore_tf32():
    before = tf.config.experimental.tensor_float_32_execution_enabled()
    yield
    tf.config.experimental.enable_tensor_float_32_execution(before)


def test_fp32_turns_tensorflow_s_tf32_off_and_tf32_on(restore_tf32):
    tf.config.experimental.enable_tensor_float_32_execution(True)  # TensorFlow's default
    settings = apply_tensorflow_math(tf, policy_for("fp32"), gpu=True)
    assert tf.config.experimental.tensor_float_32_execution_enabled() is False
    assert settings["tf.config.experimental.tensor_float_32_execution_enabled"] is False
    settings = apply_tensorflow_math(tf, policy_for("tf32"), gpu=True)
    assert settings["tf.config.experimental.tensor_float_32_execution_enabled"] is True


def test_a_cpu_run_records_the_policy(tmp_path, restore_tf32):
    result = execute(make_request(tmp_path))
    assert result.status == "ok", result.error
    math = result.runtime_facts["math"]
    assert math["policy"] == POLICY and math["tf32_requested"] is None
    assert math["settings"]["tf.config.experimental.tensor_float_32_execution_enabled"] is False
