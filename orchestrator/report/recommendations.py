"""The report's opening: the recommendations table, and a Pareto figure per model and batch size."""
from __future__ import annotations

from pathlib import Path

from orchestrator.analysis.advice_schema import Advice
from orchestrator.report.advice_text import OBJECTIVE_WORDS, constraint_words, recommendations_table
from orchestrator.report.document import FigureBlock, Paragraph, Section
from orchestrator.report.pareto_figure import figure_name, pareto_figure
from orchestrator.report.report_files import ReportFiles


def recommendation_sections(advice: Advice, fig_dir: Path, colors: dict, files: ReportFiles, table) -> list[Section]:
    """The recommendations table (the report's first section) and a Pareto figure per model and batch size."""
    opening = Section("Recommendations", [Paragraph(
        f"The runtime to deploy per model and batch size, by {OBJECTIVE_WORDS[advice.objective]} "
        f"({constraint_words(advice)}; {advice.pooling}). 'recommended' means significantly lower than every other "
        f"candidate (Mann-Whitney over runs, Holm-adjusted over the leader's comparisons with each other candidate, "
        f"alpha {advice.alpha:g}); a tie names the runtimes it "
        "cannot be told apart from; 'why' says what the evidence lacks. The figure is the median over runs; its "
        "interval is the 95% bootstrap interval of the mean. The same advice: `greenrt advise` on this directory."),
        table("recommendations", "Recommendations", recommendations_table(advice))])
    if advice.grid.carbon_label or advice.grid.cost_label:
        opening.blocks.append(Paragraph("Carbon and cost from the median energy per inference: "
                                        + "; ".join(x for x in (advice.grid.carbon_label, advice.grid.cost_label) if x)
                                        + "."))
    front = Section("Energy against latency: the Pareto front")
    several = len(advice.hosts) > 1
    hosts = [h.signature for h in advice.hosts]
    for cell in advice.cells:
        where = f"{cell.model}, batch {cell.batch_size}, {cell.precision}" + (f", host {cell.host}" if several else "")
        name = figure_name(cell, several, hosts.index(cell.host))
        saved = pareto_figure(cell, fig_dir, name, colors)
        if saved is None:
            front.blocks.append(Paragraph(f"{where}: {cell.front_note}; no Pareto figure is drawn.", notice=True))
            continue
        files.figures[name] = saved.png
        front.blocks.append(FigureBlock(f"{where}: energy per inference against p99 latency, one point per runtime "
                                        f"(medians over runs, whiskers 95% CI of the mean); front: "
                                        f"{', '.join(cell.front) or 'none'}", saved.png, saved.svg))
    return [opening, front]
