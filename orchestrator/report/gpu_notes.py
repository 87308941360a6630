"""The report's words on GPU energy that NVML's facts call for: window-edge uncertainty, GPUs left out, MIG."""
from __future__ import annotations

from typing import Any

import polars as pl

from orchestrator.planning.gpus import GpuDescription, mig_note

EDGE_COLUMNS = ("gpu_edge_uncertainty_j",)
EDGE_PREFIX = "edge_uncertainty_gpu-"

EDGE_NOTE = ("Window edges: NVML's energy counter steps at its own update period (about 100 ms on Hopper), so each "
             "edge of a window reads up to period x power below the true energy. gpu_edge_uncertainty_j (and "
             "edge_uncertainty_gpu-N_j per GPU) states that bound for the run's GPUs: the counter period measured "
             "from the run's own samples (or a stated default where they cannot show it; counter_period_source in "
             "the journal) times the power at each edge, summed over both edges. Read gpu_energy_j as "
             "gpu_energy_j +- gpu_edge_uncertainty_j.")


def left_out_notes(details: dict[str, Any], gpus: list[GpuDescription]) -> list[str]:
    """One line per GPU that was sampled but never given to a run (MIG), or not measured at all (handle refused)."""
    lines = [f"gpu-{r['index']} was not measured: {r['reason']}." for r in details.get("refused_gpus") or []]
    return lines + [f"{mig_note(g)}." for g in gpus if g.mig_enabled]


def has_edge_figures(runs: pl.DataFrame) -> bool:
    """Whether any run states an edge uncertainty (journals written before it was recorded have none)."""
    columns = [c for c in runs.columns if c in EDGE_COLUMNS or c.startswith(EDGE_PREFIX)]
    return any(runs[c].drop_nulls().len() > 0 for c in columns)
