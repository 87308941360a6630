"""The answer per cell in a few words: who wins (or that it is a tie), by how much, how sure, and the one reason
it is not stronger. The report opens with it (below the host's caveats, said once); the wide recommendations
table with every figure follows it and is whole in tables/recommendations.csv.

Where a verdict-rule adaptive sweep's own test gave the answer (analysis/adaptive.py sequential_verdicts), "how
sure" is what that rule decided, in the words of the report's adaptive repetitions table (stopping_section.py): at
which look the runner-up was separated and at what Holm p against which level, or why a tied runtime stopped. The
Mann-Whitney p of the runs would say "not significant" of a group the rule separated with 3 to 5 runs a side.
"""
from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from orchestrator.analysis.adaptive import SequentialVerdict

from orchestrator.analysis.advice_schema import Advice, CellAdvice
from orchestrator.analysis.clients import client_label
from orchestrator.report.advice_text import num
from orchestrator.report.host_caveats import HostCaveats


def _answer(cell: CellAdvice) -> str:
    if cell.verdict == "no candidate" or cell.leader is None:
        return "no answer"
    if cell.verdict in ("recommended", "only candidate"):
        return cell.leader + (" (only candidate)" if cell.verdict == "only candidate" else "") + _client(cell)
    untested = " (untested)" if cell.verdict == "not enough evidence" else ""
    return f"tie{untested}: " + ", ".join([cell.leader, *cell.tied_with]) + _client(cell)


def _client(cell: CellAdvice) -> str:
    """Which client language to drive the leader's runtime from, where the cell measured several (else nothing)."""
    choice = cell.client
    if choice is None:
        return ""
    if choice.use is not None:
        return f"; client: {client_label(choice.use, choice.clients)}"
    return "; client: not told apart" if choice.verdict == "no difference" else "; client: untested"


def _margin(cell: CellAdvice) -> str:
    s = cell.separation
    if s is None or s.ratio is None:
        return "–"
    # A ratio reads better than a percentage once the runner-up takes twice as long or more.
    return f"runner-up {s.runner_up} " + (f"x{s.ratio:.3g}" if s.ratio >= 2 else f"{s.ratio - 1:+.0%}")


def _confidence(cell: CellAdvice, sequential: Mapping) -> str:
    answer = _sequential(cell, sequential)
    if answer is not None:
        return _sequential_confidence(cell, answer)
    s, runs = cell.separation, cell.figure.runs if cell.figure else 0
    of = f"{runs} run{'s' if runs != 1 else ''}"
    if s is None:
        return f"not tested ({of})"
    if s.significant is None:
        return f"not tested ({of})"
    words = "significant" if s.significant else "not significant"
    return f"{words}, Holm p {num(s.p_holm)} ({of})"


def _sequential(cell: CellAdvice, sequential: Mapping) -> SequentialVerdict | None:
    """The adaptive sweep's answer for this cell, where the advice took it: the metric the rule judged, the runtimes
    it compared, its leader (as analysis/best.py checks before it takes the rule's answer)."""
    answer = sequential.get((cell.model, cell.batch_size, cell.precision))
    candidates = frozenset(r.runtime for r in cell.runtimes if r.eligible)
    if (answer is None or answer.metric != cell.metric or answer.runtimes != candidates
            or answer.leader != cell.leader or cell.verdict not in ("recommended", "tie")):
        return None
    return answer


def _sequential_confidence(cell: CellAdvice, answer: SequentialVerdict) -> str:
    medians = {r.runtime: r.objective.median for r in cell.runtimes if r.objective and r.objective.median is not None}
    by_median = sorted((r for r in answer.runtimes if r != answer.leader),
                       key=lambda r: (medians.get(r, float("inf")), r))
    if answer.verdict == "best":
        runner_up = by_median[0]
        stop = answer.stops[runner_up]
        return (f"sequential rule: runner-up {runner_up} separated at look {stop.look} of {answer.looks} "
                f"({answer.test}, Holm p {stop.p_holm:.2g} < {stop.level:.2g}, {stop.runs} runs), every other "
                "runtime too")
    # the closest tied runtime's decision; where the tied runtime was the one compared with, the leader's
    tied = [r for r in by_median if r in answer.tied] + [answer.leader]
    who = next((r for r in tied if answer.stops[r].p_holm is not None), tied[0])
    stop = answer.stops[who]
    look = f", look {stop.look} of {answer.looks}" if stop.look else ""
    return f"sequential rule{look}: {who} {stop.why}"


def _not_stronger(cell: CellAdvice, caveats: HostCaveats) -> str:
    if cell.verdict == "recommended":
        return "–"
    reasons = caveats.row_reasons(cell)
    return reasons[0] if reasons else "–"


def answer_table(advice: Advice, caveats: HostCaveats, sequential: Mapping | None = None) -> pl.DataFrame:
    """One short row per cell (model, batch size, precision; the host where there are several). `sequential`: a
    verdict-rule adaptive sweep's answers (analysis/adaptive.py sequential_verdicts), {} or None otherwise."""
    several = len(advice.hosts) > 1
    rows = []
    for cell in advice.cells:
        where = f"{cell.model} bs{cell.batch_size} {cell.precision}" + (f" on {cell.host}" if several else "")
        figure = (f"{num(cell.figure.median)} {cell.unit}" if cell.figure and cell.figure.median is not None
                  else "–")
        rows.append({"cell": where, "answer": _answer(cell),
                     "median": figure,
                     "margin over runner-up": _margin(cell), "confidence": _confidence(cell, sequential or {}),
                     "not stronger because": _not_stronger(cell, caveats)})
    return pl.DataFrame(rows) if rows else pl.DataFrame()
