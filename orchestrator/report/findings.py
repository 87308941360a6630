"""The few sentences printed at the end of a sweep and heading the report: winners and the energy-time link."""
from __future__ import annotations

import polars as pl

from orchestrator.report.figures import runtime_label

_UNITS = {"latency": "ms p50", "energy": "J/inference"}
# A generate call's cell: ranked on its time per output token (analysis/best.py), its energy per request (N new
# tokens of each of B sequences).
_REQUEST_UNITS = {"latency": "ms per output token (TPOT)", "energy": "J/request"}


def _winner(row: dict, generative: bool = False) -> str:
    value = f"{row['median']:.4g} {(_REQUEST_UNITS if generative else _UNITS).get(row['objective'], '')}"
    runner = (f"; next {runtime_label(row['runner_up'])} {row['runner_up_median']:.4g}"
              if row["runner_up"] and row["runner_up_median"] is not None else "")
    verdict = {"best": "best (significant)", "tie": f"tie with {row['tied_with']}",
               "untested": "lowest, untested: too few runs", "only runtime": "only runtime"}[row["verdict"]]
    return f"{runtime_label(row['best'])} {value}{runner} [{verdict}]"


def top_findings(best: pl.DataFrame, correlations: pl.DataFrame, energy_note: str | None,
                 generative: frozenset[tuple] = frozenset()) -> list[str]:
    """generative: the (model, batch size, precision) cells of generate calls, whose figures are per request."""
    lines = []
    for objective in ("latency", "energy"):
        rows = best.filter(pl.col("objective") == objective) if not best.is_empty() else best
        if rows.is_empty():
            continue
        if rows["best"].drop_nulls().is_empty():
            if objective == "energy" and energy_note:
                continue  # said once, below
            lines.append(f"{objective}: no figures ({rows['note'][0]})")
            continue
        for row in rows.iter_rows(named=True):
            if row["best"] is None:
                continue
            # The precision is part of the cell: fp32 and int8 of one model and batch have a winner each.
            cell = (row["model"], row["batch_size"], row["precision"])
            lines.append(f"{objective}, {row['model']} bs{row['batch_size']} {row['precision']}: "
                         f"{_winner(row, cell in generative)}")
    if not correlations.is_empty() and not energy_note:
        overall = correlations.filter((pl.col("scope") == "all cells") & (pl.col("energy") == "j_per_inference"))
        if overall.height:
            c = overall.row(0, named=True)
            lines.append(f"energy vs time over {c['n']} cells: Spearman rho {c['spearman_rho']:.3f} "
                         f"(p {c['spearman_p']:.2g}), Pearson r {c['pearson_r']:.3f}" if c["spearman_rho"] is not None
                         else f"energy vs time: not computed ({c['note']})")
    return lines  # no energy and why: a caveat of the whole host, said once above the findings (host_caveats.py)


def no_runs_finding(plan: dict) -> str:
    """What a report without a single run says instead of findings: why there is none."""
    planned, skipped = len(plan.get("runs") or []), len(plan.get("skipped") or [])
    if not planned:
        return (f"no runs: all {skipped} of the sweep's cell(s) were skipped on this host, so nothing was "
                "measured; the reasons are under 'Failed and skipped' (tables/skipped)")
    return (f"no runs recorded: the plan has {planned} run(s) and the journal none (the sweep stopped before its "
            "first run ended; running the same sweep with the same --out resumes it)")


def cpu_fallback_findings(runs: pl.DataFrame, shown: int = 5) -> list[str]:
    """A warning when an ONNX Runtime GPU run had graph nodes on the CPU provider, and a note where that is unknown."""
    if runs.is_empty() or "cpu_fallback_nodes" not in runs.columns:
        return []
    gpu = runs.filter(pl.col("runtime").str.starts_with("onnxruntime/") & pl.col("provider").is_in(["cuda", "tensorrt"])
                      & (pl.col("status") == "ok"))
    nodes, ops = pl.col("cpu_fallback_nodes").cast(pl.Int64), pl.col("cpu_fallback_ops").cast(pl.String)
    lines = []
    fell = gpu.filter(nodes.fill_null(0) > 0)
    if fell.height:
        cells = (fell.group_by("runtime", "model", "batch_size", maintain_order=True)
                 .agg(nodes.max().alias("nodes"), ops.first().alias("ops")).sort("runtime", "model", "batch_size"))
        parts = [f"{c['runtime']} {c['model']} bs{c['batch_size']}: {c['nodes']} node(s)"
                 + (f" ({c['ops']})" if c["ops"] else "") for c in cells.head(shown).iter_rows(named=True)]
        lines.append(f"warning: {fell.height} ONNX Runtime GPU run(s) had graph nodes on the CPU provider, so their "
                     "latency and energy are partly a CPU measurement (tables/runs cpu_fallback_nodes, "
                     f"cpu_fallback_ops): {'; '.join(parts)}{' ...' if cells.height > shown else ''}; provider option "
                     f"\"session.disable_cpu_ep_fallback\" = \"1\" refuses such runs")
    unknown = gpu.filter(ops.str.starts_with("unknown"))
    if unknown.height:
        lines.append(f"note: node placement unknown for {unknown.height} ONNX Runtime GPU run(s) "
                     f"({unknown['cpu_fallback_ops'].cast(pl.String)[0]})")
    return lines


def cuda_fallback_findings(runs: pl.DataFrame, shown: int = 5) -> list[str]:
    """A warning when an ONNX Runtime TensorRT run had graph nodes that TensorRT did not take and the CUDA EP ran
    (the provider chain is TensorRT -> CUDA -> CPU): that part of the run is not a TensorRT measurement."""
    if runs.is_empty() or "cuda_fallback_nodes" not in runs.columns:
        return []
    nodes, ops = pl.col("cuda_fallback_nodes").cast(pl.Int64), pl.col("cuda_fallback_ops").cast(pl.String)
    fell = runs.filter(pl.col("runtime").str.starts_with("onnxruntime/") & (pl.col("provider") == "tensorrt")
                       & (pl.col("status") == "ok") & (nodes.fill_null(0) > 0))
    if fell.is_empty():
        return []
    cells = (fell.group_by("runtime", "model", "batch_size", "precision", maintain_order=True)
             .agg(nodes.max().alias("nodes"), ops.first().alias("ops"))
             .sort("runtime", "model", "batch_size", "precision"))
    parts = [f"{c['runtime']} {c['model']} bs{c['batch_size']} {c['precision']}: {c['nodes']} node(s)"
             + (f" ({c['ops']})" if c["ops"] else "") for c in cells.head(shown).iter_rows(named=True)]
    return [f"warning: {fell.height} ONNX Runtime TensorRT run(s) had graph nodes that TensorRT did not take and "
            "the CUDA execution provider ran, so their latency and energy are partly a CUDA-EP measurement "
            f"(tables/runs cuda_fallback_nodes, cuda_fallback_ops, placement_verdict): {'; '.join(parts)}"
            f"{' ...' if cells.height > shown else ''}"]


def compile_findings(runs: pl.DataFrame, shown: int = 5) -> list[str]:
    """A warning when a compiled runtime (torch.compile) compiled inside its measured window: its latencies (and
    energy) then include a compilation, which greenrt records and never hides."""
    if runs.is_empty() or "compiles_in_window" not in runs.columns:
        return []
    compiled = runs.filter(pl.col("compiles_in_window").cast(pl.Int64).fill_null(0) > 0)
    if compiled.is_empty():
        return []
    cells = (compiled.group_by("runtime", "model", "batch_size", maintain_order=True)
             .agg(pl.col("compiles_in_window").cast(pl.Int64).sum().alias("compiles"))
             .sort("runtime", "model", "batch_size"))
    parts = [f"{c['runtime']} {c['model']} bs{c['batch_size']}: {c['compiles']} compile(s)"
             for c in cells.head(shown).iter_rows(named=True)]
    return [f"warning: {compiled.height} run(s) compiled inside their measured window, so their latency and energy "
            f"include a compilation (tables/runs compiles_in_window; the record's result.runtime_facts.compiles): "
            f"{'; '.join(parts)}{' ...' if cells.height > shown else ''}"]
