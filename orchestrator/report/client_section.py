"""The report's section on client languages: per model x batch x precision x base runtime measured from several
clients, each client's latency (and energy) against the Python client's, with intervals, the test and a verdict
in words; a figure of latency by client. Absent for a sweep without a client suffix: its report is unchanged.

The figures are analysis/clients.py's (a pure function of the runs table); this module only words and draws them.
"""
from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import polars as pl

from orchestrator.analysis.clients import ENERGY, LATENCY, ClientFigure, ClientGroup, client_frame, client_groups
from orchestrator.analysis.comparisons import ALPHA
from orchestrator.analysis.stats import CONFIDENCE, N_RESAMPLES
from orchestrator.report.advice_text import num
from orchestrator.report.document import FigureBlock, Paragraph, Section
from orchestrator.report.figures import SavedFigure, _save, plt, short_number
from orchestrator.report.report_files import ReportFiles

TITLE = "Client languages: the same runtime from Python, Node.js and C++"
FIGURE = "clients_latency"
_METRIC_WORDS = {LATENCY: "p50 ms", ENERGY: "J per inference"}
# The columns the page has room for (a narrow client column, no full id): the CSV has the runtime id as well.
SHOWN = ("client", "metric", "runs", "median", "95% CI of the mean", "vs Python (95% CI)", "Holm p", "verdict")
_COLORS = {"python": "#4c72b0", "node": "#55a868", "cpp": "#dd8452"}  # one colour per language, in every panel


def explained(alpha: float, seed: int) -> str:
    return (
        "The same base runtime (the same engine, model file, threads and inputs) driven by a runner in another "
        "language, which honours the Python runner's protocol and reads the host's monotonic clock (docs/clients.md). "
        "A row's figure is the median over runs (each run first reduced to its p50 latency or its energy per "
        f"inference) with the {CONFIDENCE:.0%} percentile-bootstrap interval of the mean ({N_RESAMPLES} resamples, "
        f"seed {seed}), as for every runtime. 'vs Python' is the client's median over the Python client's, with "
        "its percentile-bootstrap interval (both clients' runs resampled independently). Each client is tested "
        "against the Python client by the two-sided Mann-Whitney U over runs, Holm-adjusted over the cell's "
        f"comparisons with the Python client on that metric (alpha {alpha:g}). The Python client is '@python' where "
        "it was measured (the Python runner on the engine version the other clients ship, so that a difference is "
        "the client's, not the engine's), else the plain id; a plain id beside '@python' is the Python runner in the "
        "runtime's own environment, a newer engine perhaps.")


def _slug(group: ClientGroup) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", f"{group.model}-bs{group.batch_size}-{group.precision}-{group.base}")


def _interval(figure: ClientFigure) -> str:
    s = figure.summary
    if s.median is None:
        return "-"
    if s.ci_low is None:
        return s.note or "no interval"
    return f"{num(s.ci_low)}-{num(s.ci_high)}"


def _versus(figure: ClientFigure, is_reference: bool) -> str:
    if is_reference:
        return "reference"
    r = figure.ratio
    if r is None or r.value is None:
        return r.note if r is not None else "-"
    return f"x{r.value:.3g}" + (f" ({r.low:.3g}-{r.high:.3g})" if r.low is not None else f" ({r.note})")


def cell_table(group: ClientGroup) -> pl.DataFrame:
    """One row per client and metric (latency first): the figure, its interval, the ratio, the test, the verdict."""
    rows = []
    for metric in group.metrics:
        for row in group.rows:
            figure = row.figures[metric]
            test = figure.test
            suffix = f"@{row.client}" if "@" in row.runtime else "no suffix"
            rows.append({"client": f"{row.label} ({suffix})", "runtime": row.runtime, "metric": _METRIC_WORDS[metric],
                         "runs": figure.summary.n, "median": figure.summary.median,
                         "95% CI of the mean": _interval(figure),
                         "vs Python (95% CI)": _versus(figure, row.is_reference),
                         "Holm p": test.p_holm if test else None, "verdict": figure.verdict})
    return pl.DataFrame(rows, schema={"client": pl.String, "runtime": pl.String, "metric": pl.String,
                                      "runs": pl.Int64, "median": pl.Float64, "95% CI of the mean": pl.String,
                                      "vs Python (95% CI)": pl.String, "Holm p": pl.Float64, "verdict": pl.String})


def latency_figure(groups: list[ClientGroup], out_dir: Path) -> SavedFigure | None:
    """One panel per client group: a bar per client at its median p50 latency, and its mean with the 95% bootstrap
    interval as a black whisker (drawn beside the bar's top, since a mean's interval need not hold the median)."""
    drawn = [g for g in groups if LATENCY in g.metrics]
    if not drawn:
        return None
    columns = min(3, len(drawn))
    lines = math.ceil(len(drawn) / columns)
    # constrained layout places the suptitle just above the panels, whatever their number of rows
    fig, axes = plt.subplots(lines, columns, figsize=(4.2 * columns, 3.0 * lines + 0.4), squeeze=False,
                             layout="constrained")
    for ax in axes.flat[len(drawn):]:
        ax.set_visible(False)
    for ax, group in zip(axes.flat, drawn):
        top = 0.0
        for x, row in enumerate(group.rows):
            figure = row.figures[LATENCY]
            s = figure.summary
            if s.median is None:
                ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=8, color="0.4", rotation=90)
                continue
            ax.bar(x, s.median, width=0.7, color=_COLORS.get(row.client, "0.6"))
            high = s.median
            if s.ci_low is not None:
                ax.plot([x + 0.2, x + 0.2], [s.ci_low, s.ci_high], color="black", lw=1.2)
                ax.plot([x + 0.2], [s.mean], marker="o", ms=3, color="black")
                high = max(high, s.ci_high)
            ratio = figure.ratio.value if figure.ratio is not None else None
            label = short_number(s.median) + (f"\nx{ratio:.3g}" if ratio is not None else "")
            ax.text(x, high, label, ha="center", va="bottom", fontsize=7)
            top = max(top, high)
        ax.set_xticks(range(len(group.rows)), [row.label for row in group.rows], fontsize=8, rotation=15)
        ax.set_xlim(-0.6, len(group.rows) - 0.4)
        ax.set_ylim(0, (top or 1.0) * 1.3)
        ax.set_title(f"{group.model}, batch {group.batch_size}, {group.precision}\n{group.base}", fontsize=8)
        ax.set_ylabel("ms per batch (p50)", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle("Latency by client language (bars: median over runs; black: the mean and its 95% bootstrap "
                 "interval; xN: median over the Python client's)", fontsize=10)
    return _save(fig, out_dir, FIGURE)


def client_section(runs: pl.DataFrame, fig_dir: Path, files: ReportFiles, table, alpha: float = ALPHA,
                   seed: int = 0) -> Section | None:
    """None for a sweep that measured no runtime from two clients or more (its report is unchanged)."""
    groups = client_groups(runs, alpha, seed)
    if not groups:
        return None
    section = Section(TITLE, [Paragraph(explained(alpha, seed))])
    for group in groups:
        reference = next(row for row in group.rows if row.is_reference)
        block = table(f"clients-{_slug(group)}", f"{group.where}: each client against {reference.label} "
                                                  f"({reference.runtime})", cell_table(group))
        section.blocks.append(replace(block, columns=SHOWN))
    saved = latency_figure(groups, fig_dir)
    if saved is not None:
        files.figures[FIGURE] = saved.png
        section.blocks.append(FigureBlock("p50 latency per batch by client language, one panel per model, batch "
                                          "size, precision and base runtime (bars: median over runs; whiskers: the "
                                          "mean's 95% bootstrap interval)", saved.png, saved.svg))
    section.blocks.append(table("clients", "Every client comparison (one row per cell, client and metric)",
                                client_frame(groups), 0))
    return section
