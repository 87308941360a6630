"""Each runner against the benchmark tool its runtime's wheel ships, on the same model file, interleaved (issue 23).

    .venv/bin/python bench/vendor_tools.py --out bench/out/vendor-tools.json

For every runtime environment whose wheel installs a benchmark tool (TOOLS), and each model at batch 1:
  - the model file is the artifact greenrt measures (orchestrator.execution.artifacts.ArtifactCache, shared cache);
  - greenrt's side is the runner's adapter driven by runners.loop.measure (bench/overhead.loaded_cell), loaded once
    in a process of the runtime's environment (`vendor_tools.py serve`) that measures a segment of n inferences
    when asked and idles otherwise;
  - the tool is started as shipped (its console script in the environment's bin/) for the same n inferences, with
    the settings the runner's compiled model settled on given explicitly (threads, streams, hint, pinning,
    precision), and what the tool's compiled model then reports is recorded beside the runner's;
  - pairs alternate their order (runner first, then tool first), so drift of the machine -- shared here by other
    work -- touches both sides alike; ratio = the runner's statistic / the tool's, per pair: its median and range.
The statistic is the one the tool reports: benchmark_app and litert-benchmark a median latency, onnxruntime_test
only a mean over its whole loop (its first, cold, inference included), so the runner's mean is compared with it.
Environments whose wheel ships no tool are listed with what was looked for (NO_TOOL).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("mobilenet_v2", "resnet50")
MIN_INFERENCES = 5  # per segment: a slow cell on a busy machine still fits the bench's few minutes


@dataclass(frozen=True)
class VendorTool:
    environment: str
    executable: str  # the console script the wheel installs into the environment's bin/
    runtime: str  # greenrt's runner compared with it
    statistic: str  # what the tool reports per run: "median" or "mean" latency
    fixed_threads: bool  # the tool takes no "runtime decides": both sides are given os.cpu_count() threads


TOOLS = (
    VendorTool("openvino", "benchmark_app", "openvino/onnx-from-torch/cpu", "median", False),
    VendorTool("litert", "litert-benchmark", "litert/tflite-from-tensorflow/cpu", "median", True),
    VendorTool("onnxruntime", "onnxruntime_test", "onnxruntime/onnx-from-torch/cpu", "mean", False),
)
# Environments without a tool, each with what was looked for (the search itself runs too: tool_files()).
NO_TOOL = {
    "onnxruntime": "onnxruntime_perf_test is a C++ binary of ONNX Runtime's source build, not in the PyPI wheel "
                   "(searched bin/ and site-packages); its wheel's tool is onnxruntime_test (compared above)",
    "tensorflow": "TensorFlow's benchmark_model is a Bazel target of the source tree, not in the wheel (searched bin/ "
                  "and site-packages); LiteRT's litert-benchmark (compared above) is the tool for the .tflite path",
    "torch": "torch.utils.benchmark is a library (Timer around a Python statement), not a tool that loads a model "
             "file: timing greenrt's torch model with it is a bare loop around the same call, which "
             "bench/overhead.py already compares with the runner (the torch rows of the overhead table)",
    "mxnet": "MXNet's wheel installs no benchmark tool (bin/ and site-packages searched)",
}
SEARCHED = ("benchmark_app", "benchmark_model", "litert-benchmark", "onnxruntime_perf_test", "onnxruntime_test")


def tool_files(env_root: Path) -> list[str]:
    """Files named like a benchmark tool in an environment's bin/ and site-packages (the evidence behind NO_TOOL)."""
    found = [p.name for p in (env_root / "bin").glob("*") if p.name in SEARCHED]
    for site in env_root.glob("lib/python*/site-packages"):
        found += [str(p.relative_to(site)) for name in ("benchmark_model*", "onnxruntime_perf_test*")
                  for p in site.rglob(name)]
    return sorted(found)


# ---- in the runtime's environment: greenrt's side ---------------------------------------------------------------

def serve(args: argparse.Namespace) -> int:
    """Load the runner's adapter once; then for each line n on stdin, measure n inferences and print the figures."""
    for path in (ROOT, *([Path(args.src)] if args.src else [])):  # --src: the runner of another checkout
        sys.path.insert(0, str(path))
    sys.path.insert(0, str(ROOT / "bench"))
    from overhead import loaded_cell
    from runners.loop import measure

    artifact = Path(args.artifact)
    with loaded_cell(args.runtime, args.model, 1, artifact, args.threads) as (adapter, run, sync, prepared, per_iter):
        print(json.dumps({"per_iteration_s": per_iter, "facts": adapter.runtime_facts(),
                          "threads": adapter.n_threads, "versions": adapter.versions()}), flush=True)
        for line in sys.stdin:
            word, n = line.split()
            if word == "probe":  # not the runner's loop: what the Python call adds to the runtime's own timer
                print(json.dumps(own_timer_probe(run, prepared, int(n))), flush=True)
                continue
            cpu0 = time.process_time_ns()  # all the process's threads: the work, whatever share of the CPUs it got
            _, _, latencies, _ = measure(run, sync, prepared, int(n), 0.0, None)
            print(json.dumps({"median_ms": statistics.median(latencies) / 1e6,
                              "mean_ms": statistics.fmean(latencies) / 1e6,
                              "cpu_ms": (time.process_time_ns() - cpu0) / int(n) / 1e6}), flush=True)
    return 0


def own_timer_probe(run, prepared, n: int) -> dict:
    """Per inference, the wall clock around the runner's call and the runtime's own timer of it, where the
    prepared object has one (OpenVINO's InferRequest.latency, the figure benchmark_app reports); medians, ms."""
    if not hasattr(prepared, "latency"):
        return {}
    wall, own = [], []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        run(prepared)
        wall.append((time.perf_counter_ns() - t0) / 1e6)
        own.append(prepared.latency)
    return {"wall_median_ms": statistics.median(wall), "own_median_ms": statistics.median(own),
            "call_overhead_median_ms": statistics.median(w - o for w, o in zip(wall, own))}


# ---- the tools, as shipped --------------------------------------------------------------------------------------

def openvino_settings(compiled: dict) -> dict[str, str]:
    """benchmark_app's -load_config for the CPU: what the runner's compiled model reports it uses (not defaults)."""
    return {"PERFORMANCE_HINT": str(compiled["performance_hint"]), "NUM_STREAMS": str(compiled["num_streams"]),
            "INFERENCE_NUM_THREADS": str(compiled["inference_num_threads"]),
            "ENABLE_CPU_PINNING": "YES" if compiled["enable_cpu_pinning"] else "NO",
            "INFERENCE_PRECISION_HINT": str(compiled["inference_precision_hint"])}


def run_benchmark_app(exe: Path, model: Path, shape: str, n: int, runner: dict, folder: Path) -> dict:
    settings = openvino_settings(runner["facts"]["compiled"])
    (folder / "config.json").write_text(json.dumps({"CPU": settings}))
    argv = [str(exe), "-m", str(model), "-d", "CPU", "-api", "sync", "-niter", str(n), "-shape", shape,
            "-load_config", str(folder / "config.json"), "-report_type", "no_counters", "-report_folder", str(folder)]
    out = _run(argv)
    with open(folder / "benchmark_report.csv") as fh:
        rows = {row[0]: row[1] for row in csv.reader(fh, delimiter=";") if len(row) >= 2}
    # What the tool's compiled model reports (its step 8), to check against the runner's.
    reported = dict(re.findall(r"\[ INFO \]\s+(NUM_STREAMS|INFERENCE_NUM_THREADS|PERFORMANCE_HINT|ENABLE_CPU_PINNING|"
                               r"INFERENCE_PRECISION_HINT): (.+)", out))
    return {"median_ms": float(rows["latency (ms)"]), "mean_ms": float(rows["avg latency"]),
            "argv": argv[1:], "config": settings, "reported": reported}


def run_litert_benchmark(exe: Path, model: Path, shape: str, n: int, runner: dict, folder: Path) -> dict:
    argv = [str(exe), "--model", str(model), "--num_runs", str(n), "--num_threads", str(runner["threads"]),
            "--result_json", str(folder / "result.json")]
    _run(argv)
    result = json.loads((folder / "result.json").read_text())
    return {"median_ms": result["latency"]["median_ms"], "mean_ms": result["latency"]["avg_ms"], "argv": argv[1:],
            "reported": {"num_threads": result["num_threads"], "accelerators": result["accelerators"],
                         "fully_accelerated": result["fully_accelerated"]}}


def run_onnxruntime_test(exe: Path, model: Path, shape: str, n: int, runner: dict, folder: Path) -> dict:
    argv = [str(exe), str(model), str(n)]
    found = re.search(r"avg latency: ([0-9.e+-]+) ms", _run(argv))
    if not found:
        raise RuntimeError(f"{exe.name} printed no average latency")
    return {"mean_ms": float(found.group(1)), "argv": argv[1:], "reported": {}}


RUNNERS = {"benchmark_app": run_benchmark_app, "litert-benchmark": run_litert_benchmark,
           "onnxruntime_test": run_onnxruntime_test}


def _run(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(argv[0]).name} exited {proc.returncode}: {(proc.stdout + proc.stderr)[-800:]}")
    return proc.stdout + proc.stderr


# ---- the host's driver ----------------------------------------------------------------------------------------

class RunnerProcess:
    """`vendor_tools.py serve` in the runtime's environment: loaded once, measuring a segment when asked."""

    def __init__(self, python: Path, tool: VendorTool, model: str, artifact: Path, src: str | None) -> None:
        argv = [str(python), str(Path(__file__).resolve()), "serve", "--runtime", tool.runtime, "--model", model,
                "--artifact", str(artifact), *(["--src", src] if src else []),
                *(["--threads", str(os.cpu_count())] if tool.fixed_threads else [])]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the runner's process exited {self.proc.wait()} before answering")
        return json.loads(line)

    def segment(self, n: int) -> dict:
        self.proc.stdin.write(f"measure {n}\n")
        self.proc.stdin.flush()
        return self._read()

    def probe(self, n: int) -> dict:
        self.proc.stdin.write(f"probe {n}\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def input_shape(model: str) -> str:
    from models.registry import get_model

    spec = get_model(model)
    options = spec.resolve_options({})
    return ",".join(f"{i.name}{list(spec.input_shape(i, 1, options))}".replace(" ", "") for i in spec.inputs)


def compare(tool: VendorTool, model: str, artifact: Path, python: Path, pairs: int, seconds: float,
            src: str | None) -> dict:
    exe = python.parent / tool.executable
    runner = RunnerProcess(python, tool, model, artifact, src)
    n = max(MIN_INFERENCES, round(seconds / max(runner.ready["per_iteration_s"], 1e-6)))
    rows, tool_last = [], {}
    try:
        with tempfile.TemporaryDirectory(prefix="greenrt-vendor-") as tmp:
            for i in range(pairs):
                figures = {}
                for side in (("runner", "tool") if i % 2 == 0 else ("tool", "runner")):
                    if side == "runner":
                        figures[side] = runner.segment(n)
                    else:
                        folder = Path(tmp) / f"pair{i}"
                        folder.mkdir()
                        figures[side] = tool_last = RUNNERS[tool.executable](exe, artifact, input_shape(model), n,
                                                                             runner.ready, folder)
                key = f"{tool.statistic}_ms"
                rows.append({"runner_ms": figures["runner"][key], "tool_ms": figures["tool"][key],
                             "ratio": figures["runner"][key] / figures["tool"][key], "runner_first": i % 2 == 0})
                print(f"  {tool.executable} {model} pair {i + 1}/{pairs}: runner {rows[-1]['runner_ms']:.3f} ms, "
                      f"tool {rows[-1]['tool_ms']:.3f} ms, ratio {rows[-1]['ratio']:.3f}", flush=True)
        probe = runner.probe(n)
    finally:
        runner.close()
    ratios = [r["ratio"] for r in rows]
    return {"tool": tool.executable, "environment": tool.environment, "runtime": tool.runtime, "model": model,
            "batch_size": 1, "artifact": artifact.name, "statistic": tool.statistic, "iterations": n, "pairs": rows,
            "runner_ms": statistics.median(r["runner_ms"] for r in rows),
            "tool_ms": statistics.median(r["tool_ms"] for r in rows),
            "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
            "own_timer_probe": probe, "runner_threads": runner.ready["threads"], "runner_facts": runner.ready["facts"],
            "versions": runner.ready["versions"],
            "tool_argv": [a if not a.startswith("/") else Path(a).name for a in tool_last.get("argv", [])],
            "tool_config": tool_last.get("config"), "tool_reported": tool_last.get("reported")}


def runner_against_itself(tool: VendorTool, model: str, artifact: Path, python: Path, pairs: int, seconds: float,
                          src: str) -> dict:
    """The runner of checkout `src` against this checkout's, both loaded at once and alternated segment by segment
    (no tool start-up between them, so far less drift than runner against tool): the effect of a fix alone."""
    old, new = RunnerProcess(python, tool, model, artifact, src), RunnerProcess(python, tool, model, artifact, None)
    n = max(MIN_INFERENCES, round(seconds / max(new.ready["per_iteration_s"], 1e-6)))
    rows = []
    try:
        for i in range(pairs):
            figures = {}
            for side in (("before", "now") if i % 2 == 0 else ("now", "before")):
                figures[side] = (old if side == "before" else new).segment(n)
            rows.append({"before": figures["before"]["median_ms"], "now": figures["now"]["median_ms"],
                         "ratio": figures["now"]["median_ms"] / figures["before"]["median_ms"],
                         "before_cpu": figures["before"]["cpu_ms"], "now_cpu": figures["now"]["cpu_ms"],
                         "cpu_ratio": figures["now"]["cpu_ms"] / figures["before"]["cpu_ms"]})
    finally:
        old.close()
        new.close()
    ratios, cpu_ratios = [r["ratio"] for r in rows], [r["cpu_ratio"] for r in rows]
    return {"runtime": tool.runtime, "model": model, "iterations": n, "pairs": rows,
            "before_ms": statistics.median(r["before"] for r in rows),
            "now_ms": statistics.median(r["now"] for r in rows), "ratio": statistics.median(ratios),
            "ratio_min": min(ratios), "ratio_max": max(ratios),
            "before_cpu_ms": statistics.median(r["before_cpu"] for r in rows),
            "now_cpu_ms": statistics.median(r["now_cpu"] for r in rows), "cpu_ratio": statistics.median(cpu_ratios),
            "cpu_ratio_min": min(cpu_ratios), "cpu_ratio_max": max(cpu_ratios)}


def host(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))
    from orchestrator.execution.artifacts import ArtifactCache
    from orchestrator.execution.launchers.local import LocalLauncher
    from orchestrator.planning.runtimes import parse_runtime
    from orchestrator.provisioning.environments import EnvironmentManager
    from runners.protocol import Weights

    environments = EnvironmentManager()
    artifacts = ArtifactCache(LocalLauncher(environments))
    report = {"pairs": args.pairs, "seconds_per_segment": args.seconds, "min_inferences": MIN_INFERENCES,
              "cpu_count": os.cpu_count(),
              "label": args.label, "cells": [], "unavailable": [], "no_tool": []}
    started, load_at_start = time.monotonic(), list(os.getloadavg())
    for tool in TOOLS:
        if args.tools and tool.environment not in args.tools:
            continue
        state = environments.state(tool.environment)
        exe = state.python.parent / tool.executable
        if state.state != "ready" or not exe.exists():
            why = state.detail if state.state != "ready" else f"{tool.executable} is not in {tool.environment}'s bin/"
            report["unavailable"].append({"tool": tool.executable, "environment": tool.environment, "reason": why})
            continue
        for model in args.models:
            artifact = artifacts.ensure(parse_runtime(tool.runtime), model, {}, Weights(), None)
            if args.against_itself:
                print(f"{tool.runtime} of {args.src} against this checkout's, {model} ...", flush=True)
                report["cells"].append(runner_against_itself(tool, model, Path(artifact.path), state.python,
                                                             args.pairs, args.seconds, args.src))
                continue
            print(f"{tool.executable} against {tool.runtime}, {model} ({Path(artifact.path).name}) ...", flush=True)
            report["cells"].append(compare(tool, model, Path(artifact.path), state.python, args.pairs, args.seconds,
                                           args.src))
    for environment, why in NO_TOOL.items():
        state = environments.state(environment)
        found = tool_files(state.python.parent.parent) if state.state == "ready" else []
        report["no_tool"].append({"environment": environment, "reason": why, "found": found,
                                  "searched": state.state == "ready"})
    report["bench_seconds"] = time.monotonic() - started
    report["load_average"] = {"start": load_at_start, "end": list(os.getloadavg())}  # how shared the machine was
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out} ({report['bench_seconds']:.0f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    inner = sub.add_parser("serve", help="(in a runtime's environment) greenrt's side of the comparison")
    inner.add_argument("--runtime", required=True)
    inner.add_argument("--model", required=True)
    inner.add_argument("--artifact", required=True)
    inner.add_argument("--threads", type=int)
    inner.add_argument("--src", help="import runners/ and models/ from this checkout instead")
    parser.add_argument("--out", help="JSON file for the results")
    parser.add_argument("--pairs", type=int, default=7, help="interleaved runner/tool pairs per cell (default 7)")
    parser.add_argument("--seconds", type=float, default=1.0, help="target seconds of inference per segment")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--tools", nargs="+", choices=sorted({t.environment for t in TOOLS}),
                        help="environments to compare (default: every one with a tool)")
    parser.add_argument("--src", help="measure the runner of this checkout (a copy of runners/ and models/)")
    parser.add_argument("--label", default="this checkout", help="what --src is, for the report")
    parser.add_argument("--against-itself", action="store_true",
                        help="no tool: the runner of --src against this checkout's, alternated in two processes")
    args = parser.parse_args(argv)
    if args.against_itself and not args.src:
        parser.error("--against-itself needs --src (the checkout to compare this one's runner with)")
    if args.command == "serve":
        return serve(args)
    if not args.out:
        parser.error("--out is required")
    return host(args)


if __name__ == "__main__":
    sys.exit(main())
