"""What a built-in model costs, to guess a sweep's times on a host that never ran it (planning/time_budget.py).

A run's window and warm-up last `iterations x latency`, and a CPU's latency follows the model's arithmetic: its
floating-point operations per sample over what the host's cores sustain. The operation counts are the models' own
(published counts of the architectures, 2 operations per multiply-add); the throughput per core is a measured prior,
not a constant of nature: where an earlier run on this host exists, the estimate uses it instead (CHAINS there).

Pure; a model without a count (a user's own, a generative one) gets None and its phases keep the plain guesses.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# GFLOP per sample at the default input: ResNet-50 4.1 GMAC at 224x224, MobileNetV2 (width 1.0) 0.30 GMAC.
IMAGE_GFLOP = {"resnet50": 8.2, "mobilenet_v2": 0.6}
# BERT-base: 85 M weights outside the embeddings, 2 operations each per token, and attention's
# 4 x layers x hidden operations per token and position (scores and the weighted sum).
BERT_WEIGHT_GFLOP_PER_TOKEN = 2 * 85e6 / 1e9
BERT_ATTENTION_GFLOP = 4 * 12 * 768 / 1e9
# Millions of parameters: what an export reads, converts, writes and checks grows with them.
PARAMETERS_M = {"resnet50": 25.6, "mobilenet_v2": 3.5, "bert-base-uncased": 110.0}
# A CPU inference runtime's sustained throughput per core: the median over the 36 runs of configs/quick.toml
# (3 models x 2 batches x 6 runtimes) on a quiet 2-core AVX-512 VM on 2026-12-07 was 150 GFLOP/s in all; the
# runs spread from 0.1x (PyTorch's MobileNetV2 at batch 64) to 1.5x that median (BENCHMARKS.md, time estimate).
CPU_GFLOPS_PER_CORE = 75.0
# An export: start-up and checks, then its time grows with the model (1.8 to 89 s for 3.5 M to 110 M parameters
# on the same VM: 0.4 s per million parameters in the median, TensorFlow's BERT the slowest at 0.8 s).
EXPORT_BASE_S = 3.0
EXPORT_S_PER_M_PARAMETERS = 0.4


def gflop_per_sample(model: str, options: Mapping[str, Any] | None = None) -> float | None:
    """Floating-point operations of one sample's inference, in GFLOP; None where greenrt has no count."""
    if model in IMAGE_GFLOP:
        return IMAGE_GFLOP[model]
    if model == "bert-base-uncased":
        seq_len = int((options or {}).get("seq_len", 128))
        return seq_len * (BERT_WEIGHT_GFLOP_PER_TOKEN + BERT_ATTENTION_GFLOP * seq_len)
    return None


def cpu_latency_guess(model: str, batch_size: int, cores: int | None,
                      options: Mapping[str, Any] | None = None) -> float | None:
    """Seconds per batch on `cores` CPU cores, from the model's operations at the prior throughput; None where the
    model's count or the host's cores are unknown."""
    gflop = gflop_per_sample(model, options)
    if gflop is None or not cores:
        return None
    return gflop * batch_size / (CPU_GFLOPS_PER_CORE * cores)


def export_guess(model: str) -> float | None:
    """Seconds of one export of `model` (any source framework), None where its size is unknown."""
    size = PARAMETERS_M.get(model)
    return None if size is None else EXPORT_BASE_S + EXPORT_S_PER_M_PARAMETERS * size
