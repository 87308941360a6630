"""The product's window-edge uncertainty of the gpu-check sweep's windows, and a check of the period behind it.

greenrt's energy accounting (orchestrator/measurement/edges.py) records, per GPU channel of every run, the window's
edge uncertainty (`edge_uncertainty_j`: counter period x power at each edge), the counter update period it used
(`counter_period_s`) and where that period came from (`counter_period_source`: measured from the run's samples,
the sampling interval as an upper bound, or a default); and, for the run's own GPUs together,
energy["edge_uncertainty_j"]. The check reports those figures as recorded (it computes none of its own) and checks
the period against an independent measurement: NVML's counter polled as fast as Python calls it, under load
(gpu_check_calc.counter_update_period).

They agree when they differ by at most the fast poll's resolution plus the sampler's interval:
- the fast poll sees each change up to one poll late, so its period is known to about one poll interval;
- the accounting sees the counter only at its samples: each step is seen up to one sampling interval late, so a
  period measured from them is off by at most that interval (less, spread over many steps); where the counter moved
  at nearly every sample, the accounting states the interval itself, an upper bound on a period that may lie
  anywhere below it, so again at most one interval off.
A period further off than that is not the counter's: a default the GPU does not follow, or steps the samples missed.
Pure: plain dicts in and out, no GPU.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# A window whose edges alone may be off by more than this is too short for the counter: with NVML's ~100 ms period
# on Hopper, a window under 4 s (the check's own are 10 s: 2 %).
EDGE_WARN_PERCENT = 5.0


def period_agreement(fast_ms: float | None, resolution_ms: float | None, accounting_ms: float | None,
                     sampling_ms: float | None) -> dict[str, Any]:
    """Whether the accounting's counter period matches the fast-polled one: {agrees (None: not checked),
    difference_ms (fast - accounting), bound_ms, reason}."""
    missing = [name for name, value in (("no fast-polled counter period", fast_ms),
                                        ("no counter period in the energy record", accounting_ms),
                                        ("no sampling interval in the run's samples", sampling_ms)) if value is None]
    if missing:
        return {"agrees": None, "difference_ms": None, "bound_ms": None, "reason": "; ".join(missing)}
    bound = (resolution_ms or 0.0) + sampling_ms
    difference = fast_ms - accounting_ms
    agrees = abs(difference) <= bound
    return {"agrees": agrees, "difference_ms": difference, "bound_ms": bound,
            "reason": "" if agrees else f"{abs(difference):.1f} ms apart, more than the poll's resolution + the "
                                        f"sampler's interval ({bound:.1f} ms)"}


def _ms(seconds: Any) -> float | None:
    return float(seconds) * 1e3 if isinstance(seconds, (int, float)) else None


def run_edges(runs: Sequence[Mapping[str, Any]], fast: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per ok run of the sweep: the accounting's edge uncertainty over the run's own GPUs, as % of their energy,
    and per such GPU its counter period and source against the fast-polled period (`fast`: the energy counter's
    part of measure_updates)."""
    fast_ms = (fast.get("update_period_ms") or {}).get("median")
    rows = []
    for run in runs:
        if run.get("status") != "ok":
            continue
        own = {k: c for k, c in sorted((run.get("channels") or {}).items()) if c.get("orchestrator_assigned")}
        periods = []
        for name, c in own.items():
            accounting_ms = _ms(c.get("orchestrator_counter_period_s"))
            periods.append({"channel": name, "period_ms": accounting_ms,
                            "source": c.get("orchestrator_counter_period_source"),
                            "sampling_interval_ms": c.get("sampling_interval_ms"),
                            "note": c.get("orchestrator_edge_note"),
                            **period_agreement(fast_ms, fast.get("resolution_ms"), accounting_ms,
                                               c.get("sampling_interval_ms"))})
        energy = [c.get("orchestrator_raw_j") for c in own.values()]
        window_j = sum(energy) if energy and None not in energy else None
        uncertainty = run.get("edge_uncertainty_j")
        checked = [p["agrees"] for p in periods if p["agrees"] is not None]
        reasons = [f"{p['channel']}: {p['note']}" for p in periods if uncertainty is None and p["note"]]
        if not own:
            reasons.append("the energy record assigns the run no GPU channel")
        rows.append({
            "run_id": run.get("run_id"), "batch_size": run.get("batch_size"), "precision": run.get("precision"),
            "window_s": run.get("window_s"), "channels": list(own), "window_energy_j": window_j,
            "uncertainty_j": uncertainty,
            "percent": 100.0 * uncertainty / window_j if uncertainty is not None and window_j else None,
            "periods": periods, "period_agrees": all(checked) if checked else None, "reason": "; ".join(reasons),
        })
    return rows


def edges_report(updates: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The fast-polled counter period (report["updates"]) and each of the sweep's runs' edge figures."""
    fast = updates.get("energy_counter") or {}
    stats = fast.get("update_period_ms") or {}
    return {"period_ms": stats.get("median"), "period_range_ms": [stats.get(k) for k in ("min", "max")],
            "resolution_ms": fast.get("resolution_ms"), "nvml_index": fast.get("nvml_index"),
            "runs": run_edges(runs, fast)}


def edge_findings(edges: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(problems: the accounting's period is not the counter's; warnings: an edge uncertainty over
    EDGE_WARN_PERCENT of its window's energy)."""
    problems, warnings = [], []
    for row in edges.get("runs") or []:
        for p in row.get("periods") or []:
            if p.get("agrees") is False:
                problems.append(f"run {row.get('run_id')} {p['channel']}: the energy accounting's counter period "
                                f"{p['period_ms']:.1f} ms ({p['source']}) against {edges.get('period_ms'):.1f} ms "
                                f"polled fast on GPU {edges.get('nvml_index')}: {p['reason']}")
        if row.get("percent") is not None and row["percent"] > EDGE_WARN_PERCENT:
            warnings.append(f"run {row.get('run_id')}: window-edge uncertainty {row['percent']:.1f}% of its energy "
                            f"(over {EDGE_WARN_PERCENT:g}%)")
    return problems, warnings
