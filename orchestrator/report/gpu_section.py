"""The report's GPU section: the node's GPUs, where each energy figure came from, how energy was attributed."""
from __future__ import annotations

from typing import Any

import polars as pl

from orchestrator.planning.gpus import from_details as gpu_descriptions
from orchestrator.report.document import Paragraph, Section
from orchestrator.report.gpu_notes import EDGE_COLUMNS, EDGE_NOTE, EDGE_PREFIX, has_edge_figures, left_out_notes


def gpu_section(runs: pl.DataFrame, host: dict[str, Any], table: Any) -> Section | None:
    """The node's GPUs, where each figure came from (counter or power integral), and how energy was attributed."""
    nvml = next((s for s in host.get("sensors", []) if s.get("name") == "nvml" and s.get("available")), None)
    if nvml is None:
        return None
    gpus = gpu_descriptions(nvml.get("details", {}).get("gpus", []))
    section = Section("GPUs", [Paragraph(
        f"NVML saw {len(gpus)} GPU(s), driver {nvml.get('details', {}).get('driver_version')}: "
        + "; ".join(f"{g.label()} ({g.uuid or '?'}, PCI {g.pci_bus_id or '?'}): "
                    f"{'total-energy counter' if g.energy_counter else 'no energy counter'}, power reading "
                    f"{'a 1-second average' if g.power_is_1s_average else 'instantaneous'}" for g in gpus)
        + ". Energy per inference counts the GPUs each run was given (none for a CPU runtime); the node's other "
          "GPUs are in other_gpus_energy_j, all of them in node_gpu_energy_j.")])
    integrated = [g.label() for g in gpus if not g.energy_counter]
    if integrated:
        section.blocks.append(Paragraph(
            f"Power-integral energy: {', '.join(integrated)} ha{'s' if len(integrated) == 1 else 've'} no total-energy "
            f"counter, so {'its' if len(integrated) == 1 else 'their'} energy is the trapezoid integral of the sampled power over each window (method "
            "'power-integral' in gpu_energy_method), less exact than a counter difference.", notice=True))
    for line in left_out_notes(nvml.get("details", {}), gpus):
        section.blocks.append(Paragraph(line, notice=True))
    if has_edge_figures(runs):
        section.blocks.append(Paragraph(EDGE_NOTE))
    columns = [c for c in runs.columns if c in ("run_id", "runtime", "batch_size", "status", "gpu_energy_j",
                                                 *EDGE_COLUMNS, "other_gpus_energy_j", "node_gpu_energy_j",
                                                 "gpu_energy_method")
               or c.startswith(("power_gpu-", "temperature_max_gpu-", "energy_gpu-", EDGE_PREFIX))]
    if not runs.is_empty():
        section.blocks.append(table("gpus", "Per run: GPU energy (J) with its edge uncertainty (+- J), mean "
                                            "power (W) and peak temperature (°C) per GPU over the window",
                                    runs.select(columns)))
    return section
