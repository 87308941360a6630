"""The advice in words (the terminal, the end of a sweep) and as the report's opening table."""
from __future__ import annotations

import polars as pl

from orchestrator.analysis.advice import per_output_token
from orchestrator.analysis.advice_schema import Advice, CellAdvice, Estimate
from orchestrator.analysis.carbon import INFERENCES, OUTPUT_TOKENS, GridFigures
from orchestrator.report.host_caveats import HostCaveats, host_caveats

OBJECTIVE_WORDS = {"energy": "energy per inference", "latency": "p50 latency per batch",
                   "edp": "energy-delay product", "carbon": "carbon per million inferences",
                   "cost": "cost per million inferences"}


def num(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    return f"{value:.4g}" if abs(value) >= 1e-3 else f"{value:.3e}"


def interval(e: Estimate | None) -> str:
    if e is None or e.median is None:
        return "-"
    if e.ci_low is None:
        return e.note or "no interval"
    return f"mean {num(e.mean)}, 95% CI {num(e.ci_low)}-{num(e.ci_high)}"


def figure_words(e: Estimate | None, unit: str) -> str:
    if e is None or e.median is None:
        return "no figure"
    return f"{num(e.median)} {unit} (median of {e.runs} run{'s' if e.runs != 1 else ''}; {interval(e)})"


def _headline(cell: CellAdvice) -> str:
    name = f"{cell.model} bs{cell.batch_size} {cell.precision}"
    if cell.verdict == "no candidate":
        return f"{name}: no recommendation"
    what = figure_words(cell.figure, cell.unit)
    if cell.verdict in ("recommended", "only candidate"):
        return f"{name}: {cell.verdict} {cell.recommended}: {what}"
    if cell.verdict == "tie":
        return f"{name}: tie between {', '.join([cell.leader or '', *cell.tied_with])}; lowest {cell.leader}: {what}"
    return f"{name}: not enough evidence; lowest measured {cell.leader}: {what}"


def separation_words(cell: CellAdvice) -> str | None:
    s = cell.separation
    if s is None:
        return None
    if s.p_value is None and s.p_holm is not None:  # the adaptive sweep's own test answered (analysis/advice.py)
        test = (f"{s.test}: Holm p {num(s.p_holm)}: "
                + ("significant" if s.significant else "not significant" if s.significant is False else "untested"))
    elif s.p_value is None:
        test = s.note or "not tested"
    else:
        delta = f", Cliff's delta {s.cliffs_delta:+.2f} ({s.magnitude})" if s.cliffs_delta is not None else ""
        test = (f"Mann-Whitney p {num(s.p_value)}, Holm p {num(s.p_holm)} over {s.comparisons} comparison"
                f"{'s' if s.comparisons != 1 else ''}{delta}: "
                + ("significant" if s.significant else "not significant"))
    ratio = f" (x{s.ratio:.3g})" if s.ratio is not None else ""
    return f"runner-up {s.runner_up} {num(s.runner_up_median)}{ratio}; {test}"


def _money(advice: Advice, cell: CellAdvice) -> list[str]:
    who = cell.recommended or cell.leader
    point = next((p for p in cell.runtimes if p.runtime == who), None)
    lines = []
    if point is None:
        return lines
    # The advice's labels count inferences; a generate call's cell counts output tokens (its energy is per token).
    grid = GridFigures(advice.grid.grid_intensity_g_per_kwh, advice.grid.pue, advice.grid.price_per_kwh)
    per = OUTPUT_TOKENS if per_output_token(cell) else INFERENCES
    if advice.grid.carbon_label:
        lines.append(f"carbon: {num(point.carbon_g_per_million)} {grid.carbon_label(per)}"
                     if point.carbon_g_per_million is not None else f"carbon: not shown ({point.energy.note})")
    if advice.grid.cost_label:
        lines.append(f"cost: {num(point.cost_per_million)}, {grid.cost_label(per)}"
                     if point.cost_per_million is not None else f"cost: not shown ({point.energy.note})")
    return lines


def constraint_words(advice: Advice) -> str:
    c = advice.constraints
    parts = ["faithful outputs only" if c.faithful_only else "unfaithful conversions admitted"]
    if c.max_p99_ms is not None:
        parts.append(f"p99 <= {c.max_p99_ms:g} ms")
    if c.min_throughput is not None:
        parts.append(f"throughput >= {c.min_throughput:g}/s")
    if c.precision is not None:
        parts.append(f"precision {c.precision}")
    return ", ".join(parts)


def ranked_by(advice: Advice) -> str:
    """What the cells were ranked by: the asked objective, or latency where no cell had energy to rank; generate
    calls (analysis/advice.py's per-token metrics) in their own words."""
    ranked = [cell for cell in advice.cells if cell.runtimes]
    units = {cell.unit for cell in ranked}
    if len(units) == 1 and all(per_output_token(cell) for cell in ranked):
        return units.pop()
    used = {cell.objective_used for cell in ranked}
    words = (OBJECTIVE_WORDS[used.pop()] if len(used) == 1 else OBJECTIVE_WORDS[advice.objective]
             + (" (p50 latency where a cell has no energy)" if used else ""))
    return words + ("; a generate call's cell per output token" if any(per_output_token(c) for c in ranked) else "")


def objective_words(advice: Advice) -> str:
    """What was asked, in words: per output token where a cell is a generate call's, else as it always read."""
    if any(per_output_token(cell) for cell in advice.cells):
        return ranked_by(advice)
    return OBJECTIVE_WORDS[advice.objective]


def advice_lines(advice: Advice, said: tuple[str, ...] = ()) -> list[str]:
    """The advice in lines: the host's caveats first (once; those in `said` were shown already), then each cell
    with only what differs from them."""
    if not advice.cells:
        return ["advice: no runs match (nothing to advise on)"]
    caveats = host_caveats(advice)
    lines = [f"advice: by {objective_words(advice)}; {constraint_words(advice)}; {advice.pooling}"]
    lines += [f"caveat: {line}" for line in caveats.lines if line not in said]
    if any(line in said for line in caveats.lines):
        lines.append("(the caveats above hold for every cell below)")
    host = None
    for cell in advice.cells:
        if cell.host != host and len(advice.hosts) > 1:
            lines.append(f"host {cell.host} ({', '.join(cell.sources)})")
        host = cell.host
        lines.append(_headline(cell))
        details = [separation_words(cell), cell.client.words if cell.client else None,
                   f"Pareto front (energy, p99): {', '.join(cell.front)}" if cell.front
                   else caveats.front_note(cell), *_money(advice, cell)]
        lines += [f"  {d}" for d in details if d]
        lines += [f"  why: {r}" for r in caveats.row_reasons(cell)]
    return lines


def recommendations_table(advice: Advice, caveats: HostCaveats | None = None) -> pl.DataFrame:
    """One row per host, model, batch size and precision, every figure; a row says only what differs from the
    caveats, when given (the report states them once above)."""
    caveats = caveats or HostCaveats(())
    rows = []
    for cell in advice.cells:
        point = next((p for p in cell.runtimes if p.runtime == (cell.recommended or cell.leader)), None)
        row = {"model": cell.model, "batch_size": cell.batch_size, "precision": cell.precision,
               "verdict": cell.verdict, "runtime": cell.recommended or cell.leader,
               "tied_with": ", ".join(cell.tied_with), "objective": cell.objective_used,
               "median": cell.figure.median if cell.figure else None, "unit": cell.unit,
               "ci95_of_mean": interval(cell.figure) if cell.figure else "-",
               "runs": cell.figure.runs if cell.figure else None,
               "runner_up": cell.separation.runner_up if cell.separation else None,
               "runner_up_ratio": cell.separation.ratio if cell.separation else None,
               "p_holm": cell.separation.p_holm if cell.separation else None,
               "pareto_front": ", ".join(cell.front) or caveats.front_note(cell)}
        if advice.grid.carbon_label:
            row["gCO2e_per_million"] = point.carbon_g_per_million if point else None
        if advice.grid.cost_label:
            row["cost_per_million"] = point.cost_per_million if point else None
        if any(c.client for c in advice.cells):  # a sweep that measured several clients of a runtime
            row["client"] = cell.client.words.removeprefix("client: ") if cell.client else None
        row["why"] = "; ".join(caveats.row_reasons(cell))
        if len(advice.hosts) > 1:
            row = {"host": cell.host, **row}
        rows.append(row)
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
