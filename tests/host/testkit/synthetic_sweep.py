"""A fixed synthetic sweep: records shaped like runs.jsonl's, with hand-chosen numbers the tests recompute.

resnet50 bs2 (energy measured on CPU and GPU):
  torch/native/cpu        5 runs, p50 10..14 ms, total energy 8 x (1.0..1.4) J -> J/inference 1.0..1.4
  tensorflow/native/cpu   5 runs, p50 10..14 ms (tied with torch), J/inference 3.0..3.4
  onnxruntime/onnx-from-torch/cpu  5 runs, p50 20..24 ms, J/inference 2.0..2.4, + 1 failed run
mobilenet_v2 bs1 (energy unavailable on that host):
  torch/native/cpu        1 run (a single-run cell), p50 5 ms
  onnxruntime/onnx-from-torch/cpu  3 runs, p50 6, 7, 8 ms
"""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from testkit.records import channel, make_record

TORCH, TF, ORT = "torch/native/cpu", "tensorflow/native/cpu", "onnxruntime/onnx-from-torch/cpu"
ITERATIONS = 4
LAT_R50 = {TORCH: [10.0, 11.0, 12.0, 13.0, 14.0], TF: [10.0, 11.0, 12.0, 13.0, 14.0], ORT: [20.0, 21.0, 22.0, 23.0, 24.0]}
JPI_R50 = {TORCH: [1.0, 1.1, 1.2, 1.3, 1.4], TF: [3.0, 3.1, 3.2, 3.3, 3.4], ORT: [2.0, 2.1, 2.2, 2.3, 2.4]}
GPU_SHARE = 0.75  # of each run's raw energy; the CPU package has the rest
DYNAMIC_SHARE = 0.5  # idle-subtracted energy / raw energy
LAT_MBV2 = {TORCH: [5.0], ORT: [6.0, 7.0, 8.0]}
REVISION = "0123456789abcdef0123456789abcdef01234567"
UNAVAILABLE = "no readable energy sensor on this host: rapl: no powercap tree at /fake"


def _run(run_id, index, model, batch, runtime, p50, jpi=None, repetition=0):
    samples = ITERATIONS * batch
    channels = None
    if jpi is not None:
        total = jpi * samples
        channels = {"package-0": channel("cpu", total * (1 - GPU_SHARE), total * (1 - GPU_SHARE) * DYNAMIC_SHARE),
                    "gpu-0": channel("gpu", total * GPU_SHARE, total * GPU_SHARE * DYNAMIC_SHARE)}
    record = make_record(run_id, model=model, batch_size=batch, runtime=runtime, latencies_ms=(p50,) * ITERATIONS,
                         window_s=p50 * ITERATIONS / 1e3, channels=channels, index=index)
    record["repetition"] = repetition
    if channels is None:
        record["energy"]["reason"] = UNAVAILABLE
    record["samples_path"] = None
    record["environment"] = runtime.split("/")[0]
    record["env_vars"] = {}
    if runtime.startswith("onnxruntime"):
        record["artifact"] = {"exporter": "torch.onnx.export (TorchScript)", "opset": 18}
        record["fidelity"] = {"status": "ok", "faithful": True, "max_abs_error": 1.5e-5, "min_cosine_similarity": 0.99999,
                              "top1_agreement": 1.0}
    return record


def journal() -> list[dict]:
    records, index = [], 0
    for runtime in (TORCH, TF, ORT):
        for rep, (p50, jpi) in enumerate(zip(LAT_R50[runtime], JPI_R50[runtime])):
            records.append(_run(f"r{rep:03d}-resnet50-{runtime.replace('/', '_')}", index, "resnet50", 2, runtime,
                                p50, jpi, rep))
            index += 1
    failed = make_record("r005-resnet50-ort", model="resnet50", batch_size=2, runtime=ORT, status="failed", index=index,
                         failure={"kind": "crash", "message": "runner exited with code 1", "log_tail": ""})
    records.append(failed)
    index += 1
    for runtime, lats in LAT_MBV2.items():
        for rep, p50 in enumerate(lats):
            records.append(_run(f"r{rep:03d}-mbv2-{runtime.replace('/', '_')}", index, "mobilenet_v2", 1, runtime,
                                p50, None, rep))
            index += 1
    return records


def unavailable_journal() -> list[dict]:
    """The same cells with no energy anywhere, as on a host without sensors."""
    out = []
    for record in journal():
        record = json.loads(json.dumps(record))
        record["energy"] = {"status": "unavailable", "reason": UNAVAILABLE, "channels": {}}
        out.append(record)
    return out


def _samples_frame(start_ns: int, end_ns: int) -> pl.DataFrame:
    """GPU power readings and a CPU energy counter (RAPL has no power), 50 ms apart, 1 s either side of the window."""
    step = 50_000_000
    times = list(range(start_ns - 1_000_000_000, end_ns + 1_000_000_000, step))
    rows = []
    for i, t in enumerate(times):
        inside = start_ns <= t <= end_ns
        rows.append({"t_ns": t, "channel": "gpu-0", "domain": "gpu", "energy_j": None,
                     "power_w": 200.0 if inside else 60.0})
        rows.append({"t_ns": t, "channel": "package-0", "domain": "cpu", "energy_j": i * 2.5, "power_w": None})
    frame = pl.DataFrame(rows, schema={"t_ns": pl.Int64, "channel": pl.String, "domain": pl.String,
                                       "energy_j": pl.Float64, "power_w": pl.Float64})
    return frame.with_columns(pl.lit(None, pl.Float64).alias("temperature_c"),
                              pl.lit(None, pl.Int64).alias("sm_clock_mhz"), pl.lit(None, pl.Int64).alias("mem_clock_mhz"),
                              pl.lit(None, pl.UInt64).alias("throttle_reasons"), pl.lit(False).alias("wrapped"),
                              pl.lit(False).alias("backwards"))


def write_sweep(root: Path, records: list[dict] | None = None, with_samples: bool = True) -> Path:
    records = journal() if records is None else records
    root.mkdir(parents=True, exist_ok=True)
    if with_samples:
        first = records[0]
        path = root / "samples" / f"{first['run_id']}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        _samples_frame(first["result"]["window_start_ns"], first["result"]["window_end_ns"]).write_parquet(path)
        first["samples_path"] = str(path.relative_to(root))
        # Where the Docker launcher records the image it ran (orchestrator/execution/launchers/docker.py).
        first["launch"] = {"container": "greenrt-run-r000", "image": "greenrt/torch:cpu@sha256:" + "cd" * 32}
    plan = {"config_digest": "feedfacecafe0001", "config_name": "synthetic", "seed": 0,
            "runs": [{"run_id": r["run_id"], "index": r["index"]} for r in records],
            "skipped": [{"cell": {"model": "bert-base-uncased", "batch_size": 1, "runtime": "mxnet/native/cuda",
                                  "precision": "fp32"}, "reason": "needs an NVIDIA GPU"}]}
    host = {"hostname": "synthhost", "cpu_model": "Synthetic CPU", "logical_cpus": 4, "machine": "x86_64",
            "memory_bytes": 8 * 2**30, "os": "Linux 6.0", "python": "3.11.7", "greenrt_revision": REVISION,
            "sensors": [{"name": "nvml", "available": True, "reason": "1 GPU(s), driver 999.1: Fake",
                         "channels": {}, "details": {"driver_version": "999.1"}}],
            "container_engine": {"available": False, "reason": "no Docker engine reachable"}}
    (root / "plan.json").write_text(json.dumps(plan))
    (root / "host.json").write_text(json.dumps(host))
    with open(root / "runs.jsonl", "w") as fh:
        for record in records:
            fh.write(json.dumps(record) + "\n")
    return root
