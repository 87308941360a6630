"""Merging a sweep's journal into tidy tables (polars): one row per run, written as parquet and csv."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import polars as pl

from orchestrator.results.journal import JournalProblem, iter_journal
from orchestrator.results.generation_payload import Generation
from orchestrator.results.payloads import EnergyChannel, Fidelity
from orchestrator.results.record import RunRecord, as_record
from orchestrator.results.results_files import samples_file
from orchestrator.results.run_times import TimeLedger
from runners.clients import PYTHON, split_client

ACCOUNTING_KIND = "accounting"  # the failure kind of a run greenrt failed to account (execution/sweep.py)

ENERGY_DOMAINS = ("cpu", "dram", "gpu")
_NO_FIDELITY = Fidelity()  # a native run's: every figure None


def _total(channels: list[EnergyChannel], figure: str) -> float | None:
    """Sum over channels; None when there is no channel or any of them has no figure (never a partial sum)."""
    values = [getattr(c, figure) for c in channels]
    if not values or any(v is None for v in values):
        return None
    return float(sum(values))


def _run_channels(channels: dict[str, EnergyChannel], domain: str) -> list[EnergyChannel]:
    """The channels of a domain that belong to the run: for GPUs, those given to it (a journal written before
    per-GPU attribution has no `assigned`: every GPU counted, as it was then)."""
    return [c for c in channels.values() if c.domain == domain and c.counted]


def _latencies_ms(record: RunRecord) -> np.ndarray:
    return np.asarray((record.result or {}).get("latencies_ns") or [], dtype=np.float64) / 1e6


def latency_stats(latencies: np.ndarray) -> np.ndarray:
    """Rows of (mean, p50, p90, p99) of each row of a (runs x iterations) matrix of latencies: numpy reduces
    along a row exactly as it does a lone array, so a matrix gives every run's own numbers in one call."""
    return np.column_stack([latencies.mean(axis=1), np.percentile(latencies, (50, 90, 99), axis=1).T])


def _op_counts(op_types: dict[str, int] | None) -> str:
    return ", ".join(f"{op}:{n}" for op, n in (op_types or {}).items())


def placement_columns(placement: dict[str, Any], provider: str | None) -> dict[str, Any]:
    """ONNX Runtime's node placement (runners/adapters/ort_placement.py) as columns; all None for other runtimes
    and for results written before the placement was recorded.

    cpu_fallback_nodes: compute nodes the CPU provider took in a GPU session (0 on cpu); ORT's deliberate CPU
    placement of shape computations is counted apart, in cpu_shape_nodes.  cuda_fallback_nodes (tensorrt runs
    only): nodes TensorRT did not take, run by the CUDA EP.  placement_verdict: placed | cpu-fallback |
    cuda-fallback | cpu-and-cuda-fallback, or "unknown" where ORT's log could not be read (the reason is in
    cpu_fallback_ops); None in a result recorded before verdicts existed."""
    columns: dict[str, Any] = dict.fromkeys(("placement_verdict", "cpu_fallback_nodes", "cpu_fallback_ops",
                                             "cpu_shape_nodes", "cuda_fallback_nodes", "cuda_fallback_ops"))
    if placement.get("status") == "ok":
        columns.update(placement_verdict=placement.get("verdict"),
                       cpu_fallback_nodes=placement.get("cpu_fallback_nodes"),
                       cpu_fallback_ops=_op_counts(placement.get("cpu_op_types")) or placement.get("note", ""),
                       cpu_shape_nodes=placement.get("cpu_shape_nodes"))
        if provider == "tensorrt":
            columns.update(cuda_fallback_nodes=placement.get("cuda_fallback_nodes"),
                           cuda_fallback_ops=_op_counts(placement.get("cuda_op_types")))
    elif placement:
        columns.update(placement_verdict="unknown", cpu_fallback_ops=f"unknown: {placement.get('reason')}")
    return columns


def generation_columns(generation: Generation, ok: bool) -> dict[str, Any]:
    """A generative run's columns (results/generation_payload.py): medians over its iterations, energy per token
    by phase (prefill: per prompt token; decode: per token after the first), each phase's energy and its worst-case
    edge uncertainty, and whether a phase was shorter than a channel's counter step. Only generative runs have
    them, so a classifier sweep's tables keep their columns."""
    energy = generation.energy
    phases = {name: getattr(energy, name) if energy else None for name in ("prefill", "decode")}
    columns: dict[str, Any] = {
        "prompt_tokens": generation.prompt_tokens, "new_tokens": generation.new_tokens,
        "ttft_ms": generation.ttft_median_ms if ok else None, "tpot_ms": generation.tpot_median_ms if ok else None,
        "output_tokens_per_s": generation.tokens_per_s_median if ok else None,
        "j_per_prompt_token": generation.j_per_prompt_token if ok else None,
        "j_per_output_token": generation.j_per_output_token if ok else None,
        "j_per_request": generation.j_per_request if ok else None,
        "dynamic_j_per_prompt_token": generation.dynamic_j_per_prompt_token if ok else None,
        "dynamic_j_per_output_token": generation.dynamic_j_per_output_token if ok else None,
        "dynamic_j_per_request": generation.dynamic_j_per_request if ok else None,
        "prefill_energy_share": generation.prefill_energy_share if ok else None,
    }
    for name, phase in phases.items():
        columns[f"{name}_energy_j"] = phase.raw_j if ok and phase else None
        columns[f"{name}_edge_uncertainty_j"] = phase.edge_uncertainty_j if ok and phase else None
        columns[f"{name}_short"] = bool(phase.short_channels) if ok and phase else None
    columns["generation_note"] = "; ".join(n for n in (generation.note, generation.energy_note) if n)
    return columns


def run_row(record: RunRecord | dict[str, Any], stats: tuple[float, float, float, float] | None = None) -> dict[str, Any]:
    """stats: the run's latency (mean, p50, p90, p99) in ms when the caller computed them already (read_runs,
    a batch of runs at once); else they are computed here."""
    record = as_record(record)
    result = record.result or {}
    failure = record.failure
    energy = record.energy
    latencies = _latencies_ms(record) if stats is None else None
    ok = record.ok and (stats is not None or latencies.size > 0)
    if ok and stats is None:
        stats = tuple(float(v) for v in latency_stats(latencies[None, :])[0])
    mean, p50, p90, p99 = stats if ok else (None, None, None, None)
    start, end = result.get("window_start_ns"), result.get("window_end_ns")
    window_s = (end - start) / 1e9 if ok and start and end else None
    iterations = result.get("iterations") or 0
    samples = iterations * record.batch_size
    row: dict[str, Any] = {
        "run_id": record.run_id, "index": record.index, "repetition": record.repetition,
        "model": record.model, "batch_size": record.batch_size, "runtime": record.runtime,
        "client": split_client(record.runtime)[1] or PYTHON,  # the client language's suffix; a plain id is Python
        "framework": record.framework, "model_format": record.model_format,
        "provider": record.provider, "precision": record.precision, "status": record.status,
        "failure_kind": failure.kind if failure else None, "failure_message": failure.message if failure else None,
        "launcher": record.launcher, "started_at": record.started_at,
        # Set by the merge of a sharded sweep: which shard measured the run, and that node's hardware.
        "shard": record.shard, "host": record.host_signature,
        "iterations": iterations if ok else None, "window_s": window_s,
        "latency_mean_ms": mean,
        "latency_p50_ms": p50, "latency_p90_ms": p90, "latency_p99_ms": p99,
        "throughput_per_s": samples / window_s if ok and window_s else None,
        "load_s": result.get("load_seconds"), "warmup_s": result.get("warmup_seconds"),
        "engine_build_s": result.get("engine_build_seconds"),
        "peak_rss_mb": result["peak_host_rss_bytes"] / 2**20 if result.get("peak_host_rss_bytes") else None,
        "peak_device_mb": result["peak_device_bytes"] / 2**20 if result.get("peak_device_bytes") else None,
        "threads": result.get("threads"), "provider_used": result.get("provider_used"),
        "framework_version": (result.get("versions") or {}).get(record.framework or "", None),
        "output_sha256": (result.get("output_digest") or {}).get("sha256"),
        "energy_status": energy.status, "energy_note": energy.note,
    }
    channels = energy.channels
    own = {domain: _run_channels(channels, domain) for domain in ENERGY_DOMAINS}  # once: 200,000 rows
    for domain in ENERGY_DOMAINS:
        row[f"{domain}_energy_j"] = _total(own[domain], "raw_j") if ok else None
        row[f"{domain}_dynamic_j"] = _total(own[domain], "dynamic_j") if ok else None
    # GPUs the run was not given still drew power on the node: kept beside the run's, never in its per-inference.
    node_gpus = [c for c in channels.values() if c.domain == "gpu"]
    other_gpus = [c for c in node_gpus if not c.counted]
    # +- of gpu_energy_j from the counter's steps at the window's two edges (orchestrator/measurement/edges.py);
    # None in journals written before it was recorded.
    row["gpu_edge_uncertainty_j"] = energy.edge_uncertainty_j if ok else None
    row["other_gpus_energy_j"] = _total(other_gpus, "raw_j") if ok else None
    row["node_gpu_energy_j"] = _total(node_gpus, "raw_j") if ok else None
    row["gpu_energy_method"] = "+".join(sorted({c.method for c in node_gpus if c.method})) or None
    measured = [d for d in ENERGY_DOMAINS if own[d]]
    for kind in ("energy", "dynamic"):
        parts = [row[f"{d}_{kind}_j"] for d in measured]
        row[f"total_{kind}_j"] = float(sum(parts)) if ok and parts and None not in parts else None
    row["energy_domains"] = "+".join(measured)
    if ok and node_gpus and not measured:
        row["energy_note"] = ("no sensor measures the devices this run used: the GPUs sampled were not given to it "
                              "(their energy is in other_gpus_energy_j)" + (f"; {row['energy_note']}"
                                                                            if row["energy_note"] else ""))
    row["j_per_inference"] = row["total_energy_j"] / samples if row["total_energy_j"] is not None and samples else None
    row["dynamic_j_per_inference"] = (row["total_dynamic_j"] / samples
                                      if row["total_dynamic_j"] is not None and samples else None)
    row["mean_power_w"] = row["total_energy_j"] / window_s if row["total_energy_j"] is not None and window_s else None
    fidelity = record.fidelity or _NO_FIDELITY
    row["fidelity_faithful"] = fidelity.faithful
    row["fidelity_max_abs_error"] = fidelity.max_abs_error
    row["fidelity_min_cosine"] = fidelity.min_cosine_similarity
    row["fidelity_top1_agreement"] = fidelity.top1_agreement
    # Which criterion judged the run (fp32 "faithful", or "quantized" for int8: never faithful), and its one line.
    row["fidelity_criterion"] = fidelity.criterion
    # The quantized criterion's own verdict (within its precision's thresholds); None where fp32/fp16 judges.
    row["fidelity_acceptable"] = fidelity.acceptable
    row["fidelity_verdict"] = fidelity.verdict
    row["fidelity_note"] = fidelity.reason or ("" if record.fidelity or not ok else "not a converted model")
    row.update(placement_columns(result.get("node_placement") or {}, record.provider))
    # A compiler's compiles (a recompilation) inside the timed window, whose latencies then hold a compile
    # (torch/inductor's runtime_facts); None where the runtime reports none.
    row["compiles_in_window"] = (result.get("runtime_facts") or {}).get("compiles_in_window")
    # Measured on a busy host (execution/run.py observes it; measurement/interference.py judges it): the verdict,
    # the CPU capacity other processes used and the hypervisor stole, and the process that used the most. None
    # where it was not observed (journals written before it, interrupted runs).
    busy = record.interference
    row["busy"] = busy.flagged if busy else None
    row["others_share"] = busy.others_share if busy else None
    row["steal_share"] = busy.steal_share if busy else None
    row["top_other_process"] = busy.top_process() if busy else None
    if record.generation is not None:
        row.update(generation_columns(record.generation, ok))
    for name, channel in sorted(channels.items()):
        row[f"energy_{name}_j"] = channel.raw_j if ok else None
        if channel.domain == "gpu":
            row[f"power_{name}_w"] = channel.mean_power_w if ok else None
            row[f"edge_uncertainty_{name}_j"] = channel.edge_uncertainty_j if ok else None
            row[f"temperature_max_{name}_c"] = channel.temperature_c.max if ok and channel.temperature_c else None
    return row


def runs_table(records: list[RunRecord] | list[dict[str, Any]]) -> pl.DataFrame:
    # The latest record of a run wins (a resumed sweep may have recorded an interrupted attempt before).
    latest = {r.run_id: r for r in map(as_record, records)}
    return _frame({r.run_id: run_row(r) for r in latest.values()})


# The columns a runs table without a run still has (a sweep whose every cell was skipped): what the statistics
# group and filter by, so that they find no group rather than no column.
EMPTY_RUNS_SCHEMA = {"run_id": pl.String, "index": pl.Int64, "repetition": pl.Int64, "model": pl.String,
                     "batch_size": pl.Int64, "runtime": pl.String, "framework": pl.String, "model_format": pl.String,
                     "provider": pl.String, "precision": pl.String, "status": pl.String, "failure_kind": pl.String,
                     "failure_message": pl.String}


def _frame(rows_by_id: dict[str, dict[str, Any]]) -> pl.DataFrame:
    rows = sorted(rows_by_id.values(), key=lambda r: (r["index"] is None, r["index"]))
    if not rows:
        return pl.DataFrame(schema=EMPTY_RUNS_SCHEMA)
    return pl.DataFrame(rows, infer_schema_length=None)


@dataclass
class JournalTables:
    """What the tables and the report need of a journal, read in one pass: the runs table, the unreadable lines,
    and only the few whole records the report shows (so that 200,000 records are never all held at once)."""

    runs: pl.DataFrame
    problems: list[JournalProblem]
    # In journal order, the records the report reads beyond the table: per runtime the first that reported its
    # versions (provenance), the first successful one (with samples on disk, if any: the power trace), and the
    # latest of --trace-run's run.
    shown: list[RunRecord] = field(default_factory=list)
    # The latest record of each run whose accounting failed: what `greenrt report` accounts again.
    accounting_failed: list[RunRecord] = field(default_factory=list)
    time: TimeLedger = field(default_factory=TimeLedger)  # every record's phases, summed (report/time_spent.py)


def read_runs(journal_path: Path, root: Path, trace_run: str | None = None) -> JournalTables:
    """One pass over the journal: a row per run (the latest record wins), each record dropped once it is a row."""
    rows: dict[str, dict[str, Any]] = {}
    failed_accounting: dict[str, RunRecord] = {}
    shown: dict[int, RunRecord] = {}  # by line, so that they stay in journal order
    versions_of: set[str] = set()
    first_ok: int | None = None
    with_samples: int | None = None
    problems: list[JournalProblem] = []
    ledger = TimeLedger()
    for number, record, stats in _with_latency_stats(iter_journal(journal_path, problems)):
        rows[record.run_id] = run_row(record, stats)
        ledger.add(record)
        if record.failure is not None and record.failure.kind == ACCOUNTING_KIND:
            failed_accounting[record.run_id] = record
        else:
            failed_accounting.pop(record.run_id, None)
        keep = False
        if record.runtime not in versions_of and (record.result or {}).get("versions"):
            versions_of.add(record.runtime)
            keep = True
        if record.ok and first_ok is None:
            first_ok, keep = number, True
        if record.ok and with_samples is None and samples_file(root, record.samples_path)[0] is not None:
            with_samples, keep = number, True
        if trace_run is not None and record.run_id == trace_run:  # the latest wins: a few records at most
            keep = True
        if keep:
            shown[number] = record
    return JournalTables(_frame(rows), problems, [shown[n] for n in sorted(shown)],
                         list(failed_accounting.values()), ledger)


def _with_latency_stats(lines: Iterator[tuple[int, RunRecord]], batch: int = 2048
                        ) -> Iterator[tuple[int, RunRecord, tuple[float, float, float, float] | None]]:
    """(number, record, its latency stats or None), in order: the stats of a batch of records computed a few
    calls at a time (one per number of iterations) instead of one numpy call per run (200,000 of them)."""
    pending: list[tuple[int, RunRecord]] = []
    for item in lines:
        pending.append(item)
        if len(pending) == batch:
            yield from _batch_stats(pending)
            pending = []
    yield from _batch_stats(pending)


def _batch_stats(pending: list[tuple[int, RunRecord]]) -> Iterator[tuple[int, RunRecord, Any]]:
    arrays = [_latencies_ms(record) if record.ok else None for _, record in pending]
    stats: list[Any] = [None] * len(pending)
    by_size: dict[int, list[int]] = {}
    for i, latencies in enumerate(arrays):
        if latencies is not None and latencies.size:
            by_size.setdefault(latencies.size, []).append(i)
    for members in by_size.values():
        for i, values in zip(members, latency_stats(np.stack([arrays[i] for i in members])).tolist()):
            stats[i] = tuple(values)
    for (number, record), figures in zip(pending, stats):
        yield number, record, figures


def skipped_table(plan: dict[str, Any]) -> pl.DataFrame:
    rows = [{**s["cell"], "reason": s["reason"]} for s in plan.get("skipped", [])]
    schema = {"model": pl.String, "batch_size": pl.Int64, "runtime": pl.String, "precision": pl.String, "reason": pl.String}
    return pl.DataFrame(rows, schema=schema)


def cell_summary(runs: pl.DataFrame) -> pl.DataFrame:
    """Per cell: runs ok/failed, median latency, throughput and energy per inference over repetitions."""
    if runs.is_empty():
        return runs
    keys = ["model", "batch_size", "runtime", "precision"]
    return (
        runs.group_by(keys, maintain_order=True)
        .agg(
            pl.len().alias("runs"),
            (pl.col("status") == "ok").sum().alias("ok"),
            (pl.col("status") != "ok").sum().alias("failed"),
            pl.col("latency_p50_ms").median().alias("latency_p50_ms"),
            pl.col("throughput_per_s").median().alias("throughput_per_s"),
            pl.col("j_per_inference").median().alias("j_per_inference"),
            pl.col("energy_status").first().alias("energy_status"),
        )
        .sort(keys)
    )


def write_tables(tables_dir: Path, records: list[RunRecord], plan: dict[str, Any],
                 runs: pl.DataFrame | None = None) -> dict[str, Path]:
    """runs: the runs table when the caller already has it (read_runs), instead of building it from records."""
    tables_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, frame in (("runs", runs_table(records) if runs is None else runs), ("skipped", skipped_table(plan))):
        frame = frame if not frame.is_empty() or name == "skipped" else pl.DataFrame(schema=EMPTY_RUNS_SCHEMA)
        for suffix, write in (("parquet", frame.write_parquet), ("csv", frame.write_csv)):
            path = tables_dir / f"{name}.{suffix}"
            tmp = path.with_name(f".{path.name}.tmp")
            write(tmp)
            tmp.replace(path)
            written[f"{name}.{suffix}"] = path
    return written
