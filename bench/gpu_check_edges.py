"""The window-edge uncertainty of the check's own measured windows, from NVML's measured counter update period.

NVML's total-energy counter moves in steps, one per update period; a window read from it can be off by up to one
period's energy at each edge. So each edge contributes period x power at that edge (in J), and the window's energy
is uncertain by their sum (a bound, not a standard deviation). The power at an edge is the counter's slope over the
first (last) `span_s` of the window, inside it (the power reading is a 1-second average on Hopper and lags a step);
where the counter gives no slope, the power reading interpolated at the edge. Pure: numpy only, no GPU.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

NS_PER_S = 1_000_000_000


def edge_uncertainty(period_s: float | None, power_start_w: float | None, power_end_w: float | None,
                     window_energy_j: float | None) -> dict[str, Any]:
    """period x power at each edge, their sum in J, and the sum as % of the window's energy (None where unknown)."""
    if period_s is None or period_s <= 0:
        return {"start_j": None, "end_j": None, "total_j": None, "percent": None,
                "reason": "no counter update period was measured"}
    if power_start_w is None or power_end_w is None:
        return {"start_j": None, "end_j": None, "total_j": None, "percent": None,
                "reason": "no power known at an edge of the window"}
    start, end = period_s * power_start_w, period_s * power_end_w
    total = start + end
    percent = 100.0 * total / window_energy_j if window_energy_j else None
    return {"start_j": start, "end_j": end, "total_j": total, "percent": percent, "reason": ""}


def _slope_w(t: np.ndarray, e: np.ndarray, lo: int, hi: int) -> float | None:
    """Mean power in W of the counter (J) between times lo and hi, interpolated; None without samples around."""
    if t.size < 2 or lo < t[0] or hi > t[-1] or hi <= lo:
        return None
    return float((np.interp(hi, t, e) - np.interp(lo, t, e)) / ((hi - lo) / NS_PER_S))


def edge_power(t_ns: Sequence[int], energy_j: Sequence[float], power_w: Sequence[float], start_ns: int, end_ns: int,
               span_s: float = 0.5) -> dict[str, Any]:
    """Power at the window's start and end: {start_w, end_w, method}."""
    t = np.asarray(t_ns, dtype=np.int64)
    e = np.asarray(energy_j, dtype=np.float64)
    p = np.asarray(power_w, dtype=np.float64)
    span = min(int(span_s * NS_PER_S), (int(end_ns) - int(start_ns)) // 2)
    ok_e = np.isfinite(e)
    if ok_e.sum() >= 2:
        te, ee = t[ok_e], e[ok_e]
        start = _slope_w(te, ee, int(start_ns), int(start_ns) + span)
        end = _slope_w(te, ee, int(end_ns) - span, int(end_ns))
        if start is not None and end is not None:
            return {"start_w": start, "end_w": end, "method": f"counter slope over {span / NS_PER_S:.2f} s inside"}
    ok_p = np.isfinite(p)
    if ok_p.sum() >= 2 and t[ok_p][0] <= start_ns and t[ok_p][-1] >= end_ns:
        tp, pp = t[ok_p], p[ok_p]
        return {"start_w": float(np.interp(start_ns, tp, pp)), "end_w": float(np.interp(end_ns, tp, pp)),
                "method": "power reading at the edge"}
    return {"start_w": None, "end_w": None, "method": "no samples around the edges"}


def run_edges(runs: Sequence[Mapping[str, Any]], period_ms: float | None) -> list[dict[str, Any]]:
    """Per ok run of the sweep, over the GPU channels it was charged for: the edge uncertainty of its window.

    A run's channels are those the orchestrator accounted energy on (`orchestrator_raw_j` set); where none says so,
    every GPU channel sampled. Uncertainties add over channels (each has its own edges)."""
    period_s = period_ms / 1e3 if period_ms else None
    rows = []
    for run in runs:
        if run.get("status") != "ok":
            continue
        channels = run.get("channels") or {}
        charged = {k: c for k, c in channels.items() if c.get("orchestrator_raw_j") is not None} or channels
        parts = [edge_uncertainty(period_s, (c.get("edge_power") or {}).get("start_w"),
                                  (c.get("edge_power") or {}).get("end_w"),
                                  (c.get("counter_vs_power") or {}).get("counter_j")) for c in charged.values()]
        energy = [(c.get("counter_vs_power") or {}).get("counter_j") for c in charged.values()]
        known = bool(parts) and all(p["total_j"] is not None for p in parts)
        total = sum(p["total_j"] for p in parts) if known else None
        window_j = sum(energy) if energy and None not in energy else None
        reasons = sorted({p["reason"] for p in parts if p["reason"]}) or ([] if parts else ["no GPU channel sampled"])
        rows.append({
            "run_id": run.get("run_id"), "batch_size": run.get("batch_size"), "precision": run.get("precision"),
            "channels": sorted(charged), "window_s": run.get("window_s"), "window_energy_j": window_j,
            "power_start_w": [(c.get("edge_power") or {}).get("start_w") for c in charged.values()],
            "power_end_w": [(c.get("edge_power") or {}).get("end_w") for c in charged.values()],
            "uncertainty_j": total, "percent": 100.0 * total / window_j if total is not None and window_j else None,
            "reason": "; ".join(reasons),
        })
    return rows
