"""tensorflow/xla/{cpu,cuda}: TensorFlow's native runtime with the model's tf.function compiled by XLA
(tf.function(jit_compile=True)), in the tensorflow environment.

Everything but the compiler is the native adapter's (runners.adapters.tensorflow_native): the same Keras model,
device scopes, inputs, threads, fp16 policy and synchronisation.
- Compilation: jit_compile=True makes the whole function one cluster XLA must compile (TensorFlow raises instead
  of falling back to its own kernels), on the first call: the first warm-up iteration, recorded as
  engine_build_seconds.  A budget without a warm-up iteration is refused: the compilation would fall inside the
  window.
- runtime_facts: the native adapter's (jit_compile, traces, traces_in_window: a retrace inside the window is a
  recompilation measured as latency), plus what XLA was given: the function's must-compile attribute and its
  HLO module (instruction count and digest), asked of experimental_get_compiler_ir after the run.
"""
from __future__ import annotations

import hashlib
from typing import Any

from runners.adapters.tensorflow_native import TensorflowNativeAdapter
from runners.failures import BadRequestError
from runners.protocol import RunRequest


class TensorflowXlaAdapter(TensorflowNativeAdapter):
    jit_compile = True

    def __init__(self) -> None:
        super().__init__()
        self._prepared: dict[str, Any] | None = None

    def check_request(self, request: RunRequest) -> None:
        super().check_request(request)
        budget = request.budget
        if budget.warmup_iterations < 1 and budget.warmup_seconds <= 0:
            raise BadRequestError(f"{request.runtime}: the budget has no warm-up iteration, and XLA compiles the "
                                  "function on its first call: compilation would fall inside the window; ask for "
                                  "warmup_iterations >= 1")

    def prepare(self, inputs):
        self._prepared = super().prepare(inputs)
        return self._prepared

    def runtime_facts(self) -> dict[str, Any] | None:
        facts = super().runtime_facts()
        if facts is None or self.fn is None:
            return facts
        facts["xla"] = self._xla_facts()
        return facts

    def _xla_facts(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        try:
            attr = self.fn.get_concrete_function().function_def.attr.get("_XlaMustCompile")
            out["must_compile"] = bool(attr.b) if attr is not None else False
        except Exception as exc:  # noqa: BLE001 - a fact we could not read is said, not guessed
            out["must_compile"] = f"unknown ({type(exc).__name__}: {exc})"
        if self._prepared is None:
            out["hlo"] = "unknown (the inputs were never prepared)"
            return out
        try:
            with self.tf.device(self.device):
                hlo = self.fn.experimental_get_compiler_ir(**self._prepared)(stage="hlo")
        except Exception as exc:  # noqa: BLE001
            out["hlo"] = f"unavailable ({type(exc).__name__}: {' '.join(str(exc).split())[:300]})"
            return out
        # An HLO instruction is a line "name = type op(...)"; the module's text digest tells two compilations apart.
        instructions = sum(1 for line in hlo.splitlines() if " = " in line and not line.lstrip().startswith("HloModule"))
        out["hlo"] = {"instructions": instructions, "sha256": hashlib.sha256(hlo.encode()).hexdigest()[:16]}
        return out
