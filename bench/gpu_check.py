"""`make gpu-check`: greenrt on a real NVIDIA host, in under 8 minutes, with no Docker, network or pip.

    sh bench/gpu-check.sh          # installs the wheelhouse (.whl/, from `make gpu-wheels`), then runs this
    python3 bench/gpu_check.py     # the same, where polars, pydantic, typer and rich are importable already

Needs python3 with torch (CUDA), nvidia-ml-py and numpy (and transformers, for ResNet-50). In order:
  1. NVML, live: GPUs, names, UUIDs, driver, whether the total-energy counter works, power limits;
  2. the sweep configs/gpu-check.toml through the REAL orchestrator (`python3 -m orchestrator.cli sweep
     --launcher local --python python3`): torch/native/cuda, ResNet-50, batch 1 and 64, fp32 and fp16;
  3. how often NVML's energy counter and power reading change (polled fast under a light CUDA load);
  4. the sweep's runs table and raw samples: energy per inference, coverage of each window by samples, and the
     counter difference against the integral of the sampled power over the same window;
  5. a bare torch loop of the same cells, eager and replaying a CUDA graph, against the orchestrator's p50;
  6. the TF32 policy's effect: fp32 matmul and conv with TF32 off (greenrt's fp32) and allowed, time and error
     against fp64 (gpu_check_tf32);
  7. the edge uncertainty the energy accounting recorded for each of the sweep's windows, and its counter period
     against the one measured in 3 (gpu_check_edges);
  8. one-GPU attribution: a load on cuda:0 leaves every other GPU at its idle power (gpu_check_attribution).
Writes bench/out/gpu-check.json and bench/out/gpu-check.md (bench/write_report.py puts the same section in
BENCHMARKS.md). Exit 0: all ran; 1: something failed (listed under "problems"); 2: this host cannot run it, said
in one line (no CUDA, no NVML, a package missing).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import tomllib
import traceback
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
for _path in (str(BENCH), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

SCHEMA = "greenrt.gpu-check/1"
DEFAULT_CONFIG = ROOT / "configs" / "gpu-check.toml"
DEFAULT_OUT = ROOT / "bench" / "out"
# What `python3 -m orchestrator.cli sweep` imports beyond numpy (bench/gpu-check.sh installs them from .whl/).
HOST_PACKAGES = ("polars", "pydantic", "typer", "rich")
NS_PER_S = 1_000_000_000
# Seconds each part after the sweep may take on an H100/H200 (measured parts plus start-up); the sweep gets the rest.
PART_BUDGET_S = {"TF32 policy effect": 30.0, "one-GPU attribution": 20.0}


class CannotRun(Exception):
    """This host lacks what the check needs: one line saying what."""


def _say(message: str) -> None:
    print(f"gpu-check: {message}", flush=True)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _nvml_reason(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "NVMLError_LibraryNotFound":
        return "NVML library not found (no NVIDIA driver on this host)"
    if name == "NVMLError_DriverNotLoaded":
        return "NVIDIA driver not loaded"
    if name == "NVMLError_NoPermission":
        return "NVML refused access (permissions)"
    return f"NVML could not be initialised ({name}: {exc})"


def preflight(host_side: bool = True) -> tuple[Any, Any]:
    """(torch, pynvml) when this host can run the check; else CannotRun with every missing piece in one line."""
    missing: list[str] = []
    if sys.version_info < (3, 11):
        missing.append(f"Python {platform.python_version()} (greenrt needs 3.11 or newer)")
    torch = pynvml = None
    if importlib.util.find_spec("numpy") is None:
        missing.append("numpy not installed")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torch as _torch

            torch = _torch
            if not torch.cuda.is_available():
                missing.append(f"no CUDA device for torch {torch.__version__} (built for CUDA "
                               f"{torch.version.cuda or 'none'}, {torch.cuda.device_count()} device(s) visible)")
    except Exception as exc:  # ImportError, or a broken install raising anything at import
        missing.append(f"torch not importable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
    try:
        import pynvml as _pynvml

        pynvml = _pynvml
    except Exception as exc:
        missing.append(f"nvidia-ml-py (pynvml) not importable ({type(exc).__name__})")
    if pynvml is not None:
        try:
            pynvml.nvmlInit()
            try:
                if pynvml.nvmlDeviceGetCount() == 0:
                    missing.append("NVML reports zero GPUs")
            finally:
                pynvml.nvmlShutdown()
        except Exception as exc:
            missing.append(_nvml_reason(exc))
    if importlib.util.find_spec("transformers") is None:
        missing.append("transformers not installed (models/torch_models.py builds ResNet-50 with it)")
    if host_side:
        absent = [name for name in HOST_PACKAGES if importlib.util.find_spec(name) is None]
        if absent:
            missing.append(f"{', '.join(absent)} not importable: run `sh bench/gpu-check.sh`, which installs the "
                           "wheelhouse that `make gpu-wheels` puts in .whl/")
    if missing:
        raise CannotRun("; ".join(missing))
    return torch, pynvml


# ---------------------------------------------------------------------------------------------------------------
# 1. NVML, live.


def _try(fn: Callable[..., Any] | None, *args: Any) -> tuple[Any, str | None]:
    if fn is None:
        return None, "not in this nvidia-ml-py"
    try:
        return fn(*args), None
    except Exception as exc:
        return None, f"{type(exc).__name__}{': ' + str(exc) if str(exc) else ''}"


def nvml_facts(pynvml: Any) -> dict[str, Any]:
    """Driver, NVML and CUDA driver versions, and per GPU what greenrt relies on. NVML must be initialised."""
    get = lambda name: getattr(pynvml, name, None)  # noqa: E731
    driver, _ = _try(get("nvmlSystemGetDriverVersion"))
    nvml_version, _ = _try(get("nvmlSystemGetNVMLVersion"))
    cuda, _ = _try(get("nvmlSystemGetCudaDriverVersion_v2") or get("nvmlSystemGetCudaDriverVersion"))
    gpus = []
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        energy, energy_error = _try(get("nvmlDeviceGetTotalEnergyConsumption"), handle)
        uuid, _ = _try(get("nvmlDeviceGetUUID"), handle)
        pci, _ = _try(get("nvmlDeviceGetPciInfo"), handle)
        limit, limit_error = _try(get("nvmlDeviceGetPowerManagementLimit"), handle)
        enforced, _ = _try(get("nvmlDeviceGetEnforcedPowerLimit"), handle)
        power, power_error = _try(get("nvmlDeviceGetPowerUsage"), handle)
        memory, _ = _try(get("nvmlDeviceGetMemoryInfo"), handle)
        temperature, _ = _try(get("nvmlDeviceGetTemperature"), handle, getattr(pynvml, "NVML_TEMPERATURE_GPU", 0))
        gpus.append({
            "index": index, "name": _text(pynvml.nvmlDeviceGetName(handle)),
            "uuid": _text(uuid) if uuid is not None else None,
            "pci_bus_id": _text(pci.busId) if pci is not None and hasattr(pci, "busId") else None,
            "energy_counter": energy is not None, "energy_counter_reason": energy_error,
            "energy_counter_mj": energy,
            "power_limit_w": limit / 1e3 if limit is not None else None, "power_limit_reason": limit_error,
            "enforced_power_limit_w": enforced / 1e3 if enforced is not None else None,
            "power_w_now": power / 1e3 if power is not None else None, "power_reason": power_error,
            "memory_total_mib": memory.total / 2**20 if memory is not None else None,
            "temperature_c": temperature,
        })
    cuda_text = f"{cuda // 1000}.{cuda % 1000 // 10}" if isinstance(cuda, int) else None
    return {"driver": _text(driver) if driver else None, "nvml_version": _text(nvml_version) if nvml_version else None,
            "cuda_driver": cuda_text, "gpus": gpus}


def _uuid_key(value: Any) -> str:
    return _text(value).lower().removeprefix("gpu-")


def nvml_index_of_cuda0(torch: Any, gpus: list[dict[str, Any]]) -> tuple[int, str]:
    """NVML's index of CUDA device 0 (the runner's), matched by UUID, else PCI bus, else the only GPU."""
    props = torch.cuda.get_device_properties(0)
    uuid = getattr(props, "uuid", None)
    if uuid is not None:
        for gpu in gpus:
            if gpu.get("uuid") and _uuid_key(gpu["uuid"]) == _uuid_key(uuid):
                return gpu["index"], "matched by UUID"
    bus = getattr(props, "pci_bus_id", None)
    if bus is not None:
        for gpu in gpus:
            parts = (gpu.get("pci_bus_id") or "").split(":")
            if len(parts) == 3 and int(parts[1], 16) == int(bus):
                return gpu["index"], "matched by PCI bus"
    return 0, "assumed NVML index 0 (no UUID or PCI match)"


# ---------------------------------------------------------------------------------------------------------------
# 3. How often the readings change.


def poll(read: Callable[[], Any], seconds: float, tick: Callable[[], Any] | None = None,
         tick_every_s: float = 0.01) -> tuple[list[int], list[float], int]:
    """(t_ns, values, failed reads): `read` called back to back for `seconds`; t_ns at the middle of each read."""
    clock = time.monotonic_ns
    t_ns: list[int] = []
    values: list[float] = []
    failed = 0
    end = clock() + int(seconds * NS_PER_S)
    next_tick = 0
    while True:
        before = clock()
        if before >= end:
            break
        if tick is not None and before >= next_tick:
            tick()
            next_tick = before + int(tick_every_s * NS_PER_S)
            before = clock()
        try:
            value = read()
        except Exception:
            failed += 1
            continue
        after = clock()
        t_ns.append((before + after) // 2)
        values.append(float(value))
    return t_ns, values, failed


def measure_updates(torch: Any, pynvml: Any, nvml_index: int, seconds: float) -> dict[str, Any]:
    from gpu_check_calc import counter_update_period

    handle = pynvml.nvmlDeviceGetHandleByIndex(nvml_index)
    device = torch.device("cuda", 0)
    a = torch.randn(2048, 2048, device=device)
    c = torch.empty_like(a)
    load = "one 2048x2048 fp32 matmul enqueued every 10 ms"
    out = {}
    for name, fn, unit in (("energy_counter", "nvmlDeviceGetTotalEnergyConsumption", "mJ"),
                           ("power_reading", "nvmlDeviceGetPowerUsage", "mW")):
        read = getattr(pynvml, fn)
        try:
            read(handle)
        except Exception as exc:
            out[name] = {"error": f"{fn}: {type(exc).__name__}", "nvml_index": nvml_index}
            continue
        t_ns, values, failed = poll(lambda: read(handle), seconds, tick=lambda: torch.mm(a, a, out=c))
        torch.cuda.synchronize(device)
        out[name] = {**counter_update_period(t_ns, values), "function": fn, "unit": unit, "failed_reads": failed,
                     "nvml_index": nvml_index, "load": load}
    a = c = None  # noqa: F841 - freed before the bare loop
    torch.cuda.empty_cache()
    return out


# ---------------------------------------------------------------------------------------------------------------
# 2. The sweep through the real orchestrator.


def run_sweep(config: Path, out: Path, python: str, timeout_s: float, log_path: Path, fresh: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "orchestrator.cli", "sweep", "--config", str(config), "--out", str(out),
               "--python", python, "--launcher", "local", *(["--fresh"] if fresh else [])]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    _say(f"sweep: {' '.join(command)} (at most {timeout_s:.0f} s; log {log_path})")
    started = time.monotonic()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, text=True, errors="replace", start_new_session=True)

        def relay() -> None:
            for line in process.stdout:  # type: ignore[union-attr]
                log.write(line)
                log.flush()
                sys.stdout.write("  | " + line)
                sys.stdout.flush()

        reader = threading.Thread(target=relay, daemon=True)
        reader.start()
        timed_out = False
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _say(f"sweep: still running after {timeout_s:.0f} s: interrupting it (SIGINT), what it recorded is kept")
            os.killpg(process.pid, signal.SIGINT)
            try:
                code = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                code = process.wait()
        reader.join(timeout=5)
    return {"command": command, "exit_code": code, "timed_out": timed_out, "wall_s": time.monotonic() - started,
            "log": str(log_path)}


# ---------------------------------------------------------------------------------------------------------------
# 5. The bare loop.


def _timed(fn: Callable[[], Any], sync: Callable[[], None], seconds: float, min_iterations: int) -> list[int]:
    clock = time.monotonic_ns
    latencies: list[int] = []
    sync()
    start = clock()
    while len(latencies) < min_iterations or clock() - start < seconds * NS_PER_S:
        t0 = clock()
        fn()
        sync()
        latencies.append(clock() - t0)
    return latencies


def bare_cell(torch: Any, model_name: str, batch_size: int, precision: str, seed: int, warmup: int,
              seconds_per_mode: float, rounds: int = 2, device_name: str = "cuda") -> dict[str, Any]:
    """Eager and CUDA-graph latencies of one cell, in alternating rounds (drift cancels), same inputs.

    device_name="cpu" runs the eager half only (a check of this code on a machine without a GPU)."""
    from gpu_check_calc import latency_stats
    from models.inputs import make_inputs
    from models.registry import get_model
    from models.torch_models import build_torch_model
    from runners.protocol import Weights

    on_cuda = device_name == "cuda"
    device = torch.device("cuda", 0) if on_cuda else torch.device(device_name)
    if on_cuda:
        torch.cuda.set_device(device)
    dtype = torch.float16 if precision == "fp16" else torch.float32
    spec = get_model(model_name)
    model = build_torch_model(model_name, None, Weights(kind="random", seed=seed)).to(device)
    if precision == "fp16":
        model = model.half()
    model = model.eval()
    inputs = {}
    for name, array in make_inputs(spec, batch_size, seed).items():
        tensor = torch.from_numpy(array).to(device)
        inputs[name] = tensor.to(dtype) if tensor.is_floating_point() else tensor
    sync = (lambda: torch.cuda.synchronize(device)) if on_cuda else (lambda: None)
    eager_ns: list[int] = []
    graph_ns: list[int] = []
    graph_error = None
    graph = None
    with torch.inference_mode():
        for _ in range(warmup):
            model(**inputs)
        sync()
        try:
            if not on_cuda:
                raise RuntimeError(f"CUDA graphs need a CUDA device, not {device}")
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                for _ in range(3):
                    model(**inputs)
            torch.cuda.current_stream(device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                model(**inputs)
            for _ in range(warmup):
                graph.replay()
            sync()
        except Exception as exc:
            graph, graph_error = None, f"{type(exc).__name__}: {str(exc)[:300]}"
        for _ in range(rounds):
            eager_ns += _timed(lambda: model(**inputs), sync, seconds_per_mode / rounds, 10)
            if graph is not None:
                graph_ns += _timed(graph.replay, sync, seconds_per_mode / rounds, 10)
    graph = model = inputs = None  # noqa: F841 - freed before the next cell
    if on_cuda:
        torch.cuda.empty_cache()
    return {"model": model_name, "batch_size": batch_size, "precision": precision, "eager": latency_stats(eager_ns),
            "graph": latency_stats(graph_ns) if graph_ns else None, "graph_error": graph_error,
            "warmup_iterations": warmup, "rounds": rounds}


# ---------------------------------------------------------------------------------------------------------------
# The whole check.


def _versions(torch: Any) -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version(), "torch": torch.__version__,
                                  "cuda": torch.version.cuda}
    try:
        out["cudnn"] = str(torch.backends.cudnn.version())
    except Exception:
        out["cudnn"] = None
    for dist in ("transformers", "nvidia-ml-py", "numpy", "polars", "pydantic"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def overhead_rows(cells: list[dict[str, Any]], bare: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from gpu_check_calc import harness_overhead

    by_cell = {(c["model"], c["batch_size"], c["precision"]): c for c in cells}
    rows = []
    for b in bare:
        if b.get("error"):
            rows.append({"batch_size": b["batch_size"], "precision": b["precision"], "graph_error": b["error"]})
            continue
        eager = (b.get("eager") or {}).get("p50_ms")
        graph = (b.get("graph") or {}).get("p50_ms")
        orchestrator = (by_cell.get((b["model"], b["batch_size"], b["precision"])) or {}).get("latency_p50_ms")
        rows.append({"batch_size": b["batch_size"], "precision": b["precision"], "bare_eager_p50_ms": eager,
                     "bare_graph_p50_ms": graph, "graph_p50_ms": graph, "graph_error": b.get("graph_error"),
                     "orchestrator_p50_ms": orchestrator, **harness_overhead(orchestrator, eager),
                     "graph_speedup": eager / graph if eager and graph else None})
    return rows


def judge(report: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(problems: something did not work, warnings: it worked but a figure is outside what is expected)."""
    problems, warnings_ = list(report.get("problems") or []), []
    sweep = report.get("sweep") or {}
    if sweep.get("exit_code") not in (None, 0):
        problems.append(f"the sweep exited {sweep.get('exit_code')}{' (timed out)' if sweep.get('timed_out') else ''}: "
                        f"see {sweep.get('log')}")
    for run in sweep.get("runs") or []:
        if run.get("status") != "ok":
            problems.append(f"run {run.get('run_id')}: {run.get('status')}: {run.get('failure')}")
        elif (run.get("energy") or {}).get("gpu_energy_j") is None:
            problems.append(f"run {run.get('run_id')}: no GPU energy ({run.get('energy_status')}: "
                            f"{run.get('energy_note')})")
        for name, ch in (run.get("channels") or {}).items():
            cov = ch.get("coverage") or {}
            if cov and not cov.get("bracketed"):
                problems.append(f"run {run.get('run_id')} {name}: samples do not bracket the window")
            elif cov and cov.get("spanned_fraction", 0) < 0.95:
                warnings_.append(f"run {run.get('run_id')} {name}: samples span only "
                                 f"{cov['spanned_fraction']:.3f} of the window")
            ratio = (ch.get("counter_vs_power") or {}).get("ratio")
            if ratio is not None and not 0.9 <= ratio <= 1.1:
                warnings_.append(f"run {run.get('run_id')} {name}: counter / power integral = {ratio:.3f}")
    if "exit_code" in sweep and not sweep.get("runs") and not sweep.get("error"):  # it ran (not --skip-sweep)
        problems.append("the sweep recorded no runs")
    attribution = report.get("attribution") or {}
    if attribution.get("ok") is False:
        problems.append(f"one-GPU attribution: {attribution.get('verdict')}")
    tf32 = report.get("tf32") or {}
    if tf32.get("ops") and not tf32.get("restored"):
        problems.append("TF32 check: torch's TF32 switches were not put back as they were")
    from gpu_check_edges import edge_findings

    edge_problems, edge_warnings = edge_findings(report.get("edges") or {})
    problems += edge_problems
    warnings_ += edge_warnings
    for gpu in (report.get("nvml") or {}).get("gpus") or []:
        if not gpu.get("energy_counter"):
            warnings_.append(f"GPU {gpu.get('index')} ({gpu.get('name')}): no total-energy counter "
                             f"({gpu.get('energy_counter_reason')}): energy comes from the power integral")
    return problems, warnings_


def _foreign_sweep(config: Path, sweep_out: Path) -> str | None:
    """Why the results in sweep_out are not this config's sweep (then they are not analysed), or None."""
    plan = sweep_out / "plan.json"
    if not plan.exists():
        return None
    try:
        from orchestrator.planning.config import load_config

        digest = load_config(config).digest()
        recorded = json.loads(plan.read_text()).get("config_digest")
    except Exception as exc:
        return f"cannot tell whether {sweep_out} holds this config's sweep ({type(exc).__name__}: {exc})"
    if recorded != digest:
        return (f"{sweep_out} holds another config's sweep (digest {recorded}, this config's {digest}): not "
                "analysed; rerun with --fresh to set it aside")
    return None


def _budgeted(report: dict[str, Any], name: str, deadline: float, fn: Callable[[], Any]) -> dict[str, Any]:
    """A part after the sweep, run only if its budget fits before the deadline; else said so in its place."""
    if time.monotonic() + PART_BUDGET_S[name] > deadline:
        return {"skipped": f"the time budget is spent ({PART_BUDGET_S[name]:.0f} s needed)"}
    return _step(report, name, fn) or {"error": "failed (see problems)"}


def _attribution(torch: Any, pynvml: Any, index: int, how: str, load_s: float) -> dict[str, Any]:
    from gpu_check_attribution import TorchMatmulLoad, measure_attribution

    return measure_attribution(pynvml, TorchMatmulLoad(torch), index, how, idle_s=min(3.0, load_s), load_s=load_s)


def _step(report: dict[str, Any], name: str, fn: Callable[[], Any]) -> Any:
    started = time.monotonic()
    _say(f"{name} ...")
    try:
        value = fn()
    except Exception as exc:
        traceback.print_exc()
        report.setdefault("problems", []).append(f"{name}: {type(exc).__name__}: {str(exc)[:400]}")
        value = None
    report.setdefault("step_seconds", {})[name] = round(time.monotonic() - started, 2)
    return value


def finite(value: Any) -> Any:
    """The report with nan and infinities as None: strict JSON, and 'missing' rather than a number."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def write_outputs(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    from gpu_check_report import render

    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "gpu-check.json", out_dir / "gpu-check.md"
    report = finite(report)
    text_json = json.dumps(report, indent=1, sort_keys=True, default=str, allow_nan=False) + "\n"
    for path, text in ((json_path, text_json),
                       (md_path, render(report))):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return json_path, md_path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="the sweep (default: %(default)s)")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help="where gpu-check.json/.md go")
    parser.add_argument("--sweep-out", type=Path, default=None, help="the sweep's results (default: OUT_DIR/"
                        "gpu-check-sweep; resumed if it holds this config's sweep)")
    parser.add_argument("--python", default=sys.executable, help="the runners' interpreter (default: this one)")
    parser.add_argument("--fresh", action="store_true", help="set an earlier sweep in --sweep-out aside, start over")
    parser.add_argument("--budget-s", type=float, default=420.0, help="whole check's time budget (default 420 s: "
                        "with the start-up and the unpacking, under 8 minutes of one 10-minute device call)")
    parser.add_argument("--poll-seconds", type=float, default=2.0, help="per NVML reading polled (default 2 s)")
    parser.add_argument("--bare-seconds", type=float, default=3.0, help="per mode and cell of the bare loop")
    parser.add_argument("--tf32-seconds", type=float, default=1.5, help="per op and TF32 mode (default 1.5 s)")
    parser.add_argument("--attribution-seconds", type=float, default=5.0, help="load window of the one-GPU "
                        "attribution (an idle window of up to 3 s comes first; default 5 s)")
    parser.add_argument("--skip-sweep", action="store_true", help="only NVML, the polls, the TF32 and attribution "
                        "checks and the bare loop")
    parser.add_argument("--preflight", action="store_true", help="only check that this host can run it (no "
                        "host-side packages needed), then exit 0 or 2")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        torch, pynvml = preflight(host_side=not args.preflight)
    except CannotRun as exc:
        print(f"gpu-check: cannot run on this host: {exc}", file=sys.stderr, flush=True)
        return 2
    if args.preflight:
        _say(f"preflight ok: torch {torch.__version__} sees {torch.cuda.get_device_name(0)}")
        return 0

    t0 = time.monotonic()
    deadline = t0 + args.budget_s
    config_data = tomllib.loads(args.config.read_text())
    sweep_out = (args.sweep_out or args.out_dir / "gpu-check-sweep").absolute()
    report: dict[str, Any] = {
        "schema": SCHEMA, "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": {"hostname": platform.node(), "cpus": os.cpu_count(), "python_executable": sys.executable,
                 "versions": _versions(torch)},
        "config": str(args.config), "problems": [],
    }
    pynvml.nvmlInit()
    try:
        report["nvml"] = _step(report, "NVML", lambda: nvml_facts(pynvml)) or {}
        gpus = report["nvml"].get("gpus") or []
        for gpu in gpus:
            _say(f"GPU {gpu['index']}: {gpu['name']} {gpu['uuid']}, energy counter "
                 f"{'works' if gpu['energy_counter'] else 'NOT available: ' + str(gpu['energy_counter_reason'])}, "
                 f"power limit {gpu['power_limit_w']} W, now {gpu['power_w_now']} W")

        sweep: dict[str, Any] = {"config": str(args.config.relative_to(ROOT) if args.config.is_relative_to(ROOT)
                                                else args.config), "python": args.python,
                                 "model": ", ".join(config_data.get("models", [])),
                                 "runtimes": ", ".join(config_data.get("runtimes", []))}
        if not args.skip_sweep:
            # Before this process makes a CUDA context: the runners get the GPU to themselves.
            bare_cells = len(config_data.get("batch_sizes", [])) * len(config_data.get("precisions", ["fp32"]))
            reserve = (15 + 2 * args.poll_seconds + bare_cells * (2 * args.bare_seconds + 8)
                       + sum(PART_BUDGET_S.values()))
            timeout = max(60.0, deadline - time.monotonic() - reserve)
            ran = _step(report, "sweep", lambda: run_sweep(args.config, sweep_out, args.python, timeout,
                                                            args.out_dir / "gpu-check-sweep.log", args.fresh))
            sweep.update(ran or {"error": "the sweep could not be started"})
        report["sweep"] = sweep

        try:
            index, how = nvml_index_of_cuda0(torch, gpus) if gpus else (0, "no GPU listed")
        except Exception as exc:
            index, how = 0, f"assumed NVML index 0 ({type(exc).__name__}: {exc})"
        report["cuda0_nvml_index"] = {"index": index, "how": how}
        report["updates"] = _step(report, "NVML update periods",
                                  lambda: measure_updates(torch, pynvml, index, args.poll_seconds)) or {}
        report["tf32"] = _budgeted(report, "TF32 policy effect", deadline, lambda: __import__(
            "gpu_check_tf32").measure_tf32(torch, seconds_per_mode=args.tf32_seconds))
        report["attribution"] = _budgeted(report, "one-GPU attribution", deadline, lambda: _attribution(
            torch, pynvml, index, how, args.attribution_seconds))
    finally:
        pynvml.nvmlShutdown()

    foreign = None if args.skip_sweep else _foreign_sweep(args.config, sweep_out)
    if foreign:
        report["problems"].append(foreign)
    elif not args.skip_sweep and sweep_out.exists():
        analysis = _step(report, "sweep analysis", lambda: __import__("gpu_check_sweep").analyse_sweep(sweep_out))
        if analysis:
            report["sweep"].update({"runs": analysis["runs"], "cells": analysis["cells"], "table": analysis["table"],
                                    "out": analysis["out"], "notes": analysis["notes"]})

    report["edges"] = _step(report, "window-edge uncertainty", lambda: __import__(
        "gpu_check_edges").edges_report(report.get("updates") or {}, (report.get("sweep") or {}).get("runs") or []))
    bare = []
    seed = int(config_data.get("seed", 0))
    warmup = int((config_data.get("warmup") or {}).get("iterations", 20))
    for model in config_data.get("models", ["resnet50"]):
        for batch in config_data.get("batch_sizes", [1]):
            for precision in config_data.get("precisions", ["fp32"]):
                if time.monotonic() + 2 * args.bare_seconds + 5 > deadline:
                    bare.append({"model": model, "batch_size": batch, "precision": precision,
                                 "error": "skipped: the time budget is spent"})
                    continue
                cell = _step(report, f"bare loop {model} bs{batch} {precision}",
                             lambda: bare_cell(torch, model, batch, precision, seed, warmup, args.bare_seconds))
                bare.append(cell or {"model": model, "batch_size": batch, "precision": precision,
                                     "error": "failed (see problems)"})
    report["bare"] = bare
    report["overhead"] = overhead_rows(report["sweep"].get("cells") or [], bare)

    report["problems"], report["warnings"] = judge(report)
    report["status"] = "ok" if not report["problems"] else "problems"
    report["wall_s"] = time.monotonic() - t0
    json_path, md_path = write_outputs(report, args.out_dir)
    print(md_path.read_text(), flush=True)
    for warning in report["warnings"]:
        _say(f"warning: {warning}")
    _say(f"{report['status']} in {report['wall_s']:.0f} s: wrote {json_path} and {md_path}")
    return 0 if report["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
