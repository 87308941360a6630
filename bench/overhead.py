"""Overhead of the shared measured loop: runners.loop vs a bare loop of the same adapter, per cell.

Runs INSIDE a framework environment:

    python bench/overhead.py --runtime torch/native/cpu --out bench/out/overhead-torch.json
    python bench/overhead.py --runtime onnxruntime/onnx-from-torch/cpu --artifact-dir DIR --out FILE.json

For each model x batch size, one adapter is loaded and the inputs prepared once; then, alternating the order in
each round to cancel drift, the same number of inferences is run by
  - the runner: runners.loop.measure (the loop every runtime is measured with), reporting the median latency, and
  - a bare loop: `for _ in range(n): run(prepared); synchronize()` timed as a whole, reporting the mean.
ratio = median over rounds of (runner's median / bare mean) of the same round, whose two segments are adjacent
in time (target <= 1.02); ratio_mean compares the runner's mean latency instead (same statistic on both sides).
On a shared 2-core VM the round-to-round drift is far larger than the loop's overhead (a few clock reads and a list
append per inference): use several rounds.

For ONNX Runtime, --artifact-dir holds <model>.onnx or <model>/model.onnx; missing ones are exported there when
torch is importable (models.torch_export).
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.inputs import make_inputs  # noqa: E402
from models.registry import get_model  # noqa: E402
from runners.adapters import create_adapter  # noqa: E402
from runners.loop import measure, warm_up  # noqa: E402
from runners.protocol import Budget, ExportRequest, RunRequest, write_json_atomic  # noqa: E402

QUICK_MODELS = ("resnet50", "mobilenet_v2", "bert-base-uncased")
QUICK_BATCH_SIZES = (1, 64)
TARGET = 1.02


def find_artifact(artifact_dir: Path, model: str) -> Path | None:
    for candidate in (artifact_dir / f"{model}.onnx", artifact_dir / model / "model.onnx"):
        if candidate.is_file():
            return candidate
    return None


def ensure_artifact(artifact_dir: Path, model: str) -> Path:
    found = find_artifact(artifact_dir, model)
    if found:
        return found
    try:
        from models.torch_export import export_onnx
    except ModuleNotFoundError as exc:
        raise SystemExit(f"no ONNX model for {model} in {artifact_dir} and torch is not importable to export one "
                         f"({exc})") from None
    target = artifact_dir / model / "model.onnx"
    print(f"exporting {model} to {target} ...", file=sys.stderr, flush=True)
    result = export_onnx(ExportRequest(framework="torch", model=model, output_path=str(target),
                                       result_path=str(target.with_suffix(".export.json"))))
    if result.status != "ok":
        raise SystemExit(f"export of {model} failed: {result.error.message}")
    return target


def bare(run, synchronize, prepared, n: int) -> float:
    """Mean seconds per inference of a bare loop timed as a whole."""
    clock = time.monotonic_ns
    synchronize()
    t0 = clock()
    for _ in range(n):
        run(prepared)
        synchronize()
    return (clock() - t0) / 1e9 / n


@contextmanager
def loaded_cell(runtime: str, model: str, batch_size: int, artifact: Path | None,
                threads: int | None) -> Iterator[tuple[Any, Any, Any, Any, float]]:
    """The runner's adapter for one cell, loaded and warmed up as a run loads it: (adapter, run, synchronize,
    prepared inputs, seconds per inference after the first). bench/vendor_tools.py measures through it too."""
    with tempfile.TemporaryDirectory() as tmp:
        request = RunRequest(run_id=f"overhead-{model}-{batch_size}", runtime=runtime, model=model,
                             batch_size=batch_size, result_path=str(Path(tmp) / "result.json"),
                             artifact_path=str(artifact) if artifact else None, threads=threads,
                             budget=Budget(warmup_iterations=1))
        adapter = create_adapter(request)
        adapter.load(request)
        inputs = make_inputs(get_model(model), batch_size, 0, request.model_options)
        with adapter.context():
            prepared = adapter.prepare(inputs)
            run, sync = adapter.run, adapter.synchronize
            n_warm, warm_s, first_s = warm_up(run, sync, prepared, 2 if batch_size == 1 else 1, 0.0)
            per_iter = warm_s / n_warm if n_warm == 1 else (warm_s - first_s) / (n_warm - 1)
            yield adapter, run, sync, prepared, per_iter
            del prepared
        del adapter


def bench_cell(runtime: str, model: str, batch_size: int, artifact: Path | None, rounds: int, seconds: float,
               threads: int | None) -> dict:
    with loaded_cell(runtime, model, batch_size, artifact, threads) as (_, run, sync, prepared, per_iter):
        n = max(2, min(2000, math.ceil(seconds / max(per_iter, 1e-6))))
        runner_medians, runner_means, bare_means = [], [], []
        for r in range(rounds):
            order = ("runner", "bare") if r % 2 == 0 else ("bare", "runner")
            for what in order:
                if what == "runner":
                    _, _, latencies, _ = measure(run, sync, prepared, n, 0.0, None)
                    runner_medians.append(statistics.median(latencies) / 1e9)
                    runner_means.append(statistics.fmean(latencies) / 1e9)
                else:
                    bare_means.append(bare(run, sync, prepared, n))
    runner_med, runner_mean, bare_mean = (statistics.median(x) for x in (runner_medians, runner_means, bare_means))
    ratios = [r / b for r, b in zip(runner_medians, bare_means)]
    ratios_mean = [r / b for r, b in zip(runner_means, bare_means)]
    return {
        "model": model, "batch_size": batch_size, "iterations_per_round": n, "rounds": rounds,
        "runner_median_ms": runner_med * 1e3, "runner_mean_ms": runner_mean * 1e3, "bare_mean_ms": bare_mean * 1e3,
        "ratio": statistics.median(ratios), "ratio_mean": statistics.median(ratios_mean), "round_ratios": ratios,
        "rounds_ms": {"runner_median": [x * 1e3 for x in runner_medians], "bare_mean": [x * 1e3 for x in bare_means]},
    }


def loop_cost_ns(iterations: int = 200_000, repeats: int = 5) -> dict[str, float]:
    """The loop's own cost per inference, free of framework noise: the runner loop and the bare loop on a no-op.

    Best of several repeats for each, so that a preemption of this VM does not pass for overhead.
    """
    def noop(_):
        return None

    def nosync():
        return None

    runner_ns, bare_ns = [], []
    for _ in range(repeats):
        start, end, _, _ = measure(noop, nosync, None, iterations, 0.0, None)
        runner_ns.append((end - start) / iterations)
        bare_ns.append(bare(noop, nosync, None, iterations) * 1e9)
    return {"runner_ns_per_iteration": min(runner_ns), "bare_ns_per_iteration": min(bare_ns),
            "overhead_ns_per_iteration": min(runner_ns) - min(bare_ns), "iterations": iterations, "repeats": repeats}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", required=True, help="e.g. torch/native/cpu, onnxruntime/onnx-from-torch/cpu")
    parser.add_argument("--out", help="JSON file for the results (required unless --export-only)")
    parser.add_argument("--models", nargs="+", default=list(QUICK_MODELS))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=list(QUICK_BATCH_SIZES))
    parser.add_argument("--artifact-dir", help="ONNX models: <model>.onnx or <model>/model.onnx (exported if missing)")
    parser.add_argument("--rounds", type=int, default=None, help="alternations per cell (default 8 at batch 1, 3 above)")
    parser.add_argument("--seconds", type=float, default=0.5,
                        help="target seconds per measurement segment (at least 2 inferences each)")
    parser.add_argument("--seconds-batched", type=float, default=2.0,
                        help="the same for batch sizes above 1 (at least 2 inferences each)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--export-only", action="store_true",
                        help="only export the missing ONNX models into --artifact-dir (run where torch is installed)")
    args = parser.parse_args(argv)

    needs_artifact = args.runtime.split("/")[0] == "onnxruntime"
    if needs_artifact and not args.artifact_dir:
        parser.error("an onnxruntime runtime needs --artifact-dir")
    if not args.out and not args.export_only:
        parser.error("--out is required (unless --export-only)")
    if args.export_only:
        for model in args.models:
            print(ensure_artifact(Path(args.artifact_dir), model))
        return 0
    cells, versions = [], {}
    for model in args.models:
        get_model(model)
        artifact = ensure_artifact(Path(args.artifact_dir), model) if needs_artifact else None
        for bs in args.batch_sizes:
            rounds = args.rounds or (8 if bs == 1 else 3)
            t0 = time.monotonic()
            seconds = args.seconds if bs == 1 else args.seconds_batched
            cell = bench_cell(args.runtime, model, bs, artifact, rounds, seconds, args.threads)
            cell["bench_seconds"] = time.monotonic() - t0
            cells.append(cell)
            print(f"{model:18s} bs{bs:<3d} runner median {cell['runner_median_ms']:9.3f} ms  bare mean "
                  f"{cell['bare_mean_ms']:9.3f} ms  ratio {cell['ratio']:.4f}  ratio_mean {cell['ratio_mean']:.4f}  "
                  f"(n={cell['iterations_per_round']} x {rounds}, {cell['bench_seconds']:.0f} s)", flush=True)
    from runners.cli import installed_versions

    versions = installed_versions()
    cost = loop_cost_ns()
    for cell in cells:
        cell["loop_overhead_fraction"] = cost["overhead_ns_per_iteration"] / (cell["bare_mean_ms"] * 1e6)
    report = {"runtime": args.runtime, "target_ratio": TARGET, "versions": versions, "threads": args.threads,
              "loop_cost": cost, "cells": cells, "all_within_target": all(c["ratio"] <= TARGET for c in cells)}
    write_json_atomic(args.out, report)
    print(f"wrote {args.out}; all within {TARGET}: {report['all_within_target']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
