"""CPU cost of the background sampler: how much of one core polling the sensors takes, at 50 ms and 10 ms.

    python bench/sampler_cost.py [--duration 10] [--intervals 0.05 0.01] [--powercap-root DIR] [--out FILE]

Uses the sensors this host can read. Where neither RAPL nor NVML is readable, it polls a synthetic powercap tree
(tests/host/testkit/powercap.py) in a temporary directory instead, and says so: that measures the sampler's own overhead
with the same number of files read, not the kernel's RAPL read path (which adds an MSR read per zone).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.measurement.sampler import Sampler
from orchestrator.measurement.sensors import discover_sensors, resolve_powercap_root
from orchestrator.measurement.sensors.base import Sensor
from orchestrator.measurement.sensors.rapl import RaplSensor

REPO = Path(__file__).resolve().parents[1]


def _load_powercap_helper(name: str = "powercap") -> Any:
    # tests/ is not a package; load the test helper (tests/host/testkit/) by path so the benchmark and the tests build
    # the same tree.
    testkit = REPO / "tests" / "host" / "testkit"
    spec = importlib.util.spec_from_file_location(f"greenrt_test_{name}", testkit / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def _process_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(sensors: list[Sensor], interval_s: float, duration_s: float) -> dict[str, Any]:
    """Run one sampler for duration_s; CPU of the whole process and of the sampler thread alone, against wall."""
    sampler = Sampler(sensors, interval_s=interval_s)
    cpu0, wall0 = _process_cpu_s(), time.perf_counter()
    sampler.start()
    thread = sampler.thread
    assert thread is not None and thread.ident is not None
    clock_id = time.pthread_getcpuclockid(thread.ident)
    time.sleep(duration_s)
    thread_cpu = time.clock_gettime(clock_id)  # read while the thread is alive: its clock dies with it
    series = sampler.stop()
    wall, cpu = time.perf_counter() - wall0, _process_cpu_s() - cpu0

    # A poll reads every sensor, each read stamped with its own time: distinct timestamps count polls x sensors
    # (the figure was doubled with RAPL and NVML). A poll is one sample of a channel; the channel seen most often
    # counts them all (a failed read leaves its channels without that sample). start() and stop() take one poll
    # each on the calling thread: the sampler thread's CPU pays for the others.
    t = max((series.channel_arrays(name)[0] for name in sampler.channels), key=len)
    gaps_ms = np.diff(t[:-1]) / 1e6 if len(t) > 2 else np.array([np.nan])  # the final sample is off-schedule
    polls = len(t)
    thread_polls = max(1, polls - 2)
    return {
        "interval_s": interval_s,
        "duration_s": duration_s,
        "wall_s": round(wall, 4),
        "process_cpu_s": round(cpu, 4),
        "process_cpu_percent_of_one_core": round(100 * cpu / wall, 3),
        "sampler_thread_cpu_s": round(thread_cpu, 4),
        "sampler_thread_cpu_percent_of_one_core": round(100 * thread_cpu / wall, 3),
        "cpu_us_per_poll": round(1e6 * thread_cpu / thread_polls, 1),
        "polls": polls,
        "sensors": len(sensors),
        "channels": len(sampler.channels),
        "read_errors": len(series.errors),
        "gap_ms_median": round(float(np.median(gaps_ms)), 3),
        "gap_ms_p99": round(float(np.percentile(gaps_ms, 99)), 3),
        "gap_ms_max": round(float(np.max(gaps_ms)), 3),
    }


def simulated_host(tmp: Path, gpus: int) -> tuple[list[Sensor], str]:
    """A node like the issue's: `gpus` simulated NVIDIA GPUs (tests/host/testkit/fake_nvml.py behind greenrt's own NVML
    sensor: every call it makes per poll, answered in-process) and a synthetic RAPL tree of 4 zones."""
    from orchestrator.measurement.sensors.nvml import NvmlSensor

    fake = _load_powercap_helper("fake_nvml")
    tree = _load_powercap_helper().make_powercap_tree(tmp / "powercap", packages=2, dram=True)
    nvml = NvmlSensor(fake.FakeNvml([fake.FakeGpu() for _ in range(gpus)]))
    return [RaplSensor(tree.root), nvml], (
        f"SIMULATED node: {gpus} GPUs through greenrt's NVML sensor on an in-process stand-in for pynvml (no driver "
        f"call costs), and a synthetic powercap tree of 4 zones: the sampler's own overhead")


def run_benchmark(
    duration_s: float = 10.0, intervals: tuple[float, ...] = (0.05, 0.01), powercap_root: str | None = None,
    simulated_gpus: int = 0,
) -> dict[str, Any]:
    root = resolve_powercap_root(powercap_root)
    sensors, statuses = discover_sensors(root)
    result: dict[str, Any] = {
        "benchmark": "sampler_cost",
        "host": platform.node(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "sensor_status": [dataclasses.asdict(s) for s in statuses],
        "synthetic": not sensors,
    }
    with tempfile.TemporaryDirectory(prefix="greenrt-bench-") as tmp:
        if simulated_gpus:
            sensors, result["note"] = simulated_host(Path(tmp), simulated_gpus)
            result["synthetic"] = True
        elif not sensors:
            helper = _load_powercap_helper()
            tree = helper.make_powercap_tree(Path(tmp) / "powercap", packages=2, dram=True)
            sensors = [RaplSensor(tree.root)]
            result["note"] = (
                f"no readable RAPL or NVML on this host ({'; '.join(s.reason for s in statuses)}): measured on a "
                f"SYNTHETIC powercap tree with {len(sensors[0].channels())} zones, i.e. the sampler's own "
                "overhead, not the kernel's RAPL read path"
            )
        else:
            result["note"] = "measured with this host's sensors: " + ", ".join(s.name for s in sensors)
        result["sensors"] = {name: dom for s in sensors for name, dom in s.channels().items()}
        result["runs"] = [measure(sensors, interval, duration_s) for interval in intervals]
    for s in sensors:
        s.close()
    return result


def _print(result: dict[str, Any]) -> None:
    print(f"sampler cost on {result['host']} (Python {result['python']}, {result['cpu_count']} CPUs)")
    print(f"  {result['note']}")
    for run in result["runs"]:
        print(
            f"  every {run['interval_s'] * 1e3:g} ms for {run['wall_s']:.1f} s: "
            f"sampler thread {run['sampler_thread_cpu_percent_of_one_core']:.3f}% of one core "
            f"(process {run['process_cpu_percent_of_one_core']:.3f}%), {run['cpu_us_per_poll']:g} us CPU per poll "
            f"of {run['channels']} channels, {run['polls']} polls, gaps median {run['gap_ms_median']:g} ms "
            f"p99 {run['gap_ms_p99']:g} ms max {run['gap_ms_max']:g} ms, {run['read_errors']} read errors"
        )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per interval (default 10)")
    parser.add_argument("--intervals", type=float, nargs="+", default=[0.05, 0.01], help="seconds")
    parser.add_argument("--powercap-root", default=None, help="powercap sysfs root (else $GREENRT_POWERCAP_ROOT)")
    parser.add_argument("--simulated-gpus", type=int, default=0,
                        help="poll this many simulated NVIDIA GPUs and 4 synthetic RAPL zones instead")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    result = run_benchmark(args.duration, tuple(args.intervals), args.powercap_root, args.simulated_gpus)
    _print(result)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
