"""The columns the statistics read, and the per-inference energy columns the runs table does not carry itself."""
from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from runners.clients import PYTHON, split_client

CELL_KEYS = ("model", "batch_size", "runtime", "precision")
GROUP_KEYS = ("model", "batch_size", "precision")  # a group holds the runtimes competing for one model and batch


@dataclass(frozen=True)
class Metric:
    column: str
    label: str
    unit: str
    energy: bool  # an energy metric is missing (never zero) where the host has no sensor


METRICS = (
    Metric("j_per_inference", "energy per inference, total", "J", True),
    Metric("dynamic_j_per_inference", "energy per inference, total, idle-subtracted", "J", True),
    Metric("gpu_j_per_inference", "energy per inference, GPU", "J", True),
    Metric("gpu_dynamic_j_per_inference", "energy per inference, GPU, idle-subtracted", "J", True),
    Metric("cpu_j_per_inference", "energy per inference, CPU", "J", True),
    Metric("cpu_dynamic_j_per_inference", "energy per inference, CPU, idle-subtracted", "J", True),
    Metric("latency_p50_ms", "latency p50 per batch", "ms", False),
    Metric("latency_p90_ms", "latency p90 per batch", "ms", False),
    Metric("latency_p99_ms", "latency p99 per batch", "ms", False),
    Metric("throughput_per_s", "throughput", "inferences/s", False),
)
METRIC_BY_COLUMN = {m.column: m for m in METRICS}


def _per_inference(numerator: str) -> pl.Expr:
    samples = pl.col("iterations") * pl.col("batch_size")
    return pl.when(samples > 0).then(pl.col(numerator) / samples).otherwise(None)


def with_derived(runs: pl.DataFrame) -> pl.DataFrame:
    """The runs table plus per-inference energy per domain and seconds per inference.

    Columns a table lacks (an old journal, a sweep with no energy domain) are added as nulls, so every statistic
    sees the same schema and reports 'no value' rather than failing.
    """
    needed = {"iterations": pl.Int64, "batch_size": pl.Int64, "window_s": pl.Float64, "status": pl.String,
              "energy_status": pl.String, "energy_note": pl.String, "precision": pl.String,
              "j_per_inference": pl.Float64, "dynamic_j_per_inference": pl.Float64,
              "latency_p50_ms": pl.Float64, "latency_p90_ms": pl.Float64, "latency_p99_ms": pl.Float64,
              "throughput_per_s": pl.Float64}
    for domain in ("cpu", "gpu", "dram"):
        needed[f"{domain}_energy_j"] = pl.Float64
        needed[f"{domain}_dynamic_j"] = pl.Float64
    runs = runs.with_columns([pl.lit(None, dtype=t).alias(c) for c, t in needed.items() if c not in runs.columns])
    runs = runs.with_columns([pl.col(c).cast(t) for c, t in needed.items()])
    runs = with_client(runs)
    return runs.with_columns(
        _per_inference("gpu_energy_j").alias("gpu_j_per_inference"),
        _per_inference("gpu_dynamic_j").alias("gpu_dynamic_j_per_inference"),
        _per_inference("cpu_energy_j").alias("cpu_j_per_inference"),
        _per_inference("cpu_dynamic_j").alias("cpu_dynamic_j_per_inference"),
        _per_inference("dram_energy_j").alias("dram_j_per_inference"),
        pl.when(pl.col("iterations") * pl.col("batch_size") > 0)
        .then(pl.col("window_s") / (pl.col("iterations") * pl.col("batch_size"))).otherwise(None)
        .alias("s_per_inference"),
    )


def with_client(runs: pl.DataFrame) -> pl.DataFrame:
    """The runs table with its `client` column: the runtime id's suffix, "python" for a plain id (runners/clients.py).

    A table written before the column existed gets it here, so a notebook reading an old runs.parquet sees it too.
    """
    if "client" in runs.columns or "runtime" not in runs.columns:
        return runs
    clients = {r: split_client(r)[1] or PYTHON for r in runs["runtime"].drop_nulls().unique().to_list()}
    return runs.with_columns(pl.col("runtime").replace_strict(clients, default=None, return_dtype=pl.String)
                             .alias("client"))


def ok_runs(runs: pl.DataFrame) -> pl.DataFrame:
    return with_derived(runs).filter(pl.col("status") == "ok")


def energy_reason(runs: pl.DataFrame) -> str:
    """Why energy figures are missing from these runs, in the journal's own words (the most common note)."""
    if runs.is_empty() or "energy_note" not in runs.columns:
        return "no run recorded energy"
    # A run that finished says best why it has no figure; a failed run only says that it never had a window.
    finished = runs.filter(pl.col("status") == "ok") if "status" in runs.columns else runs.clear()
    if "j_per_inference" in finished.columns:
        finished = finished.filter(pl.col("j_per_inference").is_null())
    for candidates in (finished, runs.filter(pl.col("energy_status") != "ok")):
        notes = candidates["energy_note"].drop_nulls()
        notes = notes.filter(notes != "")
        if not notes.is_empty():
            return str(notes.value_counts(sort=True).row(0)[0])
    return "no run recorded energy"


_HOST_PREFIX = "no readable energy sensor on this host: "


def unavailable_text(note: str) -> str:
    """The one sentence a reader sees where energy figures would be."""
    return "energy unavailable on this host: " + note.removeprefix(_HOST_PREFIX)
