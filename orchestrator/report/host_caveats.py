"""What holds for the whole host, said once: energy unavailable and why, one host, few repetitions.

The advice gives each cell its own reasons, and where a reason is the host's (no energy sensor, the same too-few
repetitions everywhere) every cell carries it: a table of such rows repeats one sentence in every row, twice.
Here those reasons are lifted out once, and each row keeps only what differs from them. Pure functions of the
advice; the terminal (advice_text.py), the sweep's finish and the report (answer.py) all use them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.analysis.advice_schema import Advice, CellAdvice

_ENERGY_PREFIX = "energy unavailable on this host: "
_RANKED = re.compile(r"^(energy unavailable on this host: .*); ranked by (latency \(p50\)|time per output token "
                     r"\(TPOT\)) instead of (\w+)$")
_REPETITIONS = re.compile(r"^(\d+) repetitions?: run at least (\d+) ")


@dataclass(frozen=True)
class HostCaveats:
    """The host-level caveats (each one line) and the texts they stand for in the cells' own reasons."""

    lines: tuple[str, ...]
    energy: str | None = None  # "energy unavailable on this host: <why>", when every cell lacks energy for it
    repetitions: bool = False  # every cell that is not recommended lacks repetitions

    def row_reasons(self, cell: CellAdvice) -> list[str]:
        """The cell's reasons less what the caveats say already (a too-few-repetitions reason becomes two words)."""
        out = []
        for reason in cell.reasons:
            if self.energy and (reason.startswith(self.energy) or _RANKED.match(reason)):
                continue
            if self.repetitions and _REPETITIONS.match(reason):
                out.append("too few repetitions")
                continue
            out.append(reason)
        return out

    def front_note(self, cell: CellAdvice) -> str:
        """The cell's Pareto note, empty where it only repeats the energy caveat."""
        if self.energy and cell.front_note == f"no front: {self.energy}":
            return ""
        return cell.front_note


def _energy_text(cell: CellAdvice) -> str | None:
    for reason in cell.reasons:
        if reason.startswith(_ENERGY_PREFIX):
            return _RANKED.match(reason).group(1) if _RANKED.match(reason) else reason
    if cell.front_note.startswith("no front: " + _ENERGY_PREFIX):
        return cell.front_note.removeprefix("no front: ")
    return None


def host_caveats(advice: Advice, extra: tuple[str, ...] = ()) -> HostCaveats:
    """The caveats that hold for every cell of the advice; extra: host-level lines the caller knows (a busy host)."""
    lines: list[str] = []
    measured = [c for c in advice.cells if c.verdict != "no candidate" or c.runtimes]
    energy = None
    texts = {_energy_text(c) for c in measured}
    if measured and len(texts) == 1 and None not in texts:
        energy = texts.pop()
        ranked = {c.objective for c in measured if c.objective_used != c.objective}
        # which latency stands in: p50 per batch, or per output token for generate calls (said as the cells say it)
        latencies = sorted({m.group(2) for c in measured for r in c.reasons if (m := _RANKED.match(r))},
                           key=lambda text: text != "latency (p50)")
        instead = " or ".join(latencies).replace("latency (p50)", "p50 latency") or "p50 latency"
        lines.append(f"{energy}. Latency and throughput were measured; every energy figure is empty (not zero)"
                     + (f", and each cell is ranked by {instead} instead of {', '.join(sorted(ranked))}"
                        if ranked else "") + ".")
    # Few repetitions is the host's caveat only where it holds for every cell; else each such row says it.
    counts = [m for c in measured for r in c.reasons if (m := _REPETITIONS.match(r))]
    repetitions = bool(measured) and len(counts) == len(measured)
    if repetitions:
        fewest = min(int(m.group(1)) for m in counts)
        needed = max(int(m.group(2)) for m in counts)
        lines.append(f"Few repetitions: every cell has as few as {fewest} run(s) per runtime; run at least {needed} "
                     "(fewer can never be significant after Holm), so no leader can be told apart from the others.")
    if len(advice.hosts) == 1:
        lines.append(f"One host ({advice.hosts[0].signature}): the answer holds for this machine; another may "
                     "rank the runtimes differently.")
    lines += [line for line in extra if line]
    return HostCaveats(tuple(lines), energy, repetitions)
