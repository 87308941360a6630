"""The report's opening: the host's caveats (once), the answer per cell, a Pareto figure per cell; then the wide
recommendations table."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from orchestrator.analysis.advice import per_output_token
from orchestrator.analysis.advice_schema import Advice
from orchestrator.report.advice_text import constraint_words, objective_words, ranked_by, recommendations_table
from orchestrator.report.answer import answer_table
from orchestrator.report.document import Bullets, FigureBlock, Paragraph, Section
from orchestrator.report.host_caveats import HostCaveats
from orchestrator.report.pareto_figure import figure_name, pareto_figure
from orchestrator.report.report_files import ReportFiles

# The recommendations the page has room for; the rest (interval, runner-up, p, front) is in the CSV.
SHOWN = ("host", "model", "batch_size", "precision", "verdict", "runtime", "median", "unit", "runs",
         "gCO2e_per_million", "cost_per_million", "client", "why")


def recommendation_sections(advice: Advice, caveats: HostCaveats, fig_dir: Path, colors: dict, files: ReportFiles,
                            table, sequential: dict | None = None) -> list[Section]:
    """The answer (the report's first section, below the caveats), a Pareto figure per cell, the recommendations."""
    answer = Section("The answer", [Bullets(caveats.lines, notice=True)] if caveats.lines else [])
    answer.blocks.append(table("answer", f"Per cell: the runtime to deploy by {ranked_by(advice)} "
                                         "(or a tie), the margin over the runner-up, how sure, and what would make it "
                                         "stronger", answer_table(advice, caveats, sequential)))
    opening = Section("Recommendations", [Paragraph(
        f"The runtime to deploy per model and batch size, by {objective_words(advice)} "
        f"({constraint_words(advice)}; {advice.pooling}). 'recommended' means significantly lower than every other "
        f"candidate (Mann-Whitney over runs, Holm-adjusted over the leader's comparisons with each other candidate, "
        f"alpha {advice.alpha:g}); a tie names the runtimes it "
        "cannot be told apart from; 'why' says what the evidence lacks. The figure is the median over runs; its "
        "interval is the 95% bootstrap interval of the mean. The same advice: `greenrt advise` on this directory."),
        replace(table("recommendations", "Recommendations", recommendations_table(advice, caveats)),
                columns=SHOWN)])
    if advice.grid.carbon_label or advice.grid.cost_label:
        tokens = (" (a generate call's cell: per million output tokens, from its energy per output token)"
                  if any(per_output_token(cell) for cell in advice.cells) else "")
        opening.blocks.append(Paragraph("Carbon and cost from the median energy per inference: "
                                        + "; ".join(x for x in (advice.grid.carbon_label, advice.grid.cost_label) if x)
                                        + tokens + "."))
    front = Section("Energy against latency: the Pareto front")
    several = len(advice.hosts) > 1
    hosts = [h.signature for h in advice.hosts]
    for cell in advice.cells:
        where = f"{cell.model}, batch {cell.batch_size}, {cell.precision}" + (f", host {cell.host}" if several else "")
        name = figure_name(cell, several, hosts.index(cell.host))
        saved = pareto_figure(cell, fig_dir, name, colors)
        if saved is None:
            if caveats.front_note(cell) == cell.front_note:  # else the caveat above says why, once
                front.blocks.append(Paragraph(f"{where}: {cell.front_note}; no Pareto figure is drawn.", notice=True))
            continue
        files.figures[name] = saved.png
        per = "output token" if per_output_token(cell) else "inference"
        front.blocks.append(FigureBlock(f"{where}: energy per {per} against p99 latency, one point per runtime "
                                        f"(medians over runs, whiskers 95% CI of the mean); front: "
                                        f"{', '.join(cell.front) or 'none'}", saved.png, saved.svg))
    return [answer, *([front] if front.blocks else []), opening]  # no front at all: the caveats say why
