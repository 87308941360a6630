"""The answer per cell in a few words: who wins (or that it is a tie), by how much, how sure, and the one reason
it is not stronger. The report opens with it (below the host's caveats, said once); the wide recommendations
table with every figure follows it and is whole in tables/recommendations.csv.
"""
from __future__ import annotations

import polars as pl

from orchestrator.analysis.advice_schema import Advice, CellAdvice
from orchestrator.report.advice_text import num
from orchestrator.report.host_caveats import HostCaveats


def _answer(cell: CellAdvice) -> str:
    if cell.verdict == "no candidate" or cell.leader is None:
        return "no answer"
    if cell.verdict in ("recommended", "only candidate"):
        return cell.leader + (" (only candidate)" if cell.verdict == "only candidate" else "")
    untested = " (untested)" if cell.verdict == "not enough evidence" else ""
    return f"tie{untested}: " + ", ".join([cell.leader, *cell.tied_with])


def _margin(cell: CellAdvice) -> str:
    s = cell.separation
    if s is None or s.ratio is None:
        return "–"
    # A ratio reads better than a percentage once the runner-up takes twice as long or more.
    return f"runner-up {s.runner_up} " + (f"x{s.ratio:.3g}" if s.ratio >= 2 else f"{s.ratio - 1:+.0%}")


def _confidence(cell: CellAdvice) -> str:
    s, runs = cell.separation, cell.figure.runs if cell.figure else 0
    of = f"{runs} run{'s' if runs != 1 else ''}"
    if s is None:
        return f"not tested ({of})"
    if s.significant is None:
        return f"not tested ({of})"
    words = "significant" if s.significant else "not significant"
    return f"{words}, Holm p {num(s.p_holm)} ({of})"


def _not_stronger(cell: CellAdvice, caveats: HostCaveats) -> str:
    if cell.verdict == "recommended":
        return "–"
    reasons = caveats.row_reasons(cell)
    return reasons[0] if reasons else "–"


def answer_table(advice: Advice, caveats: HostCaveats) -> pl.DataFrame:
    """One short row per cell (model, batch size, precision; the host where there are several)."""
    several = len(advice.hosts) > 1
    rows = []
    for cell in advice.cells:
        where = f"{cell.model} bs{cell.batch_size} {cell.precision}" + (f" on {cell.host}" if several else "")
        figure = (f"{num(cell.figure.median)} {cell.unit}" if cell.figure and cell.figure.median is not None
                  else "–")
        rows.append({"cell": where, "answer": _answer(cell),
                     "median": figure,
                     "margin over runner-up": _margin(cell), "confidence": _confidence(cell),
                     "not stronger because": _not_stronger(cell, caveats)})
    return pl.DataFrame(rows) if rows else pl.DataFrame()
