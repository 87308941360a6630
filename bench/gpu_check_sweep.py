"""Reading a gpu-check sweep's results directory: the runs table, each run's window and its raw samples.

Host-side only (polars, the orchestrator's store and sampler), no GPU: tested on a synthetic results directory.
Columns are read defensively: the runs table gains and loses columns as the orchestrator grows (`gpu_energy_j`,
`energy_gpu-<i>_j`, `gpu_energy_method`, ...), and a missing one is reported as missing, never as 0.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gpu_check_calc import cell_summaries, counter_vs_power, energy_per_inference, window_coverage


def runs_rows(out: Path, records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """The runs table as dicts, and where it came from: the sweep's tables/runs.parquet when it holds every run of
    the journal, else the same table made now from the journal (a sweep stopped before it wrote its tables)."""
    import polars as pl

    from orchestrator.results.tables import runs_table

    latest_ids = {r["run_id"] for r in records}
    parquet = out / "tables" / "runs.parquet"
    if parquet.exists():
        frame = pl.read_parquet(parquet)
        if "run_id" in frame.columns and set(frame.get_column("run_id").to_list()) == latest_ids:
            return frame.to_dicts(), str(parquet)
    if not records:
        return [], "no runs recorded"
    return runs_table(records).to_dicts(), "runs_table() of the journal (tables/runs.parquet missing or stale)"


def _failure_text(record: dict[str, Any]) -> str | None:
    failure = record.get("failure")
    if not failure:
        return None
    return f"{failure.get('kind')}: {str(failure.get('message') or '')[:400]}"


def _median_spacing_ms(t_ns: np.ndarray) -> float | None:
    return float(np.median(np.diff(t_ns))) / 1e6 if t_ns.size >= 2 else None


def channel_checks(samples_path: Path, start_ns: int, end_ns: int,
                   energy_channels: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per GPU channel of a run's samples: coverage of the window, counter against power integral; and, as the
    energy accounting recorded it, the channel's energy and edge figures (reported by gpu_check_edges)."""
    from orchestrator.measurement.sampler import SampleSeries

    series = SampleSeries.read_parquet(samples_path)
    out: dict[str, dict[str, Any]] = {}
    for channel, domain in sorted(series.channels.items()):
        if domain != "gpu":
            continue
        t, energy, power = series.channel_arrays(channel)
        read = np.isfinite(energy) | np.isfinite(power)
        accounted = energy_channels.get(channel) or {}
        out[channel] = {
            "coverage": window_coverage(t[read], start_ns, end_ns) if read.any() else None,
            "counter_vs_power": counter_vs_power(t, energy, power, start_ns, end_ns),
            # What the accounting saw the counter through: the period it found is checked against this spacing.
            "sampling_interval_ms": _median_spacing_ms(t[np.isfinite(energy)]),
            "energy_samples": int(np.isfinite(energy).sum()),
            "power_samples": int(np.isfinite(power).sum()),
            "read_errors": sum(1 for e in series.errors if channel in e.channels),
            "orchestrator_raw_j": accounted.get("raw_j"),
            "orchestrator_method": accounted.get("method"),
            "orchestrator_status": accounted.get("status"),
            "orchestrator_assigned": accounted.get("assigned"),
            "orchestrator_edge_uncertainty_j": accounted.get("edge_uncertainty_j"),
            "orchestrator_counter_period_s": accounted.get("counter_period_s"),
            "orchestrator_counter_period_source": accounted.get("counter_period_source"),
            "orchestrator_edge_note": accounted.get("edge_note"),
        }
    return out


def analyse_sweep(out: Path) -> dict[str, Any]:
    """Per run and per cell: latency, energy per inference, sample coverage and counter/power-integral ratio."""
    from orchestrator.results.store import ResultsDir

    out = Path(out)
    results = ResultsDir(out)
    records, problems = results.records()
    latest = {r.run_id: r.to_journal() for r in records}  # the journal's own JSON shape, as the tables read it
    rows, source = runs_rows(out, list(latest.values()))
    runs = []
    notes = [p.message for p in problems]
    for row in rows:
        record = latest.get(row.get("run_id")) or {}
        result = record.get("result") or {}
        entry: dict[str, Any] = {
            "run_id": row.get("run_id"), "model": row.get("model"), "batch_size": row.get("batch_size"),
            "precision": row.get("precision"), "repetition": row.get("repetition"), "status": row.get("status"),
            "failure": _failure_text(record), "iterations": row.get("iterations"), "window_s": row.get("window_s"),
            "latency_p50_ms": row.get("latency_p50_ms"), "latency_mean_ms": row.get("latency_mean_ms"),
            "throughput_per_s": row.get("throughput_per_s"), "energy_status": row.get("energy_status"),
            "energy_note": row.get("energy_note"), "energy": energy_per_inference(row), "channels": {},
            # The accounting's edge uncertainty of the run's own GPUs together (None: not known, or not recorded).
            "edge_uncertainty_j": (record.get("energy") or {}).get("edge_uncertainty_j"),
            "devices": result.get("devices"),
        }
        start, end = result.get("window_start_ns"), result.get("window_end_ns")
        samples = record.get("samples_path")
        if row.get("status") == "ok" and start and end and samples and (out / samples).exists():
            try:
                entry["channels"] = channel_checks(out / samples, int(start), int(end),
                                                   (record.get("energy") or {}).get("channels") or {})
            except Exception as exc:  # one unreadable samples file is a finding about that run, not a crash
                notes.append(f"{row.get('run_id')}: samples unreadable ({type(exc).__name__}: {exc})")
        elif row.get("status") == "ok":
            notes.append(f"{row.get('run_id')}: no samples file or no window: coverage and ratio not computed")
        runs.append(entry)
    return {"out": str(out), "table": source, "runs": runs, "cells": cell_summaries(runs), "notes": notes}
