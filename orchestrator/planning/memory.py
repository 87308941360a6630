"""How much memory a cell needs per batch, estimated before anything runs, so that an impossible batch size is
refused (or skipped, with the reason) when the sweep is planned instead of failing every run of it.

Pure: the figures come from the model's spec (input shapes and dtypes: a built-in's, or a user model's as its config
carries it) and from the per-model estimates below.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.registry import BUILT_IN_MODELS, ModelSpec, get_model

MIB = 2**20

# Working memory of one forward pass per sample (activations and the framework's scratch buffers), from the growth
# of peak RSS between batch 1 and batch 8 on this kind of machine (2 cores, torch 2.13 CPU, random weights,
# inference_mode, one thread, a fresh process per measurement; ru_maxrss after one forward pass):
#   mobilenet_v2 387,852 -> 470,116 KiB: 11.5 MiB a sample;  resnet50 478,284 -> 623,392 KiB: 20.2 MiB a sample;
#   bert-base-uncased (seq_len 128) 793,388 -> 826,020 KiB: 4.6 MiB a sample.
# Kept conservative: three times the measured slope (other frameworks' allocators keep more intermediate buffers
# alive, and TensorFlow and MXNet grow their pools in steps), and BERT's figure scaled with seq_len squared above
# 128 (attention scores grow with its square), linearly below.
MEASURED_MIB_PER_SAMPLE: dict[str, float] = {"mobilenet_v2": 11.5, "resnet50": 20.2, "bert-base-uncased": 4.6}
SAFETY_FACTOR = 3.0
_MEASURED_SEQ_LEN = 128


@dataclass(frozen=True)
class MemoryEstimate:
    model: str
    batch_size: int
    input_bytes: int  # exact: the batch's input arrays, from the spec's shapes and dtypes
    activation_bytes: int | None  # estimated working memory of the forward pass; None for a model not measured

    @property
    def total_bytes(self) -> int:
        return self.input_bytes + (self.activation_bytes or 0)


def input_bytes(spec: ModelSpec, batch_size: int, options: dict[str, Any]) -> int:
    """Bytes of one batch of the model's inputs (Python integers: no overflow however large the batch)."""
    return sum(math.prod(spec.input_shape(i, batch_size, options)) * np.dtype(i.dtype).itemsize for i in spec.inputs)


def activation_bytes(spec: ModelSpec, batch_size: int, options: dict[str, Any]) -> int | None:
    per_sample = MEASURED_MIB_PER_SAMPLE.get(spec.name)
    if per_sample is None:
        return None
    seq_len = options.get("seq_len")
    if seq_len is not None:
        ratio = seq_len / _MEASURED_SEQ_LEN
        per_sample *= ratio**2 if ratio > 1 else ratio
    return int(per_sample * SAFETY_FACTOR * MIB * batch_size)


def estimate(model: str | ModelSpec, batch_size: int, options: dict[str, Any]) -> MemoryEstimate:
    """`model`: a built-in model's name, or any model's spec (a sweep's own: SweepConfig.model_spec)."""
    spec = model if isinstance(model, ModelSpec) else get_model(model, BUILT_IN_MODELS)
    return MemoryEstimate(spec.name, batch_size, input_bytes(spec, batch_size, options),
                          activation_bytes(spec, batch_size, options))


def describe_bytes(n: int) -> str:
    for unit, size in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n / 1024:,.1f} KiB"


def oversized_reason(estimate: MemoryEstimate, host_memory_bytes: int | None, gpu_memory_bytes: int | None = None
                     ) -> str | None:
    """Why this batch cannot run at all: its inputs alone exceed the host's memory (every runtime makes its inputs
    on the host) or, for a GPU runtime, the smallest given GPU's. None when it may fit, or the memory is unknown."""
    needed = describe_bytes(estimate.input_bytes)
    activations = ("" if estimate.activation_bytes is None else
                   f" (about {describe_bytes(estimate.total_bytes)} with the forward pass's working memory)")
    where = f"{estimate.model} at batch {estimate.batch_size}"
    if host_memory_bytes is not None and estimate.input_bytes > host_memory_bytes:
        return (f"{where}: its inputs alone need {needed}{activations}, more than this host's "
                f"{describe_bytes(host_memory_bytes)} of memory")
    if gpu_memory_bytes is not None and estimate.input_bytes > gpu_memory_bytes:
        return (f"{where}: its inputs alone need {needed}{activations}, more than the GPU's "
                f"{describe_bytes(gpu_memory_bytes)} of memory")
    return None
