"""Overhead of each client language's runner against a bare loop in that language, on the same engine file (issue 25).

    python bench/client_overhead.py --ort-python ENV/bin/python --torch-python ENV/bin/python \
        --artifact-dir bench/out/artifacts --out bench/out/client-overhead.json

Runs on the host (greenrt's own venv) and starts every segment as its own process, each runner with the command and
variables a sweep's local launcher gives it (orchestrator/execution/launchers/commands.py):
  - ONNX Runtime, on one ONNX file: the Python runner (`python -m runners run`, in the onnxruntime-node
    environment, whose Python client is pinned to the ONNX Runtime that onnxruntime-node ships) against
    bench/bare_loops/ort_loop.py, and the Node.js runner (runners/node/runner.js) against bench/bare_loops/ort_loop.js;
  - torch, on one TorchScript file: the Python runner (`torch/torchscript/cpu`) against bench/bare_loops/torch_loop.py,
    and the C++ runner (greenrt-torch-runner, `make cpp-runner`) against bench/bare_loops/torch_loop.cpp, built here
    with CMake against the same libtorch (--build-dir).
Each runner gets a RunRequest of exactly W warm-up and N timed iterations (no time minimums), each bare loop the same
W and N, the same inputs (runners/inputs_file.py's file: the Python runner makes the same bytes itself) and threads.
Rounds alternate the order (client_overhead_report.round_order); the statistics are bench/overhead.py's, per pair of
adjacent segments (client_overhead_report.py). Artifacts are found in --artifact-dir as bench/overhead.py finds them
(<model>.onnx or <model>/model.onnx, and <model>.pt or <model>/model.pt) and exported there in the torch
environment when missing. Run it alone on the host: its figures are drift-sensitive (10 to 15 minutes by default).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for entry in (ROOT, ROOT / "bench"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from client_overhead_report import (TARGET, BareLoopOutput, Cell, ClientOverheadReport, RoundLatencies,  # noqa: E402
                                    cross_language, language_figures, round_order)
from orchestrator.execution.launchers.commands import CPP_RUNNER, runner_command  # noqa: E402
from orchestrator.execution.launchers.local import runner_place  # noqa: E402
from runners.hostinfo import cpu_name  # noqa: E402
from runners.protocol import Budget, ExportRequest, RunRequest, to_dict, write_json_atomic  # noqa: E402

MODELS = ("mobilenet_v2", "resnet50")  # image classifiers: one float32 input, batch 1 keeps the loop's cost visible
BATCH_SIZE = 1
PROCESS_TIMEOUT_S = 900


@dataclass(frozen=True)
class Client:
    key: str  # the language's key in a round's latencies
    label: str  # as tables name it
    runtime: str  # the runner's runtime id
    bare_loop: str  # the bare loop's source, relative to the repository


@dataclass(frozen=True)
class Engine:
    name: str
    suffix: str  # the engine file's extension in the artifact folder
    clients: tuple[Client, Client]  # Python first: the reference of the cross-language ratio


ENGINES = {
    "onnxruntime": Engine("onnxruntime", "onnx", (
        Client("python", "Python", "onnxruntime/onnx-from-torch/cpu", "bench/bare_loops/ort_loop.py"),
        Client("node", "Node.js", "onnxruntime/onnx-from-torch/cpu@node", "bench/bare_loops/ort_loop.js"))),
    "torch": Engine("torch", "pt", (
        Client("python", "Python", "torch/torchscript/cpu", "bench/bare_loops/torch_loop.py"),
        Client("cpp", "C++", "torch/torchscript/cpu@cpp", "bench/bare_loops/torch_loop.cpp"))),
}


class BenchError(RuntimeError):
    """A step that cannot go on; main() prints it in a few lines and exits non-zero."""


@dataclass(frozen=True)
class Toolchain:
    """Where each language's programs are: the environments' interpreters (their runners as a sweep's local launcher
    finds them: orchestrator/execution/launchers/commands.py) and the C++ bare loop; node is the one on PATH."""

    ort_python: Path  # the onnxruntime-node environment's python (node_modules/ beside its bin/)
    torch_python: Path
    torch_loop: Path

    def env(self) -> dict[str, str]:
        # As the local launcher starts a runner: the checkout's runners/ and models/, no GPU for a CPU cell.
        node_modules = self.ort_python.parent.parent / "node_modules"
        return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": "",
                "NODE_PATH": str(node_modules)}

    def python_for(self, engine: str) -> Path:
        return self.ort_python if engine == "onnxruntime" else self.torch_python

    def runner_command(self, engine: str, client: Client, request: Path) -> tuple[list[str], dict[str, str]]:
        """The runner's command and environment exactly as the local launcher makes them for a sweep's run."""
        head, extra = runner_command(client.key, runner_place(self.python_for(engine)))
        return [*head, "run", "--request", str(request)], {**self.env(), **extra}

    def bare_command(self, engine: str, client: Client) -> list[str]:
        source = str(ROOT / client.bare_loop)
        return {"python": [str(self.python_for(engine)), source], "node": ["node", source],
                "cpp": [str(self.torch_loop)]}[client.key]


def run_process(command: list[str], env: dict[str, str], what: str) -> str:
    """The command's stdout; BenchError with the tail of its output if it fails."""
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what}: no answer within {PROCESS_TIMEOUT_S} s ({' '.join(command)})") from None
    except OSError as exc:
        raise BenchError(f"{what}: cannot start {command[0]} ({exc})") from None
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
        raise BenchError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


# --- artifacts -------------------------------------------------------------------------------------------------------

def find_artifact(artifact_dir: Path, model: str, suffix: str) -> Path | None:
    for candidate in (artifact_dir / f"{model}.{suffix}", artifact_dir / model / f"model.{suffix}"):
        if candidate.is_file():
            return candidate
    return None


def export_artifact(tools: Toolchain, artifact_dir: Path, model: str, suffix: str) -> Path:
    """The model exported into artifact_dir/<model>/model.<suffix> in the torch environment."""
    print(f"exporting {model} ({suffix}) into {artifact_dir} ...", file=sys.stderr, flush=True)
    if suffix == "onnx":  # bench/overhead.py's export, so that both benches share one file
        run_process([str(tools.torch_python), str(ROOT / "bench" / "overhead.py"), "--runtime",
                     "onnxruntime/onnx-from-torch/cpu", "--artifact-dir", str(artifact_dir), "--export-only",
                     "--models", model], tools.env(), f"ONNX export of {model}")
    else:
        target = artifact_dir / model / "model.pt"
        target.parent.mkdir(parents=True, exist_ok=True)
        request = ExportRequest(framework="torch", model=model, output_path=str(target), target="torchscript",
                                result_path=str(target.with_suffix(".export.json")))
        request_path = target.with_suffix(".export-request.json")
        write_json_atomic(request_path, to_dict(request))
        run_process([str(tools.torch_python), "-m", "runners", "export", "--request", str(request_path)],
                    tools.env(), f"TorchScript export of {model}")
    found = find_artifact(artifact_dir, model, suffix)
    if found is None:
        raise BenchError(f"the export of {model} left no model.{suffix} in {artifact_dir / model}")
    return found


def build_torch_loop(torch_python: Path, build_dir: Path, env: dict[str, str]) -> Path:
    """bench/bare_loops/torch_loop.cpp built against the torch environment's libtorch (cmake rebuilds what changed)."""
    prefix = run_process([str(torch_python), "-c", "import torch.utils; print(torch.utils.cmake_prefix_path)"], env,
                         "finding libtorch's CMake folder").strip()
    build_dir.mkdir(parents=True, exist_ok=True)
    run_process(["cmake", "-S", str(ROOT / "bench" / "bare_loops"), "-B", str(build_dir),
                 f"-DCMAKE_PREFIX_PATH={prefix}", "-DCMAKE_BUILD_TYPE=Release", "-Wno-dev"], env,
                "configuring the C++ bare loop")
    run_process(["cmake", "--build", str(build_dir), "-j", os.environ.get("JOBS", "2")], env,
                "building the C++ bare loop")
    return build_dir / "torch_loop"


# --- segments --------------------------------------------------------------------------------------------------------

def run_runner(tools: Toolchain, engine: str, client: Client, model: str, artifact: Path, inputs: Path,
               threads: int | None, warmup: int, iterations: int, workdir: Path) -> tuple[list[int], dict[str, str]]:
    """The runner's window latencies (ns) and versions, for exactly `iterations` timed inferences."""
    run_id = f"client-overhead-{client.key}-{engine}-{model}"
    request = RunRequest(run_id=run_id, runtime=client.runtime, model=model, batch_size=BATCH_SIZE,
                         result_path=str(workdir / f"{run_id}.result.json"), artifact_path=str(artifact),
                         inputs_path=str(inputs), threads=threads,
                         budget=Budget(warmup_iterations=warmup, warmup_seconds=0.0, min_iterations=iterations,
                                       min_seconds=0.0))
    request_path = workdir / f"{run_id}.request.json"
    write_json_atomic(request_path, to_dict(request))
    Path(request.result_path).unlink(missing_ok=True)
    run_process(*tools.runner_command(engine, client, request_path), f"{client.runtime} runner")
    result = json.loads(Path(request.result_path).read_text())
    if result.get("status") != "ok" or len(result.get("latencies_ns") or []) != iterations:
        raise BenchError(f"{client.runtime} runner: status {result.get('status')}, "
                         f"{len(result.get('latencies_ns') or [])} of {iterations} iterations "
                         f"({(result.get('error') or {}).get('message', '')})")
    return [int(x) for x in result["latencies_ns"]], {k: str(v) for k, v in (result.get("versions") or {}).items()}


def run_bare(tools: Toolchain, engine: str, client: Client, artifact: Path, inputs: Path, threads: int | None,
             warmup: int, iterations: int) -> BareLoopOutput:
    command = [*tools.bare_command(engine, client), str(artifact), str(inputs), str(threads or 0), str(warmup),
               str(iterations)]
    out = run_process(command, tools.env(), f"{client.bare_loop}")
    try:
        parsed = BareLoopOutput.model_validate_json(out.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise BenchError(f"{client.bare_loop} printed no loop figures ({str(exc).splitlines()[0]})") from None
    if len(parsed.latencies_ns) != iterations:
        raise BenchError(f"{client.bare_loop}: {len(parsed.latencies_ns)} latencies for {iterations} iterations")
    return parsed


def iterations_for(per_iteration_ns: float, seconds: float, low: int = 20, high: int = 2000) -> int:
    """Timed iterations per segment: about `seconds` of inference, within [low, high] (pure)."""
    return max(low, min(high, math.ceil(seconds * 1e9 / max(per_iteration_ns, 1.0))))


def bench_cell(tools: Toolchain, engine: Engine, model: str, artifact: Path, artifact_dir: Path, inputs: Path,
               threads: int | None, rounds: int, seconds: float, warmup: int, workdir: Path) -> Cell:
    started, load_before = time.monotonic(), os.getloadavg()[0]
    reference = engine.clients[0]
    probe = run_bare(tools, engine.name, reference, artifact, inputs, threads, warmup, 5)  # not counted
    iterations = iterations_for(statistics.median(probe.latencies_ns), seconds)
    measured: list[RoundLatencies] = []
    versions: dict[str, dict[str, str]] = {}
    clients = {c.key: c for c in engine.clients}
    for r in range(rounds):
        latencies: RoundLatencies = {key: {} for key in clients}
        for key, kind in round_order(list(clients), r):
            client = clients[key]
            if kind == "runner":
                latencies[key]["runner"], runner_versions = run_runner(
                    tools, engine.name, client, model, artifact, inputs, threads, warmup, iterations, workdir)
                versions.setdefault(key, {}).update({f"runner {k}": v for k, v in runner_versions.items()
                                                     if k in (engine.name, "torch", "onnxruntime")})
            else:
                bare = run_bare(tools, engine.name, client, artifact, inputs, threads, warmup, iterations)
                latencies[key]["bare"] = bare.latencies_ns
                versions.setdefault(key, {}).update(bare.versions)
        measured.append(latencies)
        print(f"  round {r + 1}/{rounds}: " + ", ".join(
            f"{clients[k].label} {statistics.median(v['runner']) / 1e6:.3f}/{statistics.median(v['bare']) / 1e6:.3f} ms"
            for k, v in latencies.items()), flush=True)
    figures = [language_figures(measured, c.key, c.label, c.runtime, c.bare_loop, versions.get(c.key, {}))
               for c in engine.clients]
    labels = {c.key: c.label for c in engine.clients}
    return Cell(engine=engine.name, artifact=str(artifact.relative_to(artifact_dir)), model=model,
                batch_size=BATCH_SIZE, threads=threads, iterations_per_round=iterations, warmup_iterations=warmup,
                rounds=rounds, languages=figures,
                cross_language=cross_language(measured, reference.key, engine.clients[1].key, labels),
                bench_seconds=time.monotonic() - started, load_1m=(load_before, os.getloadavg()[0]))


# --- command line ----------------------------------------------------------------------------------------------------

def parse_threads(value: str) -> int | None:
    if value == "default":
        return None
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise argparse.ArgumentTypeError(f"{value!r} is not a thread count; valid: a positive integer or 'default'")


def executable(value: str) -> Path:
    path = Path(value)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise argparse.ArgumentTypeError(f"{value} is not an executable file (an environment's bin/python: "
                                         "`greenrt env python torch` / `greenrt env python onnxruntime-node`)")
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], usage=(
        "%(prog)s --ort-python PY --torch-python PY --artifact-dir DIR --out FILE [options] (-h: all of them)"))
    parser.add_argument("--out", type=Path, required=True, help="the JSON figures (bench/out/client-overhead.json)")
    parser.add_argument("--ort-python", type=executable, required=True,
                        help="the onnxruntime-node environment's python (its node_modules/ beside its bin/)")
    parser.add_argument("--torch-python", type=executable, required=True, help="the torch environment's python")
    parser.add_argument("--artifact-dir", type=Path, required=True,
                        help="<model>.onnx / <model>/model.onnx and <model>.pt / <model>/model.pt (exported if missing)")
    parser.add_argument("--build-dir", type=Path, default=ROOT / "bench" / "out" / "bare-loops-build",
                        help="CMake's folder for the C++ bare loop (kept: a rebuild compiles only what changed)")
    parser.add_argument("--engines", nargs="+", choices=list(ENGINES), default=list(ENGINES))
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--threads", nargs="+", type=parse_threads, default=[1, None],
                        help="intra-op thread counts, 'default' for the engine's own (default: 1 default)")
    parser.add_argument("--rounds", type=int, default=8, help="rounds per cell, each a runner/bare pair per "
                                                              "language, order alternated (at least 7 for figures)")
    parser.add_argument("--seconds", type=float, default=1.0, help="target seconds of timed inference per segment")
    parser.add_argument("--warmup", type=int, default=10, help="untimed iterations before each segment's timed ones")
    args = parser.parse_args(argv)
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (the order alternates between rounds); 7 or more for figures")
    if args.seconds <= 0 or args.warmup < 1:
        parser.error("--seconds must be positive and --warmup at least 1")
    if "onnxruntime" in args.engines and not shutil.which("node"):
        parser.error("no node on PATH (Debian's nodejs: `make system-packages`); the Node.js runner and bare loop "
                     "run with it")
    return args


def prepare(args: argparse.Namespace) -> tuple[Toolchain, dict[tuple[str, str], Path]]:
    """The toolchain (the C++ bare loop built, the C++ runner checked) and every engine file, before any timing."""
    cpp_runner = args.torch_python.parent / CPP_RUNNER
    tools = Toolchain(args.ort_python, args.torch_python, args.build_dir / "torch_loop")
    if "onnxruntime" in args.engines and not (args.ort_python.parent.parent / "node_modules" / "onnxruntime-node").is_dir():
        raise BenchError(f"{args.ort_python} is not the onnxruntime-node environment's python (no node_modules/"
                         "onnxruntime-node beside its bin/): give `greenrt env python onnxruntime-node`")
    if "torch" in args.engines:
        if not cpp_runner.is_file():
            raise BenchError(f"no C++ runner at {cpp_runner}: `make cpp-runner` builds it")
        build_torch_loop(args.torch_python, args.build_dir, tools.env())
    artifacts = {}
    args.artifact_dir.mkdir(parents=True, exist_ok=True)
    for name in args.engines:
        suffix = ENGINES[name].suffix
        for model in args.models:
            artifacts[name, model] = (find_artifact(args.artifact_dir, model, suffix)
                                      or export_artifact(tools, args.artifact_dir, model, suffix))
    return tools, artifacts


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        tools, artifacts = prepare(args)
        cells = []
        with tempfile.TemporaryDirectory(prefix="client-overhead-") as tmp:
            from runners.inputs_file import write_model_inputs

            for model in args.models:
                inputs = write_model_inputs(Path(tmp) / f"inputs-{model}", model, BATCH_SIZE, 0)
                for name in args.engines:
                    for threads in args.threads:
                        print(f"{name} {model} bs{BATCH_SIZE} threads {threads or 'default'}", flush=True)
                        cell = bench_cell(tools, ENGINES[name], model, artifacts[name, model], args.artifact_dir,
                                          inputs, threads, args.rounds, args.seconds, args.warmup, Path(tmp))
                        cells.append(cell)
                        for f in cell.languages:
                            print(f"  {f.language:8s} bare {f.bare_median_ms:8.3f} ms  runner {f.runner_median_ms:8.3f}"
                                  f" ms  runner/bare {f.ratio:.4f} ({f.ratio_min:.4f}-{f.ratio_max:.4f})", flush=True)
                        x = cell.cross_language
                        print(f"  {x.other}/{x.reference} bare loops {x.bare_ratio:.4f} ({x.bare_ratio_min:.4f}-"
                              f"{x.bare_ratio_max:.4f})  ({cell.bench_seconds:.0f} s, load average "
                              f"{cell.load_1m[0]:.1f} -> {cell.load_1m[1]:.1f})", flush=True)
    except BenchError as exc:
        print(f"client_overhead.py: {exc}", file=sys.stderr)
        return 1
    note = (f"A reduced run ({args.rounds} rounds, fewer than 7): a check of the output, not figures to quote."
            if args.rounds < 7 else "")
    report = ClientOverheadReport(target_ratio=TARGET, host=cpu_name(), cpu_count=os.cpu_count() or 0, note=note,
                                  cells=cells,
                                  all_within_target=all(f.ratio <= TARGET for c in cells for f in c.languages))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, report.model_dump(mode="json"))
    print(f"wrote {args.out}; all within {TARGET}: {report.all_within_target}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
