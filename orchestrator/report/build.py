"""Building DIR/report/: statistics, figures, CSV tables, report.md and report.html from a sweep's directory."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import polars as pl

from orchestrator.analysis.adaptive import plan_rounds, sequential_verdicts
from orchestrator.analysis.advice import AdviceRequest, advise
from orchestrator.analysis.best import best_runtimes_by_kind
from orchestrator.analysis.carbon import GridFigures
from orchestrator.analysis.comparisons import ALPHA, MIN_RUNS, compare_runtimes
from orchestrator.analysis.correlation import energy_time_correlations
from orchestrator.analysis.frames import energy_reason, ok_runs, unavailable_text, with_derived
from orchestrator.analysis.stats import CONFIDENCE, N_RESAMPLES, cell_statistics
from orchestrator.errors import UserError
from orchestrator.report import fidelity_text, figures
from orchestrator.report.cell_tables import cell_table, failed_runs, failures_per_cell
from orchestrator.report.client_section import client_section
from orchestrator.report.document import Bullets, Document, FigureBlock, Paragraph, Section, TableBlock
from orchestrator.report.findings import (compile_findings, cpu_fallback_findings, cuda_fallback_findings,
                                         no_runs_finding, top_findings)
from orchestrator.report.generation_section import generation_cells, generation_section
from orchestrator.report.gpu_section import gpu_section
from orchestrator.report.busy_text import busy_line
from orchestrator.report.host_caveats import host_caveats
from orchestrator.report.html import render_html
from orchestrator.report.markdown import render_markdown
from orchestrator.report.pooled import config_grid, with_host
from orchestrator.report.power_section import power_section
from orchestrator.report.provenance import runtime_versions, sweep_facts, user_model_facts
from orchestrator.report.recommendations import recommendation_sections
from orchestrator.report.stopping_section import stopping_section, with_stopping
from orchestrator.report.report_files import ReportFiles
from orchestrator.report.time_spent import TITLE as TIME_TITLE, time_table
from orchestrator.scheduling.merge import mixed_hardware_cells
from orchestrator.results.store import ResultsDir
from orchestrator.results.tables import JournalTables, read_runs, skipped_table


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def build_report(root: str | Path, trace_run: str | None = None, seed: int = 0, alpha: float = ALPHA,
                 grid: GridFigures | None = None, journal: JournalTables | None = None) -> ReportFiles:
    """journal: the journal read once by the caller (read_runs), when it has it; else it is read here."""
    results = ResultsDir(root)
    root = results.root
    if not results.plan_path.exists():
        raise UserError(f"{root}: not a greenrt results directory (no plan.json)")
    warnings: list[str] = []
    plan, host = results.read_plan(), results.read_facts(results.host_path, warnings.append)
    baseline = results.read_facts(results.baseline_path, warnings.append)
    journal = journal if journal is not None else read_runs(results.journal_path, root, trace_run)
    records = journal.shown  # the few whole records the report shows; the table holds every run
    out = root / "report"
    fig_dir, table_dir = out / "figures", out / "tables"
    for d in (fig_dir, table_dir):
        d.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(out / "report.md", out / "report.html", warnings=warnings)

    runs = journal.runs
    derived = with_derived(runs) if not runs.is_empty() else runs
    stats = cell_statistics(runs, seed=seed)
    correlations = energy_time_correlations(runs)
    pairs, kruskal = compare_runtimes(runs, alpha=alpha)
    sequential = sequential_verdicts(plan, runs)  # a verdict-rule adaptive sweep answers by its own test
    best = best_runtimes_by_kind(runs, pairs, alpha=alpha, sequential=sequential)
    ok = ok_runs(runs) if not runs.is_empty() else runs
    energy_available = not ok.is_empty() and not ok["j_per_inference"].drop_nulls().is_empty()
    energy_note = None if energy_available else (energy_reason(runs) if not runs.is_empty() else "no runs")
    files.energy_note = energy_note
    files.findings = ([no_runs_finding(plan)] if runs.is_empty() else
                      cpu_fallback_findings(runs) + cuda_fallback_findings(runs) + compile_findings(runs)
                      + top_findings(best, correlations, energy_note, generation_cells(runs)))
    mixed = mixed_hardware_cells(runs)
    if mixed:  # a sharded sweep over unlike nodes: such a cell's spread is partly the hardware's
        files.findings.insert(0, f"warning: {len(mixed)} cell(s) have repetitions measured on different hardware "
                                 f"(host signatures in tables/runs 'host'): {'; '.join(mixed[:5])}"
                                 f"{' ...' if len(mixed) > 5 else ''}")

    def table(name: str, title: str, frame: pl.DataFrame, max_rows: int = 60) -> TableBlock:
        path = table_dir / f"{name}.csv"
        frame.write_csv(path)
        files.tables[name] = path
        return TableBlock(title, frame, path, max_rows)

    doc = Document(f"greenrt report: {plan.get('config_name', root.name)}")
    grid_used = GridFigures(**config_grid(plan, root.name)).overridden_by(grid or GridFigures())
    files.advice = advise(with_host(runs, results, root.name), AdviceRequest(grid=grid_used, alpha=alpha, seed=seed,
                                                                         sequential=sequential))
    colors = figures.runtime_colors(derived["runtime"].unique().to_list()) if not runs.is_empty() else {}
    caveats = host_caveats(files.advice, extra=tuple(filter(None, [busy_line(runs)])))
    files.caveats = caveats.lines
    if energy_note and not runs.is_empty() and not caveats.energy:  # the advice's cells did not all say it
        files.caveats = (f"{unavailable_text(energy_note)}. Latency and throughput were measured; every energy "
                         "column is empty (not zero) and no energy figure is drawn.", *files.caveats)
        caveats = type(caveats)(files.caveats, caveats.energy, caveats.repetitions)
    *opening, recommendations = recommendation_sections(files.advice, caveats, fig_dir, colors, files, table,
                                                          sequential)
    findings = Section("Findings", [Bullets(tuple(files.findings or ["no successful run"]))])
    doc.sections += [*opening, findings]
    generative = generation_section(runs, files.advice, fig_dir, colors, files, table)
    if generative is not None:  # generate calls: their answer in per-token units, TTFT, TPOT, the phases
        doc.sections.append(generative)

    how = Section("How to read this report", [Paragraph(
        f"The sample unit of every statistic is the run (one repetition of a cell); iterations inside a run share a "
        f"process, caches and thermal state and are not independent, so each run is first reduced to one number "
        f"(its p50/p90/p99 latency, its energy per inference). Medians come with the IQR; means with a "
        f"{CONFIDENCE:.0%} percentile-bootstrap interval ({N_RESAMPLES} resamples, seed {seed}). Runtimes are "
        f"compared within a model and batch size by Kruskal-Wallis and pairwise two-sided Mann-Whitney U tests, "
        f"Holm-adjusted per family, with Cliff's delta as the effect size (negative: the first runtime is lower). "
        f"A leader is 'best' only when it is significantly lower (alpha {alpha}) than every other runtime, Holm "
        f"adjusting over the leader's comparisons only (the claim 'best' is made of those); otherwise "
        f"it is a 'tie' with the runtimes it cannot be told apart from. A cell with fewer than {MIN_RUNS} runs is "
        f"not tested ('untested'); its interval is empty, never zero.")])

    perf = Section("Latency and throughput")
    for metric, ylabel, title, name in (
            ("latency_p50_ms", "ms per batch (p50)", "Latency p50 per batch (median over runs, whiskers IQR)", "latency_p50"),
            ("throughput_per_s", "inferences per second", "Throughput (median over runs, whiskers IQR)", "throughput")):
        saved = figures.facet_bars(stats, metric, ylabel, title, fig_dir, name, colors) if not stats.is_empty() else None
        if saved:
            files.figures[name] = saved.png
            perf.blocks.append(FigureBlock(title, saved.png, saved.svg))
    rounds = plan_rounds(plan, runs)  # an adaptive sweep's rounds: what stopped each cell (None: fixed count)
    perf.blocks.append(table("cells", "Per cell (medians over runs; J/inference mean with 95% bootstrap CI)",
                             with_stopping(cell_table(stats), rounds)))
    perf.blocks.append(table("cell_statistics", "Every statistic of every cell and metric (long form)", stats, 0))
    doc.sections.append(perf)
    clients = client_section(runs, fig_dir, files, table, alpha, seed)
    if clients is not None:  # a runtime measured from several client languages (docs/clients.md)
        doc.sections.append(clients)
    doc.sections += [recommendations, how]

    energy = Section("Energy")
    if energy_note:
        energy.blocks.append(Paragraph("No energy figure: see the caveats at the top." if not runs.is_empty()
                                       else "No runs: nothing was measured.", notice=True))
    else:
        missing = ok.filter(pl.col("j_per_inference").is_null())
        if missing.height:
            energy.blocks.append(Paragraph(
                f"{missing.height} successful run(s) have no energy figure ({energy_reason(missing)}); "
                "their slots are marked n/a.", notice=True))
        saved = figures.facet_bars(stats, "j_per_inference", "J per inference",
                                   "Energy per inference per runtime (median over runs, whiskers IQR)", fig_dir,
                                   "energy_per_inference", colors)
        if saved:
            files.figures["energy_per_inference"] = saved.png
            energy.blocks.append(FigureBlock("Energy per inference (total of all measured domains), per runtime, "
                                             "by model and batch size, as in the study", saved.png, saved.svg))
        saved = figures.energy_split(ok, fig_dir, colors)
        if saved:
            files.figures["energy_split"] = saved.png
            energy.blocks.append(FigureBlock("CPU / DRAM / GPU split of energy per inference", saved.png, saved.svg))
        overall = correlations.filter((pl.col("scope") == "all cells") & (pl.col("energy") == "j_per_inference"))
        saved = figures.energy_vs_time(runs, overall.row(0, named=True) if overall.height else None, fig_dir, colors)
        if saved:
            files.figures["energy_vs_time"] = saved.png
            energy.blocks.append(FigureBlock("Energy per inference against time per inference, one point per cell",
                                             saved.png, saved.svg))
    energy.blocks.append(table("correlation", "Energy against time (one point per cell: medians over runs)",
                               correlations, 0 if energy_note else 60))  # without energy: each row only says so
    doc.sections.append(energy)

    best_block = table("best", "Best runtime per model, batch size and objective", best)
    if energy_note and not best.is_empty():  # each energy row's note is the host's caveat: the CSV keeps it whole
        best_block = replace(best_block, frame=best.with_columns(
            pl.when(pl.col("note") == f"energy unavailable: {energy_note}")
            .then(pl.lit("energy unavailable (see the caveats at the top)")).otherwise(pl.col("note")).alias("note")))
    comp = Section("Which runtime is best", [
        best_block,
        table("kruskal", "Kruskal-Wallis across all runtimes of a model and batch size", kruskal),
        table("pairwise", "Pairwise Mann-Whitney U, Holm-adjusted, Cliff's delta", pairs, 40)])
    doc.sections.append(comp)
    adaptive = stopping_section(rounds, len(plan.get("runs", [])), table)
    if adaptive is not None:
        doc.sections.append(adaptive)

    gpus = gpu_section(runs, host, table)
    if gpus is not None:
        doc.sections.append(gpus)
    doc.sections.append(power_section(records, root, trace_run, fig_dir, files))
    doc.sections.append(Section(fidelity_text.TITLE, [
        Paragraph(fidelity_text.fidelity_paragraph()),
        table("fidelity", fidelity_text.TABLE_TITLE, fidelity_text.fidelity_runs(runs))]))
    doc.sections.append(Section("Failed and skipped", [
        table("failures_per_cell", "Failures per cell, by kind", failures_per_cell(runs)),
        table("failures", "Failed runs", failed_runs(runs)),
        table("skipped", "Cells not run, with the reason", skipped_table(plan))]))
    spent, covers = time_table(journal.time, baseline)
    doc.sections.append(Section(TIME_TITLE, [Paragraph(covers), table("time_spent", "Wall time by part", spent)]))
    doc.sections.append(Section("Provenance", [
        Paragraph("Everything needed to reproduce these numbers: the config's digest and seed, greenrt's git "
                  "revision, the host and its sensors (drivers), each runtime's libraries and image."),
        table("provenance", "Sweep and host", sweep_facts(host, plan, baseline, records)),
        table("versions", "Per runtime: launcher, image, devices, library versions", runtime_versions(records)),
        *([table("user_models", "User models: file, loader and input spec", users)]
          if not (users := user_model_facts(plan)).is_empty() else [])]))

    _write_atomic(files.markdown, render_markdown(doc, out))
    _write_atomic(files.html, render_html(doc))
    return files
