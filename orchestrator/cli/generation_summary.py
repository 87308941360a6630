"""What `greenrt run` prints of generative runs: per runtime and precision, the median time to first token, time per
output token and output tokens per second (each run's generation payload, results/generation_payload.py, median
over the runs of the cell) and the fidelity verdict against transformers' fp32 CPU run. Pure but for the table."""
from __future__ import annotations

import statistics
from collections.abc import Iterable

from rich.table import Table

from orchestrator.results.record import RunRecord
from runners.runtimes_table import GENERATIVE, runtime_kind

COLUMNS = ("runtime", "precision", "batch", "runs", "TTFT ms", "TPOT ms", "tokens/s", "fidelity")


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.4g}" if values else "-"


def generation_rows(records: Iterable[RunRecord]) -> list[tuple[str, ...]]:
    """One row per generative cell (runtime, precision, batch) in first-seen order: its ok runs' median TTFT,
    TPOT and tokens/s, and its fidelity verdict (the reference's own cell says so; a failed cell its failure)."""
    cells: dict[tuple[str, str, int], list[RunRecord]] = {}
    for record in records:
        if runtime_kind(record.runtime) != GENERATIVE:
            continue
        cells.setdefault((record.runtime, record.precision, record.batch_size), []).append(record)
    rows = []
    for (runtime, precision, batch), runs in cells.items():
        ok = [r for r in runs if r.ok and r.generation is not None]
        ttft = [r.generation.ttft_median_ms for r in ok if r.generation.ttft_median_ms is not None]
        tpot = [r.generation.tpot_median_ms for r in ok if r.generation.tpot_median_ms is not None]
        rate = [r.generation.tokens_per_s_median for r in ok if r.generation.tokens_per_s_median is not None]
        rows.append((runtime, precision, str(batch), f"{len(ok)}/{len(runs)}", _median(ttft), _median(tpot),
                     _median(rate), _fidelity(runs)))
    return rows


def _fidelity(runs: list[RunRecord]) -> str:
    failed = next((r for r in runs if not r.ok), None)
    if failed is not None and not any(r.ok for r in runs):
        message = failed.failure.message if failed.failure else "failed"
        return f"failed ({failed.failure.kind if failed.failure else '?'}): {message[:160]}"
    judged = next((r.fidelity for r in runs if r.ok and r.fidelity is not None), None)
    if judged is None:
        return "the reference (transformers, CPU, fp32)" if all(r.reference_outputs is None for r in runs) else "-"
    return judged.verdict or judged.reason or judged.status or "-"


def generation_table(records: Iterable[RunRecord]) -> Table | None:
    """The table of generation_rows; None where no run was generative."""
    rows = generation_rows(records)
    if not rows:
        return None
    table = Table(title="generation (medians over each cell's runs)", title_justify="left")
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table
