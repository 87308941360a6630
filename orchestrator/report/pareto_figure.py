"""The energy-latency Pareto figure of one cell of the advice (a host, model, batch size and precision).

Each runtime is a point at its medians over runs (energy per inference, p99 latency), with whiskers spanning the
95 % bootstrap interval of the mean on each axis (drawn as lines, since a mean's interval need not contain the
median). The front joins the non-dominated candidates; runtimes outside the constraints are hollow and grey.
None where no runtime has an energy figure: the caller says so instead of drawing anything.
"""
from __future__ import annotations

import re
from pathlib import Path

from orchestrator.analysis.advice_schema import CellAdvice
from orchestrator.report.figures import SavedFigure, _save, plt, runtime_label


def figure_name(cell: CellAdvice, several_hosts: bool, host_index: int) -> str:
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{cell.model}-bs{cell.batch_size}-{cell.precision}")
    return f"pareto-{slug}" + (f"-host{host_index}" if several_hosts else "")


def pareto_figure(cell: CellAdvice, out_dir: Path, name: str, colors: dict[str, tuple]) -> SavedFigure | None:
    points = [p for p in cell.runtimes if p.energy.median is not None and p.p99.median is not None]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    for p in points:
        x, y = p.energy.median, p.p99.median
        color = colors.get(p.runtime, "0.3") if p.eligible else "0.6"
        if p.energy.ci_low is not None:
            ax.plot([p.energy.ci_low, p.energy.ci_high], [y, y], color=color, lw=1.2)
        if p.p99.ci_low is not None:
            ax.plot([x, x], [p.p99.ci_low, p.p99.ci_high], color=color, lw=1.2)
        ax.scatter([x], [y], s=70, zorder=3, edgecolor="black" if p.eligible else "0.5", linewidth=0.6,
                   facecolor=color if p.eligible else "none", marker="o" if p.on_front else "s")
        label = runtime_label(p.runtime) + ("" if p.eligible else " (excluded)")
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 5), fontsize=8,
                    color="black" if p.eligible else "0.45")
    front = [next(p for p in points if p.runtime == r) for r in cell.front]
    if front:
        # A staircase: between two front points, the region a runtime would need to be in to join the front.
        xs, ys = [front[0].energy.median], [front[0].p99.median]
        for prev, nxt in zip(front, front[1:]):
            xs += [nxt.energy.median, nxt.energy.median]
            ys += [prev.p99.median, nxt.p99.median]
        ax.plot(xs, ys, color="black", lw=1, ls="--", zorder=2)
    handles = [plt.Line2D([], [], color="black", ls="--", marker="o", markerfacecolor="0.5",
                          label=f"on the Pareto front ({len(front)})"),
               plt.Line2D([], [], color="none", marker="s", markerfacecolor="0.5", markeredgecolor="black",
                          label="dominated")]
    if any(not p.eligible for p in points):
        handles.append(plt.Line2D([], [], color="none", marker="s", markerfacecolor="none", markeredgecolor="0.5",
                                  label="outside the constraints"))
    ax.legend(handles=handles, fontsize=8, loc="best")
    per_token = points[0].energy.metric == "j_per_token"  # a generative cell (analysis/advice.py)
    ax.set_xlabel(f"energy per {'output token' if per_token else 'inference'} (J; median over runs, whiskers 95% CI "
                  "of the mean)")
    ax.set_ylabel("p99 latency per generate call (ms)" if per_token else "p99 latency per batch (ms)")
    runs = sorted({p.energy.runs for p in points})
    per = f"{runs[0]}" if len(runs) == 1 else f"{runs[0]}-{runs[-1]}"
    ax.set_title(f"{cell.model}, batch {cell.batch_size}, {cell.precision}: energy against p99 latency "
                 f"({per} run(s) per point)", fontsize=10)
    ax.margins(0.15)
    ax.grid(alpha=0.25)
    fig.tight_layout()
    return _save(fig, out_dir, name)
