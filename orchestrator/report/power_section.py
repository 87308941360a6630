"""The report's power trace of one run: the run asked for (--trace-run), else the first with samples."""
from __future__ import annotations

from pathlib import Path

import polars as pl

from orchestrator.errors import UserError
from orchestrator.report import figures
from orchestrator.report.document import FigureBlock, Paragraph, Section
from orchestrator.report.report_files import ReportFiles
from orchestrator.results.record import RunRecord
from orchestrator.results.results_files import samples_file


def _trace_run(records: list[RunRecord], root: Path, wanted: str | None) -> tuple[RunRecord | None, str]:
    ok = [r for r in records if r.ok]
    if wanted:
        match = [r for r in records if r.run_id == wanted]
        if not match:
            raise UserError(f"--trace-run {wanted}: no such run in {root / 'runs.jsonl'}")
        return match[-1], ""
    with_samples = [r for r in ok if samples_file(root, r.samples_path)[0] is not None]
    if with_samples:
        return with_samples[0], ""
    return (ok[0] if ok else None), "no run of this sweep has power samples"


def power_section(records, root: Path, trace_run: str | None, fig_dir: Path,
                   files: ReportFiles) -> Section:
    section = Section("Power trace of one run")
    record, why = _trace_run(records, root, trace_run)
    if record is None:
        section.blocks.append(Paragraph("No successful run: no power trace.", notice=True))
        return section
    result = record.result or {}
    samples_path, refused = samples_file(root, record.samples_path)
    if refused:  # outside the results folder, a link, a FIFO: never read
        files.warnings.append(f"run {record.run_id}: {refused}")
    if samples_path is None:
        reason = record.energy.reason or why
        if files.energy_note and reason == files.energy_note:  # the host's caveat, said once at the top
            reason = "no readable energy sensor (see the caveats at the top)"
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
