"""Synthetic journals of runtimes measured from several client languages (runners/clients.py): records shaped as
the sweep writes them, with hand-chosen latencies and energies the tests reason about.

Each run's figures are a centre value times a seeded jitter of +-2 %: two clients 10 % apart never overlap (a
Mann-Whitney test on 8 runs a side separates them), two clients given the same values cannot be told apart.
"""
from __future__ import annotations

import numpy as np

from testkit.records import channel, make_record

ORT_PY = "onnxruntime/onnx-from-torch/cpu@python"
ORT_NODE = "onnxruntime/onnx-from-torch/cpu@node"
ORT_PLAIN = "onnxruntime/onnx-from-torch/cpu"
TS_PY = "torch/torchscript/cpu"
TS_CPP = "torch/torchscript/cpu@cpp"
RUNS = 8
ITERATIONS = 4
JITTER = 0.02


def jittered(centre: float, runs: int = RUNS, seed: int = 0) -> list[float]:
    """`runs` values within +-2 % of `centre`, the same for the same seed."""
    rng = np.random.default_rng(seed)
    return [float(v) for v in centre * (1 + rng.uniform(-JITTER, JITTER, runs))]


def client_run(run_id: str, index: int, repetition: int, runtime: str, p50_ms: float, *, model: str = "resnet50",
               batch_size: int = 1, j_per_inference: float | None = None) -> dict:
    """One successful run record of `runtime` (an id with or without a client suffix); energy on the CPU package
    where j_per_inference is given, else unavailable as on a host without a sensor."""
    channels = None
    if j_per_inference is not None:
        total = j_per_inference * ITERATIONS * batch_size
        channels = {"package-0": channel("cpu", total, total / 2)}
    record = make_record(run_id, model=model, batch_size=batch_size, runtime=runtime,
                         latencies_ms=(p50_ms,) * ITERATIONS, window_s=p50_ms * ITERATIONS / 1e3, channels=channels,
                         index=index)
    record["provider"] = runtime.split("/")[2].partition("@")[0]  # the suffix is the client's, not the provider's
    record["repetition"] = repetition
    record["samples_path"] = None
    return record


def client_journal(latency: dict[str, list[float]], energy: dict[str, list[float]] | None = None, *,
                   model: str = "resnet50", batch_size: int = 1, start: int = 0) -> list[dict]:
    """Runs of each runtime id in `latency` (its p50 per run), interleaved by repetition as a sweep orders them;
    `energy`: J per inference per run, for the runtimes it names."""
    records = []
    runs = max(len(v) for v in latency.values())
    for repetition in range(runs):
        for runtime, values in latency.items():
            if repetition >= len(values):
                continue
            jpi = energy[runtime][repetition] if energy and runtime in energy else None
            index = start + len(records)
            run_id = f"r{repetition:03d}-{model}-bs{batch_size}-{runtime.replace('/', '_').replace('@', '-')}"
            records.append(client_run(run_id, index, repetition, runtime, values[repetition], model=model,
                                      batch_size=batch_size, j_per_inference=jpi))
    return records


def gap_journal(energy: bool = False) -> list[dict]:
    """ORT from Python and Node.js (Node.js 10 % slower; with energy, 10 % more energy) and TorchScript from Python
    and C++ (C++ 10 % faster), at batch 1; the two ORT clients equal at batch 8."""
    ort = {ORT_PY: jittered(10.0, seed=1), ORT_NODE: jittered(11.0, seed=2)}
    ts = {TS_PY: jittered(20.0, seed=3), TS_CPP: jittered(18.0, seed=4)}
    joules = {ORT_PY: jittered(1.0, seed=5), ORT_NODE: jittered(1.1, seed=6)} if energy else None
    same = jittered(30.0, seed=7)
    records = client_journal(ort, joules)
    records += client_journal(ts, start=len(records))
    records += client_journal({ORT_PY: same, ORT_NODE: list(same)}, batch_size=8, start=len(records))
    return records
