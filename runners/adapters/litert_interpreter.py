"""litert/tflite-from-<framework>/cpu: LiteRT's (TensorFlow Lite's) Interpreter on request.artifact_path, a .tflite
file converted in the source framework's environment (models.tensorflow_export.export_tflite).

- Delegate: LiteRT's default, XNNPACK on the CPU (OpResolverType.AUTO applies it when the tensors are allocated,
  before the window); runtime_facts() records whether it took the graph (the interpreter's DELEGATE nodes).
- CPU only: LiteRT publishes no CUDA build (its GPU delegate is OpenCL/OpenGL/Metal for mobile devices), so there
  is no litert/.../cuda runtime.
- threads: request.threads is the interpreter's num_threads (XNNPACK's thread pool); None keeps LiteRT's default
  (num_threads -1, "the runtime decides"), recorded as such.
- Inputs arrive NCHW from models.inputs; the converted model takes images NHWC, as TensorFlow's native runtime does.
  prepare() transposes them, casts to the model's dtypes, resizes the model's dynamic batch axis to the request's,
  allocates and sets the input tensors, all before the window; run() is one Invoke.  TFLite's arena planner never
  reuses a graph input's memory, so every iteration reads the same inputs.  Outputs stay in the interpreter until
  to_numpy().
- fp32 only (a quantized TFLite model is another conversion, not a precision of this one).

TfliteModel is also what models.export_flow verifies a fresh .tflite file with, in the tensorflow environment
(TensorFlow's own tf.lite.Interpreter there): the path measured is the path verified.
"""
from __future__ import annotations

import contextlib
import warnings
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from runners.adapters.contract import Adapter, import_framework
from runners.failures import BadRequestError
from runners.hostinfo import cpu_device
from runners.protocol import RunRequest


def interpreter_class() -> tuple[type, str] | None:
    """(Interpreter class, the distribution it comes from): LiteRT's; else TensorFlow's own tf.lite.Interpreter (the
    same runtime, deprecated in TensorFlow in favour of LiteRT) where only TensorFlow is installed; else None."""
    with contextlib.suppress(ModuleNotFoundError):
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert"
    with contextlib.suppress(ModuleNotFoundError):
        import tensorflow as tf

        return tf.lite.Interpreter, "tensorflow"
    return None


def model_feed(details: dict[str, dict[str, Any]], arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The registry's inputs as the .tflite model takes them: images NCHW -> NHWC where the model's signature is
    NHWC, every array in the model's dtype and contiguous."""
    missing = sorted(set(details) - set(arrays))
    if missing:
        raise BadRequestError(f"the .tflite model takes {', '.join(sorted(details))}; no input named "
                              f"{', '.join(missing)}")
    feed = {}
    for name, detail in details.items():
        array = np.asarray(arrays[name])
        model_shape = [int(d) for d in detail["shape_signature"]][1:]
        if array.ndim == 4 and list(array.shape[1:]) != model_shape \
                and model_shape == [array.shape[2], array.shape[3], array.shape[1]]:
            array = np.transpose(array, (0, 2, 3, 1))
        feed[name] = np.ascontiguousarray(array, dtype=detail["dtype"])
    return feed


class TfliteModel:
    """One .tflite file in an interpreter, its signature's inputs and outputs by name."""

    def __init__(self, interpreter_cls: type, path: str, num_threads: int | None) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
            self.interpreter = interpreter_cls(model_path=path, num_threads=num_threads)
        runner = self.interpreter.get_signature_runner()  # the converter writes one signature, serving_default
        self.inputs = runner.get_input_details()
        self.outputs = runner.get_output_details()
        del runner  # it holds the interpreter, which refuses to resize while anything else does

    def bind(self, arrays: dict[str, np.ndarray]) -> None:
        """Resize the inputs to the arrays' shapes, allocate (the delegate takes the graph here) and set them."""
        feed = model_feed(self.inputs, arrays)
        for name, array in feed.items():
            self.interpreter.resize_tensor_input(self.inputs[name]["index"], list(array.shape), strict=True)
        self.interpreter.allocate_tensors()
        for name, array in feed.items():
            self.interpreter.set_tensor(self.inputs[name]["index"], array)

    def invoke(self) -> None:
        self.interpreter.invoke()

    def results(self, names: tuple[str, ...] | list[str]) -> dict[str, np.ndarray]:
        missing = [n for n in names if n not in self.outputs]
        if missing:
            raise RuntimeError(f"the .tflite model returns {', '.join(sorted(self.outputs))}; the registry names "
                               f"{', '.join(names)}")
        return {name: self.interpreter.get_tensor(self.outputs[name]["index"]) for name in names}

    def delegation(self) -> dict[str, Any]:
        """Whether a delegate took the graph: the interpreter keeps the model's nodes and adds one DELEGATE node per
        partition a delegate replaced (XNNPACK is the only delegate LiteRT applies by default)."""
        try:
            ops = Counter(op["op_name"] for op in self.interpreter._get_ops_details())  # noqa: SLF001 - no public API
        except Exception as exc:  # noqa: BLE001
            return {"delegate": "unknown", "reason": f"{type(exc).__name__}: {exc}"}
        partitions = ops.pop("DELEGATE", 0)
        return {"delegate": "XNNPACK (LiteRT's default CPU delegate)" if partitions else "none (builtin kernels)",
                "delegate_partitions": partitions, "model_ops": dict(sorted(ops.items()))}


class LiteRtAdapter(Adapter):
    def __init__(self) -> None:
        self.model: TfliteModel | None = None
        self.interpreter_source: str | None = None
        self.output_names: tuple[str, ...] = ()
        self._delegation: dict[str, Any] | None = None

    def check_request(self, request: RunRequest) -> None:
        super().check_request(request)
        if not request.artifact_path:
            raise BadRequestError(f"{request.runtime} runs a converted model: request.artifact_path must name "
                                  "its .tflite file")
        if not Path(request.artifact_path).is_file():
            raise BadRequestError(f"{request.runtime}: no .tflite file at {request.artifact_path}")

    def load(self, request: RunRequest) -> None:
        import_framework("ai_edge_litert")
        found = interpreter_class()
        assert found is not None  # ai_edge_litert imported just above
        cls, self.interpreter_source = found
        from models.registry import get_model

        self.output_names = get_model(request.model).outputs
        self.model = TfliteModel(cls, request.artifact_path, request.threads)
        self.provider = "cpu"
        self.n_threads = request.threads

    def prepare(self, inputs: dict[str, np.ndarray]) -> TfliteModel:
        self.model.bind(inputs)
        self._delegation = self.model.delegation()
        return self.model

    def run(self, prepared: TfliteModel) -> TfliteModel:
        prepared.invoke()
        return prepared

    def to_numpy(self, outputs: TfliteModel) -> dict[str, np.ndarray]:
        return outputs.results(self.output_names)

    def versions(self) -> dict[str, str]:
        out = {}
        for dist in ("ai-edge-litert", "flatbuffers"):
            with contextlib.suppress(metadata.PackageNotFoundError):
                out[dist] = metadata.version(dist)
        return out

    def devices(self) -> list[str]:
        return [cpu_device()] if self.provider else []

    def runtime_facts(self) -> dict[str, Any] | None:
        if self.model is None:
            return None
        threads = self.n_threads if self.n_threads is not None else "LiteRT's default (num_threads -1)"
        return {"interpreter": f"{self.interpreter_source}: Interpreter", "num_threads": threads,
                **(self._delegation or {"delegate": "unknown", "reason": "the tensors were never allocated"})}
