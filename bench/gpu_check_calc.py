"""The pure computations of `make gpu-check` (bench/gpu_check.py): numpy in, plain dicts out, no GPU needed.

- counter_update_period: from a fast-polled cumulative reading (NVML's total-energy counter, or the power
  reading), the instants it changed and the intervals between changes;
- window_coverage: how well a run's samples cover its measured window;
- counter_vs_power: a window's counter difference against the integral of the sampled power over the same window;
- energy_per_inference: a runs-table row's energy per inference, read defensively (columns come and go);
- latency_stats, cell_summaries and harness_overhead: the bare loop against the orchestrator's runs.

Imported by the tests in the host venv and by bench/gpu_check.py on the GPU host; orchestrator.measurement.energy (numpy only)
supplies the interpolation and the power integral, so these figures mean what the orchestrator's do.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from orchestrator.measurement.energy import WindowNotCovered, counter_at, integrate_power

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000


def _stats_ms(values_ms: np.ndarray) -> dict[str, float] | None:
    if values_ms.size == 0:
        return None
    return {"median": float(np.median(values_ms)), "min": float(values_ms.min()), "max": float(values_ms.max()),
            "p10": float(np.percentile(values_ms, 10)), "p90": float(np.percentile(values_ms, 90)),
            "mean": float(values_ms.mean())}


def counter_update_period(t_ns: Sequence[int], values: Sequence[float]) -> dict[str, Any]:
    """How often a polled reading changes: intervals between the first polls that saw each new value.

    Each change is seen up to one poll interval late, so every interval is known to about +-1 poll interval
    (`resolution_ms`). With fewer than two changes there is no interval, and `update_period_ms` is None.
    """
    t = np.asarray(t_ns, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if t.shape != v.shape:
        raise ValueError(f"{t.size} timestamps but {v.size} values")
    if t.size and np.any(np.diff(t) < 0):
        raise ValueError("timestamps go backwards")
    polls = int(t.size)
    poll_ms = np.diff(t).astype(np.float64) / NS_PER_MS
    steps = np.diff(v)
    changed = np.flatnonzero(steps != 0) + 1  # index of the first poll that saw a new value
    intervals_ms = np.diff(t[changed]).astype(np.float64) / NS_PER_MS
    increments = steps[steps != 0]
    return {
        "polls": polls,
        "seconds": float((t[-1] - t[0]) / NS_PER_S) if polls >= 2 else 0.0,
        "poll_interval_ms_median": float(np.median(poll_ms)) if poll_ms.size else None,
        "resolution_ms": float(np.median(poll_ms)) if poll_ms.size else None,
        "changes": int(changed.size),
        "backwards": int(np.count_nonzero(steps < 0)),
        "update_period_ms": _stats_ms(intervals_ms),
        "increment_median": float(np.median(increments)) if increments.size else None,
    }


def window_coverage(t_ns: Sequence[int], start_ns: int, end_ns: int) -> dict[str, Any]:
    """How a channel's sample times cover the window [start_ns, end_ns].

    spanned_fraction: (last sample inside - first sample inside) / window length; bracketed: a sample at or before
    the start and one at or after the end exist, so the counter can be interpolated at both edges (what the
    orchestrator needs); max_gap_ms: the largest gap between consecutive samples from the last one at or before the
    start to the first one at or after the end.
    """
    t = np.sort(np.asarray(t_ns, dtype=np.int64))
    start_ns, end_ns = int(start_ns), int(end_ns)
    if end_ns <= start_ns:
        raise ValueError(f"empty or reversed window ({start_ns} .. {end_ns})")
    window_s = (end_ns - start_ns) / NS_PER_S
    inside = t[(t >= start_ns) & (t <= end_ns)]
    before, after = t[t <= start_ns], t[t >= end_ns]
    bracketed = bool(before.size and after.size)
    lo = int(np.searchsorted(t, before[-1], side="left")) if before.size else 0
    hi = int(np.searchsorted(t, after[0], side="right")) if after.size else t.size
    span = t[lo:hi]
    gaps = np.diff(span).astype(np.float64) / NS_PER_MS
    return {
        "window_s": window_s,
        "samples_in_window": int(inside.size),
        "samples_per_s": inside.size / window_s,
        "spanned_fraction": float((inside[-1] - inside[0]) / (end_ns - start_ns)) if inside.size >= 2 else 0.0,
        "bracketed": bracketed,
        "lead_ms": float((start_ns - before[-1]) / NS_PER_MS) if before.size else None,
        "trail_ms": float((after[0] - end_ns) / NS_PER_MS) if after.size else None,
        "max_gap_ms": float(gaps.max()) if gaps.size else None,
    }


def counter_vs_power(t_ns: Sequence[int], energy_j: Sequence[float], power_w: Sequence[float], start_ns: int,
                     end_ns: int) -> dict[str, Any]:
    """Counter difference over the window against the trapezoid integral of the sampled power over it.

    ratio = counter / power integral. Near 1 when both are sound; on GPUs whose power reading is a 1-second
    average, the integral lags the load by about half a second at each edge, so short windows stray further.
    Missing values (nan) are dropped per signal; a signal that does not cover the window gives None and a reason.
    """
    t = np.asarray(t_ns, dtype=np.int64)
    e = np.asarray(energy_j, dtype=np.float64)
    p = np.asarray(power_w, dtype=np.float64)
    seconds = (int(end_ns) - int(start_ns)) / NS_PER_S
    out: dict[str, Any] = {"counter_j": None, "power_integral_j": None, "ratio": None, "counter_mean_w": None,
                           "power_mean_w": None, "reason": ""}
    reasons = []
    ok_e = np.isfinite(e)
    if ok_e.sum() >= 2:
        try:
            out["counter_j"] = counter_at(t[ok_e], e[ok_e], end_ns) - counter_at(t[ok_e], e[ok_e], start_ns)
        except WindowNotCovered as exc:
            reasons.append(f"counter: {exc}")
    else:
        reasons.append("counter: no energy-counter samples")
    ok_p = np.isfinite(p)
    if ok_p.sum() >= 2:
        try:
            out["power_integral_j"] = integrate_power(t[ok_p], p[ok_p], start_ns, end_ns)
        except WindowNotCovered as exc:
            reasons.append(f"power: {exc}")
    else:
        reasons.append("power: no power samples")
    if seconds > 0:
        for key, mean in (("counter_j", "counter_mean_w"), ("power_integral_j", "power_mean_w")):
            if out[key] is not None:
                out[mean] = out[key] / seconds
    if out["counter_j"] is not None and out["power_integral_j"]:
        out["ratio"] = out["counter_j"] / out["power_integral_j"]
    out["reason"] = "; ".join(reasons)
    return out


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def gpu_energy_of(row: Mapping[str, Any]) -> float | None:
    """The GPU energy of a runs-table row: its `gpu_energy_j` (the GPUs given to the run) where the table has that
    column, else (tables from before it) the sum of its `energy_gpu-<i>_j` columns."""
    if "gpu_energy_j" in row:
        return _number(row["gpu_energy_j"])
    parts = [_number(v) for k, v in row.items() if k.startswith("energy_gpu-") and k.endswith("_j")]
    if parts and None not in parts:
        return float(sum(parts))
    return None


def energy_per_inference(row: Mapping[str, Any]) -> dict[str, Any]:
    """Per-inference (one sample: iterations x batch size) and per-batch energy of one runs-table row."""
    iterations = _number(row.get("iterations")) or 0.0
    batch = _number(row.get("batch_size")) or 0.0
    window_s = _number(row.get("window_s"))
    inferences = iterations * batch
    gpu_j = gpu_energy_of(row)
    total_j = _number(row.get("total_energy_j"))
    gpu_dynamic_j = _number(row.get("gpu_dynamic_j"))

    def per(value: float | None, n: float) -> float | None:
        return value / n if value is not None and n else None

    return {
        "inferences": int(inferences),
        "gpu_energy_j": gpu_j,
        "total_energy_j": total_j,
        "gpu_j_per_inference": per(gpu_j, inferences),
        "total_j_per_inference": per(total_j, inferences),
        "gpu_dynamic_j_per_inference": per(gpu_dynamic_j, inferences),
        "gpu_j_per_batch": per(gpu_j, iterations),
        "gpu_mean_power_w": per(gpu_j, window_s or 0.0),
        "node_gpu_energy_j": _number(row.get("node_gpu_energy_j")),
        "other_gpus_energy_j": _number(row.get("other_gpus_energy_j")),
        "energy_domains": row.get("energy_domains"),
        "gpu_energy_method": row.get("gpu_energy_method"),
    }


def latency_stats(latencies_ns: Iterable[int]) -> dict[str, Any]:
    ms = np.asarray(list(latencies_ns), dtype=np.float64) / NS_PER_MS
    if ms.size == 0:
        return {"n": 0, "p50_ms": None, "mean_ms": None, "p10_ms": None, "p90_ms": None, "min_ms": None}
    return {"n": int(ms.size), "p50_ms": float(np.median(ms)), "mean_ms": float(ms.mean()),
            "p10_ms": float(np.percentile(ms, 10)), "p90_ms": float(np.percentile(ms, 90)), "min_ms": float(ms.min())}


def _median(values: Iterable[Any]) -> float | None:
    numbers = [n for n in (_number(v) for v in values) if n is not None]
    return float(statistics.median(numbers)) if numbers else None


def cell_summaries(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per (model, batch size, precision): runs ok of all, and the median over ok repetitions of each figure.

    `runs` are gpu_check's per-run entries: model, batch_size, precision, status, latency_p50_ms, `energy`
    (energy_per_inference) and `channels` (per GPU channel: coverage and counter_vs_power).
    """
    cells: dict[tuple, list[Mapping[str, Any]]] = {}
    for run in runs:
        cells.setdefault((run.get("model"), run.get("batch_size"), run.get("precision")), []).append(run)
    out = []
    for (model, batch, precision), members in cells.items():
        ok = [r for r in members if r.get("status") == "ok"]
        channels = [c for r in ok for c in (r.get("channels") or {}).values()]

        def energy(key: str) -> float | None:
            return _median((r.get("energy") or {}).get(key) for r in ok)

        out.append({
            "model": model, "batch_size": batch, "precision": precision, "runs": len(members), "ok": len(ok),
            "latency_p50_ms": _median(r.get("latency_p50_ms") for r in ok),
            "throughput_per_s": _median(r.get("throughput_per_s") for r in ok),
            "gpu_j_per_inference": energy("gpu_j_per_inference"),
            "total_j_per_inference": energy("total_j_per_inference"),
            "gpu_dynamic_j_per_inference": energy("gpu_dynamic_j_per_inference"),
            "gpu_mean_power_w": energy("gpu_mean_power_w"),
            "samples_per_s": _median((c.get("coverage") or {}).get("samples_per_s") for c in channels),
            "spanned_fraction_min": min((n for n in ((c.get("coverage") or {}).get("spanned_fraction")
                                                     for c in channels) if n is not None), default=None),
            "counter_power_ratio": _median((c.get("counter_vs_power") or {}).get("ratio") for c in channels),
        })
    return sorted(out, key=lambda c: (str(c["model"]), c["batch_size"] or 0, str(c["precision"])))


def harness_overhead(orchestrator_p50_ms: float | None, bare_p50_ms: float | None) -> dict[str, Any]:
    """The orchestrator's median latency against a bare loop's: ratio and the milliseconds added per batch."""
    if orchestrator_p50_ms is None or not bare_p50_ms:
        return {"ratio": None, "added_ms": None}
    return {"ratio": orchestrator_p50_ms / bare_p50_ms, "added_ms": orchestrator_p50_ms - bare_p50_ms}
