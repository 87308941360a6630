"""How greenrt's results side scales: report, resume, status and merge at 2,000, 20,000 and 200,000 runs.

    python bench/scale.py [--sizes 2000 20000 200000] [--repeats 3] [--commands resume status merge report]
                          [--src DIR] [--out bench/out/scale.json]

The results directories are synthetic in number, real in shape: a tiny real sweep (MobileNetV2 batch 1 in
PyTorch and in ONNX Runtime, through the local launcher, on a synthetic powercap tree drawing constant power) is
measured once into bench/out/scale/template/; its records and sample files are then copied onto every run of a
quick-like plan (3 models x 6 CPU runtimes x B batch sizes x R repetitions, planned by greenrt's own planner so
that `greenrt sweep` would resume it), one sample file per run (hard links). A sharded copy (64 shards) serves the
merge.

Each command runs in its own subprocess, timed on the wall clock, its peak RSS read from the child's rusage
(os.wait4). Resume and status keep an index of the journal lines they have validated (runs.jsonl.index): the first
repeat of each starts without one (it is removed first) and is reported apart ("first"); the median is of the
repeats after it, which find the index in place, as a resume after a report or a status does. Code without an
index reads the whole journal every time. With --src, the same commands run in another source tree (its working directory and PYTHONPATH), e.g.
the code of an older commit: `git archive <commit> orchestrator runners models | tar -x -C bench/out/before-src`,
then `--src bench/out/before-src --label before --out bench/out/scale-before.json`; the children print which tree
they imported, and the benchmark refuses a child that imported another.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
VENV_BIN = Path(sys.executable).parent
MODELS = ["resnet50", "mobilenet_v2", "bert-base-uncased"]
RUNTIMES = ["torch/native/cpu", "tensorflow/native/cpu", "mxnet/native/cpu", "onnxruntime/onnx-from-torch/cpu",
            "onnxruntime/onnx-from-tensorflow/cpu", "onnxruntime/onnx-from-mxnet/cpu"]
TEMPLATE_RUNTIMES = ["torch/native/cpu", "onnxruntime/onnx-from-torch/cpu"]
SHARDS = 64
INDEX = "runs.jsonl.index"  # the index of validated journal lines (orchestrator/results/journal_index.py)
INDEXED = ("resume", "status")
# Targets of issue 16 (seconds, GiB) per size; None: no target at that size, only the growth.
TARGETS = {"report": {20_000: (15, 1), 200_000: (120, 4)}, "resume": {200_000: (5, None)},
           "merge": {200_000: (60, None)}}


def _load_test_helper(name: str) -> Any:
    # tests/ is not a package; the benchmark builds the same synthetic powercap tree the tests do (tests/host/testkit/).
    testkit = REPO / "tests" / "host" / "testkit"
    spec = importlib.util.spec_from_file_location(f"greenrt_test_{name}", testkit / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def template(folder: Path) -> Path:
    """A real tiny sweep with energy (synthetic RAPL), measured once and kept."""
    results = folder / "template"
    if (results / "runs.jsonl").exists() and (results / "tables").exists():
        return results
    shutil.rmtree(folder / "template", ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "template.toml"
    config.write_text("\n".join([
        'name = "scale-template"', 'models = ["mobilenet_v2"]', "batch_sizes = [1]",
        f"runtimes = {json.dumps(TEMPLATE_RUNTIMES)}", "repetitions = 1", "[warmup]", "iterations = 1",
        "[measure]", "min_iterations = 3", "min_seconds = 1.0", "[baseline]", "seconds = 0.5",
        "[cooldown]", "seconds = 0.0"]) + "\n")
    powercap = _load_test_helper("powercap")
    tree = powercap.make_powercap_tree(folder / "template-powercap", packages=2, dram=True)
    # A host drawing 20 W per package and 5 W per DRAM zone.
    with powercap.ConstantDraw(tree, {"package-0": 20.0, "package-1": 20.0, "dram-0": 5.0, "dram-1": 5.0}):
        done = subprocess.run([str(VENV_BIN / "greenrt"), "sweep", "--config", str(config), "--out", str(results),
                               "--launcher", "local", "--powercap-root", str(tree.root)],
                              capture_output=True, text=True, env={**os.environ, "GREENRT_LOCK_DIR": str(folder / "lock")})
    if done.returncode != 0:
        raise SystemExit(f"the template sweep failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return results


def shape_for(runs: int) -> tuple[list[int], int]:
    """Batch sizes and repetitions of a quick-like plan of about `runs` runs (repetitions are capped at 1000)."""
    cells_per_batch = len(MODELS) * len(RUNTIMES)
    batches = max(2, math.ceil(runs / (cells_per_batch * 1000)))
    return [2 ** i for i in range(batches)], max(1, round(runs / (cells_per_batch * batches)))


def scale_config(path: Path, runs: int) -> Path:
    batch_sizes, repetitions = shape_for(runs)
    path.write_text("\n".join([
        f'name = "scale-{runs}"', f"models = {json.dumps(MODELS)}", f"batch_sizes = {json.dumps(batch_sizes)}",
        f"runtimes = {json.dumps(RUNTIMES)}", f"repetitions = {repetitions}", "seed = 0",
        "[warmup]", "iterations = 1", "[measure]", "min_iterations = 3", "min_seconds = 1.0",
        "[cooldown]", "seconds = 0.0"]) + "\n")
    return path


def build(folder: Path, runs: int, source: Path) -> dict[str, Any]:
    """bench/out/scale/<runs>/ (one host) and <runs>-sharded/ (64 shards, not merged), unless already built."""
    from orchestrator.planning.config import load_config
    from orchestrator.planning.planner import HostCapabilities, plan_sweep
    from orchestrator.scheduling.sharded import write_manifest
    from orchestrator.scheduling.shards import DEFAULT_POLICY, split_runs

    config = scale_config(folder / f"scale-{runs}.toml", runs)
    plan = plan_sweep(load_config(config), HostCapabilities())
    single, sharded = folder / str(runs), folder / f"{runs}-sharded"
    info = {"runs": len(plan.runs), "config": str(config), "single": str(single), "sharded": str(sharded),
            "shards": min(SHARDS, shape_for(runs)[1])}
    marker = single / ".built"
    if marker.exists() and (sharded / ".built").exists() and marker.read_text() == plan.config_digest:
        return info
    t0 = time.perf_counter()
    for d in (single, sharded):
        shutil.rmtree(d, ignore_errors=True)
    lines = [json.loads(line) for line in (source / "runs.jsonl").read_text().splitlines() if line.strip()]
    by_framework = {r["runtime"].split("/")[0]: r for r in lines}
    samples = {r["runtime"]: source / r["samples_path"] for r in lines if r.get("samples_path")}
    plan_json = json.dumps(plan.to_dict())
    host, baseline = (source / "host.json").read_bytes(), (source / "baseline.json").read_bytes()
    for d in (single, sharded):
        (d / "samples").mkdir(parents=True)
        (d / "plan.json").write_text(plan_json)
    (single / "host.json").write_bytes(host)
    (single / "baseline.json").write_bytes(baseline)

    def record_for(run: Any) -> str:
        runtime = run.cell.runtime
        framework, model_format, provider = runtime.split("/")
        base = by_framework.get(framework) or by_framework["onnxruntime" if "onnx" in model_format else "torch"]
        record = {**base, "run_id": run.run_id, "index": run.index, "repetition": run.repetition,
                  "model": run.cell.model, "batch_size": run.cell.batch_size, "runtime": runtime,
                  "framework": framework, "model_format": model_format, "provider": provider,
                  "environment": framework, "samples_path": f"samples/{run.run_id}.parquet"}
        if record.get("result"):
            record["result"] = {**record["result"], "run_id": run.run_id, "model": run.cell.model,
                                "batch_size": run.cell.batch_size, "runtime": runtime}
        return json.dumps(record, sort_keys=True) + "\n"

    template_sample = next(iter(samples.values()))
    shard_of: dict[str, int] = {}
    count = min(SHARDS, shape_for(runs)[1])  # shards split the repetitions: a small plan has fewer than 64
    info["shards"] = count
    for i, shard_runs in enumerate(split_runs(plan, count, DEFAULT_POLICY), start=1):
        for run in shard_runs:
            shard_of[run.run_id] = i
        own = sharded / "shards" / str(i)
        own.mkdir(parents=True)
        (own / "host.json").write_bytes(host)
        (own / "baseline.json").write_bytes(baseline)
    handles = {i: open(sharded / "shards" / str(i) / "runs.jsonl", "w") for i in range(1, count + 1)}
    links = _LinkPool(folder / f"sample-pool-{runs}")
    with open(single / "runs.jsonl", "w") as journal:
        for run in plan.runs:
            line = record_for(run)
            journal.write(line)
            handles[shard_of[run.run_id]].write(line)
            sample = samples.get(run.cell.runtime, template_sample)
            for d in (single, sharded):
                links.link(sample, d / "samples" / f"{run.run_id}.parquet")
    for fh in handles.values():
        fh.close()
    write_manifest(sharded, count, DEFAULT_POLICY, list(range(1, count + 1)), config)
    for d in (single, sharded):
        (d / ".built").write_text(plan.config_digest)
    info["built_s"] = round(time.perf_counter() - t0, 1)
    return info


class _LinkPool:
    """Hard links to the template's sample files, from fresh copies of them as each copy nears the file system's
    limit of links per inode (ext4: 65,000), so 400,000 sample files cost a few inodes' worth of data."""

    MAX_LINKS = 30_000

    def __init__(self, folder: Path) -> None:
        self.folder, self.current, self.used = folder, {}, {}
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)

    def link(self, sample: Path, target: Path) -> None:
        if self.used.get(sample, self.MAX_LINKS) >= self.MAX_LINKS:
            copy = self.folder / f"{len(list(self.folder.iterdir()))}-{sample.name}"
            shutil.copyfile(sample, copy)
            self.current[sample], self.used[sample] = copy, 0
        os.link(self.current[sample], target)
        self.used[sample] += 1


RESUME = ("import sys, time; t = time.perf_counter()\n"
          "from orchestrator.planning.config import load_config\n"
          "from orchestrator.planning.planner import HostCapabilities, plan_sweep\n"
          "from orchestrator.results.store import ResultsDir\n"
          "plan = plan_sweep(load_config(sys.argv[1]), HostCapabilities())\n"
          "results = ResultsDir(sys.argv[2]); results.open_for(plan)\n"
          "recorded = results.recorded_run_ids()\n"
          "pending = [r for r in plan.runs if r.run_id not in recorded]\n"
          "print(f'{len(plan.runs)} planned, {len(pending)} pending')\n")
MERGE = ("import sys\n"
         "from orchestrator.scheduling.merge import merge_shards\n"
         "s = merge_shards(sys.argv[1]); print(f'{s.recorded} recorded, {s.missing} missing')\n")


def timed(argv: list[str], src: Path | None) -> dict[str, Any]:
    """Wall seconds and the child's peak RSS (its own rusage, not the benchmark's)."""
    # `python -m`/`-c` put the working directory first on sys.path, ahead of PYTHONPATH and of the editable
    # install's finder: the child runs in the tree it measures (with PYTHONPATH alone, --src measured this one).
    tree = src.resolve() if src else REPO
    env = {**os.environ, "PYTHONPATH": str(tree), "MPLBACKEND": "Agg"}
    load = os.getloadavg()[0]  # how busy the host was: a shared host slows every figure
    t0 = time.perf_counter()
    with open(os.devnull, "w") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.PIPE, env=env, cwd=tree)
        stderr = process.stderr.read() if process.stderr else b""
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} exited {code}:\n{stderr.decode(errors='replace')[-3000:]}")
    return {"wall_s": round(wall, 3), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "load_1m": round(load, 2)}


def check_tree(src: Path) -> None:
    """The children must import greenrt from src, not from this checkout (the editable install)."""
    if not (src / "orchestrator").is_dir():
        raise SystemExit(f"--src {src}: no greenrt source tree there (no orchestrator/)")
    done = subprocess.run([sys.executable, "-c", "import orchestrator; print(orchestrator.__file__)"], cwd=src.resolve(),
                          env={**os.environ, "PYTHONPATH": str(src.resolve())}, capture_output=True, text=True)
    imported = Path(done.stdout.strip() or "?").resolve()
    if done.returncode != 0 or not imported.is_relative_to(src.resolve()):
        raise SystemExit(f"--src {src}: the child imported greenrt from {imported}, not from {src} "
                         f"({done.stderr.strip()[-300:]})")


def measure(info: dict[str, Any], repeats: int, src: Path | None, commands: list[str]) -> dict[str, Any]:
    python = sys.executable
    single, sharded = Path(info["single"]), Path(info["sharded"])
    argv = {"report": [python, "-m", "orchestrator.cli", "report", str(single)],
            "resume": [python, "-c", RESUME, info["config"], str(single)],
            "merge": [python, "-c", MERGE, str(sharded)],
            "status": [python, "-m", "orchestrator.cli", "status", str(single)]}
    figures: dict[str, Any] = {}
    for name in commands:
        samples = []
        for repeat in range(repeats):
            if name == "merge":  # each repeat merges from the shards alone, as the first merge does
                for leftover in ("runs.jsonl", INDEX, "merge.json", "host.json", "baseline.json"):
                    (sharded / leftover).unlink(missing_ok=True)
            if repeat == 0 and name in INDEXED:  # the first reads the journal with no index (and writes one)
                (single / INDEX).unlink(missing_ok=True)
            samples.append(timed(argv[name], src))
        # Resume and status: the median of the repeats that found the index (all of them for other commands).
        steady = samples[1:] if name in INDEXED and len(samples) > 1 else samples
        walls = sorted(s["wall_s"] for s in steady)
        figures[name] = {"wall_s_median": walls[len(walls) // 2], "wall_s": [s["wall_s"] for s in samples],
                         "peak_rss_mib_max": max(s["peak_rss_mib"] for s in samples),
                         "load_1m": [s["load_1m"] for s in samples]}
        if name in INDEXED:
            figures[name]["first_wall_s"] = samples[0]["wall_s"]
        print(f"  {name} at {info['runs']} runs: median {figures[name]['wall_s_median']:.2f} s "
              f"{figures[name]['wall_s']}, peak RSS {figures[name]['peak_rss_mib_max']:.0f} MiB", flush=True)
    return figures


def growth(sizes: dict[int, dict[str, Any]], command: str) -> float | None:
    """Exponent k of time ~ runs^k between the smallest and largest size (1: linear)."""
    have = sorted(n for n, f in sizes.items() if command in f)
    if len(have) < 2:
        return None
    lo, hi = have[0], have[-1]
    return round(math.log(sizes[hi][command]["wall_s_median"] / sizes[lo][command]["wall_s_median"])
                 / math.log(hi / lo), 3)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 200000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large-repeats", type=int, default=1,
                        help="repeats at 100,000 runs and more (a 200,000-run report takes minutes on 2 cores)")
    parser.add_argument("--commands", nargs="+", default=["resume", "status", "merge", "report"],
                        choices=["resume", "status", "merge", "report"])
    parser.add_argument("--src", type=Path, default=None, help="another greenrt source tree to measure")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--note", default="", help="a sentence on the conditions (a shared host), printed with the table")
    parser.add_argument("--out", type=Path, default=OUT / "scale.json")
    args = parser.parse_args(argv)
    if args.src:
        check_tree(args.src)
    folder = OUT / "scale"
    source = template(folder)
    result: dict[str, Any] = {"benchmark": "scale", "host": platform.node(), "python": platform.python_version(),
                              "cpu_count": os.cpu_count(), "label": args.label, "note": args.note, "repeats": args.repeats,
                              "shards": SHARDS, "targets": TARGETS, "sizes": {}}
    for runs in args.sizes:
        info = build(folder, runs, source)
        print(f"{info['runs']} runs ({info.get('built_s', 'cached')} s to build)", flush=True)
        repeats = args.repeats if runs < 100_000 else min(args.repeats, args.large_repeats)
        result["sizes"][info["runs"]] = {"runs": info["runs"], "shards": info["shards"], "repeats": repeats,
                                         **measure(info, repeats, args.src, args.commands)}
    result["growth_exponent"] = {c: growth(result["sizes"], c) for c in args.commands}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
