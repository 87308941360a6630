"""The report's section on generative runs: per model x batch x precision, the runtime with the lowest energy per
output token (TPOT where no energy) and its interval, TTFT, TPOT, tokens/s, energy per prompt and per output token
by phase, fidelity and the energy-latency front; figures of J per output token and of TTFT / TPOT by runtime.

The ranking is the advice's (analysis/advice.py): the same runs, the same test, in per-token units (the request's
energy / N ranks the runtimes of a group exactly as energy per inference does). The phase figures beside it come
from each run's `generation` payload (results/generation_payload.py, measurement/phase_energy.py).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl

from orchestrator.analysis.advice import per_output_token
from orchestrator.analysis.advice_schema import Advice, CellAdvice
from orchestrator.analysis.frames import Metric
from orchestrator.analysis.stats import cell_statistics
from orchestrator.report import figures
from orchestrator.report.advice_text import interval, num
from orchestrator.report.document import Bullets, FigureBlock, Paragraph, Section
from orchestrator.report.report_files import ReportFiles

TITLE = "Generative runs: energy per token, TTFT and TPOT"
# The columns the page has room for; tables/generation.csv has every one.
SHOWN = ("cell", "runtime", "verdict", "runs", "J_per_token_request", "ci95_of_mean", "ttft_ms", "tpot_ms",
         "tokens_per_s", "J_per_prompt_token_prefill", "J_per_token_decode", "prefill_short", "fidelity", "on_front")

# The per-run figures the section summarises per cell (median over runs, IQR; mean with its bootstrap interval).
METRICS = (
    Metric("j_per_token", "energy per output token, whole request (request energy / N)", "J", True),
    Metric("j_per_prompt_token", "energy per prompt token, prefill phase", "J", True),
    Metric("j_per_output_token", "energy per output token, decode phase", "J", True),
    Metric("j_per_request", "energy per request (one sequence of one generate call)", "J", True),
    Metric("ttft_ms", "time to first token (median over a run's iterations)", "ms", False),
    Metric("tpot_ms", "time per output token after the first (median over a run's iterations)", "ms", False),
    Metric("output_tokens_per_s", "output tokens per second (B x N per generate call)", "tokens/s", False),
)

EXPLAINED = (
    "An iteration is one generate call of B sequences of P prompt tokens making exactly N new tokens (greedy, end of "
    "sequence ignored). The runner stamps each iteration's start, first token and end on the host's monotonic clock: "
    "TTFT is start to first token (the prefill), TPOT the rest divided by N - 1, tokens/s B x N over the call. "
    "Energy per output token (the ranking) is the run's energy per request divided by N, prefill included: it ranks "
    "the runtimes of a cell exactly as energy per inference does, by the same runs and test. Beside it, by phase: "
    "each sensor is integrated over the prefill intervals and over the decode intervals separately (the counters "
    "interpolated as for the window, idle power as for the window), so J per prompt token is the prefill's energy "
    "/ (B x P) and decode J per output token the decode's / (B x (N - 1)). A prefill shorter than a sensor's update "
    "step (NVML's counter steps about every 100 ms) cannot be seen apart from what surrounds it: such runs are "
    "flagged 'prefill short' and their prefill figures carry a worst-case bound in tables/runs "
    "(prefill_edge_uncertainty_j).")


def _generative_runs(runs: pl.DataFrame) -> pl.DataFrame:
    if runs.is_empty() or "new_tokens" not in runs.columns:
        return runs.clear()
    generative = runs.filter(pl.col("new_tokens").is_not_null())
    return generative.with_columns((pl.col("j_per_inference") / pl.col("new_tokens")).alias("j_per_token"))


def generation_cells(runs: pl.DataFrame) -> frozenset[tuple]:
    """The (model, batch size, precision) cells whose runs are generate calls."""
    generative = _generative_runs(runs)
    return frozenset(generative.select("model", "batch_size", "precision").unique().iter_rows())


def _median(frame: pl.DataFrame, column: str) -> float | None:
    if column not in frame.columns:
        return None
    values = frame[column].drop_nulls()
    return float(values.median()) if not values.is_empty() else None


def _fidelity(frame: pl.DataFrame) -> str:
    verdicts = sorted({v for v in frame["fidelity_verdict"].to_list() if v}) if "fidelity_verdict" in frame.columns \
        else []
    return "; ".join(verdicts) if verdicts else "reference (not compared)"


def cell_rows(cell: CellAdvice, runs: pl.DataFrame) -> list[dict]:
    """One row per runtime of an advice cell: its ranking figure with the interval, times, phases, fidelity."""
    rows = []
    group = runs.filter((pl.col("model") == cell.model) & (pl.col("batch_size") == cell.batch_size)
                        & (pl.col("precision") == cell.precision) & (pl.col("status") == "ok"))
    def ranked(p) -> tuple:  # by the cell's figure, those without one last
        figure = p.objective.median if p.objective is not None else None
        return (figure is None, figure or 0.0, p.runtime)

    for point in sorted(cell.runtimes, key=ranked):
        mine = group.filter(pl.col("runtime") == point.runtime)
        short = True in mine["prefill_short"].to_list() if "prefill_short" in mine.columns else False
        energy = point.energy
        fidelity = _fidelity(mine) if mine.height else "no successful run"
        rows.append({
            "cell": f"{cell.model} bs{cell.batch_size} {cell.precision}", "model": cell.model,
            "batch_size": cell.batch_size, "precision": cell.precision,
            "prompt_tokens": int(mine["prompt_tokens"][0]) if mine.height else None,
            "new_tokens": int(mine["new_tokens"][0]) if mine.height else None,
            "runtime": point.runtime,
            "verdict": ("recommended" if point.runtime == cell.recommended else
                        "leader" if point.runtime == cell.leader else
                        "tied" if point.runtime in cell.tied_with else ""),
            "runs": point.runs,
            "J_per_token_request": energy.median if energy.metric == "j_per_token" else None,
            "ci95_of_mean": interval(energy) if energy.metric == "j_per_token" else "-",
            "ttft_ms": _median(mine, "ttft_ms"), "tpot_ms": _median(mine, "tpot_ms"),
            "tokens_per_s": _median(mine, "output_tokens_per_s"),
            "J_per_prompt_token_prefill": _median(mine, "j_per_prompt_token"),
            "J_per_token_decode": _median(mine, "j_per_output_token"),
            "J_per_request": _median(mine, "j_per_request"),
            "prefill_energy_share": _median(mine, "prefill_energy_share"),
            "prefill_short": bool(short) if mine.height else None,
            "fidelity": fidelity.split(":")[0],  # the verdict's first words; the whole line in fidelity_verdict
            "fidelity_verdict": fidelity,
            "on_front": point.on_front,
            "excluded_because": point.excluded_because or "",
        })
    return rows


def _answer_line(cell: CellAdvice, runs: pl.DataFrame) -> str:
    where = f"{cell.model}, batch {cell.batch_size}, {cell.precision}"
    if cell.leader is None:
        return f"{where}: no runtime to recommend ({'; '.join(cell.reasons[:1]) or 'no successful run'})"
    leader = next(p for p in cell.runtimes if p.runtime == cell.leader)
    row = next(r for r in cell_rows(cell, runs) if r["runtime"] == cell.leader)
    by = ("energy per output token" if cell.metric == "j_per_token" else
          "time per output token (no energy figure)" if cell.metric == "tpot_ms" else cell.unit)
    verdict = {"recommended": "recommended", "only candidate": "the only candidate",
               "tie": f"lowest, tied with {', '.join(cell.tied_with)}",
               "not enough evidence": "lowest, not enough runs to test"}.get(cell.verdict, cell.verdict)
    figure = cell.figure
    parts = [f"{num(figure.median)} {cell.unit} ({interval(figure)})" if figure and figure.median is not None else
             "no figure"]
    parts += [f"TTFT {num(row['ttft_ms'])} ms", f"TPOT {num(row['tpot_ms'])} ms",
              f"{num(row['tokens_per_s'])} tokens/s", f"fidelity: {row['fidelity_verdict']}"]
    front = f"; front (energy per token, p99 per request): {', '.join(cell.front)}" if cell.front else ""
    return f"{where}, by {by}: {cell.leader} {verdict}: {'; '.join(parts)}{front}" + (
        "" if leader.eligible else f" (excluded: {leader.excluded_because})")


def generation_section(runs: pl.DataFrame, advice: Advice, fig_dir: Path, colors: dict, files: ReportFiles,
                       table) -> Section | None:
    """None for a sweep with no generative run (a classifier sweep's report is unchanged)."""
    generative = _generative_runs(runs)
    if generative.is_empty():
        return None
    cells = [c for c in advice.cells if per_output_token(c)]
    section = Section(TITLE, [Paragraph(EXPLAINED)])
    section.blocks.append(_answers(cells, generative))
    rows = [row for cell in cells for row in cell_rows(cell, generative)]
    if rows:
        block = table("generation", "Per cell and runtime, best first: J per output token of the whole request (the "
                                    "ranking: median over runs, 95% interval of the mean), TTFT, TPOT and tokens/s "
                                    "(medians over runs), J per prompt token (prefill) and per output token (decode), "
                                    "fidelity", pl.DataFrame(rows, infer_schema_length=None))
        section.blocks.append(replace(block, columns=SHOWN))
    stats = cell_statistics(generative, metrics=METRICS)
    section.blocks.append(table("generation_statistics", "Every generative figure of every cell (long form)", stats, 0))
    for metric, ylabel, title, name in (
            ("j_per_token", "J per output token", "Energy per output token, whole request (median over runs, "
                                                  "whiskers IQR)", "j_per_output_token"),
            ("ttft_ms", "ms to first token", "Time to first token (median over runs, whiskers IQR)", "ttft"),
            ("tpot_ms", "ms per output token", "Time per output token (median over runs, whiskers IQR)", "tpot")):
        saved = figures.facet_bars(stats, metric, ylabel, title, fig_dir, name, colors)
        if saved:
            files.figures[name] = saved.png
            section.blocks.append(FigureBlock(title, saved.png, saved.svg))
        elif metric == "j_per_token":
            section.blocks.append(Paragraph("No energy per output token: no generative run has an energy figure "
                                            "(see the caveats at the top); runtimes are ranked by TPOT.", notice=True))
    return section


def _answers(cells: list[CellAdvice], runs: pl.DataFrame) -> Bullets:
    return Bullets(tuple(_answer_line(cell, runs) for cell in cells) or ("no generative cell",))
