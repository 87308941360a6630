"""Building DIR/report/: statistics, figures, CSV tables, report.md and report.html from a sweep's directory."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from orchestrator.analysis.advice import AdviceRequest, advise
from orchestrator.analysis.advice_schema import Advice
from orchestrator.analysis.best import best_runtimes
from orchestrator.analysis.carbon import GridFigures
from orchestrator.analysis.comparisons import ALPHA, MIN_RUNS, compare_runtimes
from orchestrator.analysis.correlation import energy_time_correlations
from orchestrator.analysis.frames import CELL_KEYS, energy_reason, ok_runs, unavailable_text, with_derived
from orchestrator.analysis.stats import CONFIDENCE, N_RESAMPLES, cell_statistics
from orchestrator.errors import UserError
from orchestrator.planning.gpus import from_details as gpu_descriptions
from orchestrator.report import fidelity_text, figures
from orchestrator.report.advice_text import OBJECTIVE_WORDS, constraint_words, recommendations_table
from orchestrator.report.document import Bullets, Document, FigureBlock, Paragraph, Section, TableBlock
from orchestrator.report.findings import (compile_findings, cpu_fallback_findings, cuda_fallback_findings,
                                         no_runs_finding, top_findings)
from orchestrator.report.gpu_notes import EDGE_COLUMNS, EDGE_NOTE, EDGE_PREFIX, has_edge_figures, left_out_notes
from orchestrator.report.html import render_html
from orchestrator.report.markdown import render_markdown
from orchestrator.report.pareto_figure import figure_name, pareto_figure
from orchestrator.report.pooled import config_grid, with_host
from orchestrator.report.provenance import runtime_versions, sweep_facts, user_model_facts
from orchestrator.scheduling.merge import mixed_hardware_cells
from orchestrator.results.record import RunRecord
from orchestrator.results.store import ResultsDir
from orchestrator.results.tables import JournalTables, read_runs, skipped_table


@dataclass
class ReportFiles:
    markdown: Path
    html: Path
    figures: dict[str, Path] = field(default_factory=dict)  # name -> PNG (an SVG lies beside each)
    tables: dict[str, Path] = field(default_factory=dict)  # name -> CSV
    findings: list[str] = field(default_factory=list)
    energy_note: str | None = None  # why there is no energy figure, when there is none
    advice: Advice | None = None  # what the report opens with
    warnings: list[str] = field(default_factory=list)  # damaged files the report went on without, one line each


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def cell_table(stats: pl.DataFrame) -> pl.DataFrame:
    """One readable row per cell: medians with IQR for latency, mean and bootstrap CI for energy."""
    if stats.is_empty():
        return pl.DataFrame()

    def pick(metric: str, fields: dict[str, str]) -> pl.DataFrame:
        return (stats.filter(pl.col("metric") == metric)
                .select(*CELL_KEYS, *[pl.col(f).alias(alias) for f, alias in fields.items()]))

    base = stats.filter(pl.col("metric") == "latency_p50_ms").select(*CELL_KEYS, "runs", "ok_runs")
    parts = [pick("latency_p50_ms", {"median": "p50_ms", "iqr": "p50_iqr_ms"}),
             pick("latency_p90_ms", {"median": "p90_ms"}), pick("latency_p99_ms", {"median": "p99_ms"}),
             pick("throughput_per_s", {"median": "inferences_per_s"}),
             pick("j_per_inference", {"median": "J_per_inf", "mean": "J_per_inf_mean", "ci_low": "ci95_low",
                                      "ci_high": "ci95_high"}),
             pick("dynamic_j_per_inference", {"median": "dynamic_J_per_inf"})]
    for part in parts:
        base = base.join(part, on=list(CELL_KEYS), how="left", nulls_equal=True)
    return base


def _failures(runs: pl.DataFrame) -> pl.DataFrame:
    if runs.is_empty():
        return pl.DataFrame(schema={"run_id": pl.String})
    return (runs.filter(pl.col("status") != "ok")
            .select("run_id", "model", "batch_size", "runtime",
                    pl.col("failure_kind").cast(pl.String), pl.col("failure_message").cast(pl.String).str.slice(0, 300)))


def failures_per_cell(runs: pl.DataFrame) -> pl.DataFrame:
    """Per cell with a failed run: runs, failures, and how many of each kind (e.g. "timeout: 2, oom: 1")."""
    keys = ["model", "batch_size", "runtime", "precision"]
    if runs.is_empty() or "failure_kind" not in runs.columns:
        return pl.DataFrame(schema={"model": pl.String, "batch_size": pl.Int64, "runtime": pl.String,
                                    "precision": pl.String, "runs": pl.UInt32, "failed": pl.UInt32, "kinds": pl.String})
    totals = runs.group_by(keys).agg(pl.len().alias("runs"), (pl.col("status") != "ok").sum().alias("failed"))
    kinds = (runs.filter(pl.col("status") != "ok")
             .group_by([*keys, pl.col("failure_kind").cast(pl.String).fill_null("unknown")]).agg(pl.len().alias("n"))
             .sort([*keys, "failure_kind"])
             .group_by(keys, maintain_order=True)
             .agg(pl.format("{}: {}", "failure_kind", "n").str.join(", ").alias("kinds")))
    return totals.join(kinds, on=keys, how="inner").sort(keys)


def _trace_run(records: list[RunRecord], root: Path, wanted: str | None) -> tuple[RunRecord | None, str]:
    ok = [r for r in records if r.ok]
    if wanted:
        match = [r for r in records if r.run_id == wanted]
        if not match:
            raise UserError(f"--trace-run {wanted}: no such run in {root / 'runs.jsonl'}")
        return match[-1], ""
    with_samples = [r for r in ok if r.samples_path and (root / r.samples_path).exists()]
    if with_samples:
        return with_samples[0], ""
    return (ok[0] if ok else None), "no run of this sweep has power samples"


def _power_section(records, root: Path, trace_run: str | None, fig_dir: Path,
                   files: ReportFiles) -> Section:
    section = Section("Power trace of one run")
    record, why = _trace_run(records, root, trace_run)
    if record is None:
        section.blocks.append(Paragraph("No successful run: no power trace.", notice=True))
        return section
    result = record.result or {}
    samples_path = root / record.samples_path if record.samples_path else None
    if samples_path is None or not samples_path.exists():
        reason = record.energy.reason or why
        section.blocks.append(Paragraph(f"No power samples for run {record.run_id}: {reason}. "
                                        "The sampler only runs where a sensor is readable.", notice=True))
        return section
    window = (result.get("window_start_ns"), result.get("window_end_ns"))
    if None in window:
        section.blocks.append(Paragraph(f"Run {record.run_id} has no measured window.", notice=True))
        return section
    title = (f"{record.run_id}: {record.model} bs{record.batch_size} {record.runtime}, "
             f"window {(window[1] - window[0]) / 1e9:.2f} s")
    try:
        samples = pl.read_parquet(samples_path)
    except (OSError, pl.exceptions.PolarsError) as exc:  # a truncated or damaged file: said, left as it is
        files.warnings.append(f"{samples_path}: unreadable ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                              "left as it is: the report has no power trace; restore the file from a copy, or "
                              "choose another run with --trace-run")
        section.blocks.append(Paragraph(f"Run {record.run_id}'s power samples are unreadable.", notice=True))
        return section
    saved = figures.power_trace(samples, window, title, fig_dir)
    if saved is None:
        section.blocks.append(Paragraph(f"Run {record.run_id}'s samples hold no power or energy readings.",
                                        notice=True))
        return section
    files.figures["power_trace"] = saved.png
    section.blocks.append(FigureBlock(f"Power of every sensor channel during {title}; the shaded band is the "
                                      "measured window over which energy is integrated.", saved.png, saved.svg))
    return section


def _gpu_section(runs: pl.DataFrame, host: dict[str, Any], table: Any) -> Section | None:
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


def _advice_sections(advice: Advice, fig_dir: Path, colors: dict, files: ReportFiles, table) -> list[Section]:
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
    best = best_runtimes(runs, pairs, alpha=alpha)
    ok = ok_runs(runs) if not runs.is_empty() else runs
    energy_available = not ok.is_empty() and not ok["j_per_inference"].drop_nulls().is_empty()
    energy_note = None if energy_available else (energy_reason(runs) if not runs.is_empty() else "no runs")
    files.energy_note = energy_note
    files.findings = ([no_runs_finding(plan)] if runs.is_empty() else
                      cpu_fallback_findings(runs) + cuda_fallback_findings(runs) + compile_findings(runs)
                      + top_findings(best, correlations, energy_note))
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
    files.advice = advise(with_host(runs, results, root.name), AdviceRequest(grid=grid_used, alpha=alpha, seed=seed))
    colors = figures.runtime_colors(derived["runtime"].unique().to_list()) if not runs.is_empty() else {}
    recommendations, front = _advice_sections(files.advice, fig_dir, colors, files, table)
    findings = Section("Findings", [Bullets(tuple(files.findings or ["no successful run"]))])
    doc.sections += [recommendations, findings, front]
    if energy_note and not runs.is_empty():
        findings.blocks.append(Paragraph(
            f"{unavailable_text(energy_note)}. Latency and throughput were measured; every energy "
            "column is empty (not zero) and no energy figure is drawn.", notice=True))

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
    doc.sections.append(how)

    perf = Section("Latency and throughput")
    for metric, ylabel, title, name in (
            ("latency_p50_ms", "ms per batch (p50)", "Latency p50 per batch (median over runs, whiskers IQR)", "latency_p50"),
            ("throughput_per_s", "inferences per second", "Throughput (median over runs, whiskers IQR)", "throughput")):
        saved = figures.facet_bars(stats, metric, ylabel, title, fig_dir, name, colors) if not stats.is_empty() else None
        if saved:
            files.figures[name] = saved.png
            perf.blocks.append(FigureBlock(title, saved.png, saved.svg))
    perf.blocks.append(table("cells", "Per cell (medians over runs; J/inference mean with 95% bootstrap CI)",
                             cell_table(stats)))
    perf.blocks.append(table("cell_statistics", "Every statistic of every cell and metric (long form)", stats, 0))
    doc.sections.append(perf)

    energy = Section("Energy")
    if energy_note:
        energy.blocks.append(Paragraph((unavailable_text(energy_note) if not runs.is_empty()
                                        else "No runs: nothing was measured") + ".", notice=True))
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
                               correlations))
    doc.sections.append(energy)

    comp = Section("Which runtime is best", [
        table("best", "Best runtime per model, batch size and objective", best),
        table("kruskal", "Kruskal-Wallis across all runtimes of a model and batch size", kruskal),
        table("pairwise", "Pairwise Mann-Whitney U, Holm-adjusted, Cliff's delta", pairs, 40)])
    doc.sections.append(comp)

    gpu_section = _gpu_section(runs, host, table)
    if gpu_section is not None:
        doc.sections.append(gpu_section)
    doc.sections.append(_power_section(records, root, trace_run, fig_dir, files))
    doc.sections.append(Section(fidelity_text.TITLE, [
        Paragraph(fidelity_text.fidelity_paragraph()),
        table("fidelity", fidelity_text.TABLE_TITLE, fidelity_text.fidelity_runs(runs))]))
    doc.sections.append(Section("Failed and skipped", [
        table("failures_per_cell", "Failures per cell, by kind", failures_per_cell(runs)),
        table("failures", "Failed runs", _failures(runs)),
        table("skipped", "Cells not run, with the reason", skipped_table(plan))]))
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
