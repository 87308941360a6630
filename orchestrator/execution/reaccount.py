"""Accounting a run again from what its record kept, after greenrt failed once the runner had returned.

Such a run (failure kind `accounting`) keeps its runner's result, its samples and the traceback; once the cause is
fixed, `greenrt report` accounts it again here and appends the finished record to the journal (the latest record
of a run wins, so nothing is rewritten and the failed attempt stays readable).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from orchestrator.measurement import accounting
from orchestrator.measurement.phase_energy import account_generation
from orchestrator.planning.gpus import GpuDescription
from orchestrator.measurement.sampler import SampleSeries
from orchestrator.measurement.sensors.base import SensorStatus
from orchestrator.results.payloads import Fidelity
from orchestrator.results.record import OK, RunRecord
from orchestrator.results.results_files import samples_file
from orchestrator.results.store import ResultsDir, read_json_object
from orchestrator.errors import UserError
from orchestrator.execution.preparation import reference_path
from orchestrator.execution.run import ACCOUNTING, compare_output_files


@dataclass(frozen=True)
class Reaccounted:
    run_id: str
    status: str  # the new record's status, or "failed-again"
    detail: str


def _idle_w(results: ResultsDir, record: RunRecord) -> dict[str, float]:
    stored = _facts(results.baseline_path)
    index = record.protocol.baseline_index if record.protocol else None
    history = stored.get("history") or []
    chosen = history[index] if isinstance(index, int) and 0 <= index < len(history) else stored.get("latest") or {}
    return dict(chosen.get("idle_w") or {})


def _facts(path: Path) -> dict:
    """baseline.json or host.json ({} when absent); a damaged one, a link or a FIFO fails this re-accounting in
    one line (reaccount_failed keeps it as "failed-again"), never read."""
    data, problem = read_json_object(path)
    if problem == "missing":
        return {}
    if problem is not None:
        raise UserError(f"{path}: unreadable ({problem})")
    return data


def _statuses(results: ResultsDir) -> list[SensorStatus]:
    host = _facts(results.host_path)
    return [SensorStatus(**s) for s in host.get("sensors", [])]


def _fidelity(results: ResultsDir, record: RunRecord, seed: int) -> Fidelity | None:
    if record.reference_outputs:
        reference = Path(record.reference_outputs)
    elif record.artifact:  # recorded before references had their own cache: kept beside the converted model
        reference = reference_path(Path(record.artifact.path).parent, record.batch_size, seed)
    else:
        return None
    outputs = results.run_dir(record.run_id) / "outputs.npz"
    if not outputs.exists() or not reference.exists():
        return Fidelity.unavailable("accounted again later: the run's outputs or its source's reference outputs "
                                    "were not kept")
    fidelity = compare_output_files(reference, outputs, record.precision)
    outputs.unlink(missing_ok=True)
    return fidelity


def reaccount_record(results: ResultsDir, record: RunRecord, seed: int) -> RunRecord:
    """The finished record of a run whose accounting failed (raises if it fails again)."""
    result = record.result or {}
    start, end = result.get("window_start_ns"), result.get("window_end_ns")
    window = (int(start), int(end)) if result.get("status") == "ok" and start and end else None
    samples, refused = samples_file(results.root, record.samples_path)
    if refused:  # outside the results folder, a link, a FIFO: never read
        raise UserError(refused)
    if record.samples_path and samples is None:
        raise UserError(f"{record.samples_path}: missing")
    series = SampleSeries.read_parquet(samples) if samples else None
    gpus = tuple(GpuDescription.from_dict(g) for g in record.gpus)
    again = record.model_copy(deep=True)
    again.energy = accounting.account_energy(series, window, _idle_w(results, record), _statuses(results), gpus)
    again.generation = account_generation(result if window else None, series, window, _idle_w(results, record),
                                          again.energy)
    fidelity = _fidelity(results, record, seed)
    if fidelity is not None:
        again.fidelity = fidelity
    if window:
        again.status, again.failure = OK, None
    again.reaccounted = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         "previous_failure": record.failure.message if record.failure else ""}
    json.dumps(again.to_journal(), allow_nan=False)
    return again


def reaccount_failed(results: ResultsDir, latest: list[RunRecord] | None = None) -> list[Reaccounted]:
    """Account again every run whose latest record failed in accounting; append what succeeds.

    latest: those records, when the caller has read the journal already (tables.read_runs).
    """
    if latest is None:
        records, _ = results.records()
        latest = list({r.run_id: r for r in records}.values())
    plan = results.read_plan()
    seed = int(plan.get("seed", 0))
    done = []
    for record in latest:
        if record.failure is None or record.failure.kind != ACCOUNTING:
            continue
        try:
            again = reaccount_record(results, record, seed)
        except Exception as exc:  # still failing: the record stays as it was, the report goes on
            done.append(Reaccounted(record.run_id, "failed-again", f"{type(exc).__name__}: {exc}"))
            continue
        results.append(again)
        done.append(Reaccounted(record.run_id, again.status, again.energy.status))
    return done

