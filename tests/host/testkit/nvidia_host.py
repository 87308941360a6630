"""A simulated NVIDIA host for tests: its description, the environment of a greenrt subprocess on it, and the truth.

    host = SimHost([SimGpu("NVIDIA H200"), SimGpu("NVIDIA H200")], busy_mode="any-runner").write(tmp / "host")
    done = run_greenrt(["sweep", ...], env=host.env())     # tests/host/simulated_nvidia first on PYTHONPATH
    truth = host.truth()
    joules = truth.energy_between(done.pid, 0, start_ns, end_ns)   # GPU 0's TRUE energy over a window

The simulator itself is tests/host/simulated_nvidia/pynvml.py (its docstring describes the model and the truth
log). Every host gets its own host-lock folder (GREENRT_LOCK_DIR), like testkit/faults_helpers.py, so these
sweeps neither wait on nor block another sweep on the machine.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import os
import subprocess
import uuid as uuidlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from testkit.paths import ORCHESTRATOR_FAULTS, SIMULATED_NVIDIA
from testkit.sweep_helpers import GREENRT

SIMULATOR_DIR = SIMULATED_NVIDIA
ORCHESTRATOR_FAULTS_DIR = ORCHESTRATOR_FAULTS
BusyMode = Literal["assigned-runner", "any-runner", "never", "always"]
# PCI bus ids as NVML writes them (8-digit domain, upper-case hex), in bus order: NVML index i is the i-th.
BUS_IDS = ("00000000:19:00.0", "00000000:3B:00.0", "00000000:5D:00.0", "00000000:9B:00.0",
           "00000000:BB:00.0", "00000000:DB:00.0", "00000000:E1:00.0", "00000000:F1:00.0")


def sim_uuid(index: int, salt: str = "greenrt") -> str:
    digest = hashlib.sha256(f"{salt}:{index}".encode()).digest()[:16]
    return f"GPU-{uuidlib.UUID(bytes=digest)}"


@dataclass
class SimTemperature:
    idle_c: float = 35.0
    c_per_w: float = 0.1  # the temperature it settles at rises this much per watt above idle
    tau_s: float = 5.0  # exponential time constant (heating, and cooling unless cooling_tau_s is set)
    cooling_tau_s: float | None = None


@dataclass
class SimGpu:
    name: str = "NVIDIA H200"
    uuid: str | None = None  # default: a fixed UUID per index
    pci_bus_id: str | None = None  # default: BUS_IDS[index]
    idle_w: float = 60.0
    load_w: float = 300.0
    wobble_w: float = 2.0  # sinusoid amplitude added to the true power, so no two windows draw the same
    wobble_period_s: float = 7.0
    energy_counter: bool | None = None  # default: by architecture (Volta and newer have one)
    counter_period_s: float = 0.1  # the counter moves only at multiples of this
    power_average_s: float | None = None  # nvmlDeviceGetPowerUsage: None = by name (1 s on Ampere+ but GA100)
    temperature: SimTemperature = field(default_factory=SimTemperature)
    lost_after_s: float | None = None  # after this process's first nvmlInit
    lost_after_busy_s: float | None = None  # after the GPU first became busy in this process
    unsupported: tuple[str, ...] = ()  # of: temperature, clocks, clock_event_reasons, power, power_limit, memory
    memory_total_bytes: int = 143_771 * 2**20  # nvmlDeviceGetMemoryInfo's total (an H200: 143,771 MiB)
    busy_mode: BusyMode | None = None  # default: the host's
    compute_capability: tuple[int, int] | None = None  # default: by name (an H100/H200 is 9.0)
    mig: bool | None = None  # None: a GPU without MIG; False/True: MIG mode disabled/enabled
    handle_refused: bool = False  # nvmlDeviceGetHandleByIndex raises NoPermission (Slurm's device cgroups)
    # nvmlDeviceGetComputeRunningProcesses lists these pids (another user's job on this GPU) besides live runners
    # that see the GPU.
    other_pids: tuple[int, ...] = ()

    @property
    def max_power_w(self) -> float:
        return max(self.idle_w, self.load_w) + abs(self.wobble_w)


@dataclass
class SimHost:
    gpus: list[SimGpu]
    busy_mode: BusyMode = "any-runner"
    driver_version: str = "580.95.05"  # the 580 branch: what the CUDA 13 images need
    cuda_driver_version: int | None = None  # nvmlSystemGetCudaDriverVersion(_v2), e.g. 12040; default: the simulator's (13000)
    scan_interval_s: float = 0.1  # how often the simulator looks for live runners in /proc
    missing_functions: tuple[str, ...] = ()  # raise NVMLError_FunctionNotFound (an older driver)
    init_error: str | None = None  # nvmlInit raises NVMLError_<this>: DriverNotLoaded, NoPermission, ...
    owner_pid: int | None = None  # whose runners make GPUs busy (default: the simulating process)

    def __post_init__(self) -> None:
        for i, gpu in enumerate(self.gpus):
            gpu.uuid = gpu.uuid or sim_uuid(i)
            gpu.pci_bus_id = gpu.pci_bus_id or BUS_IDS[i]

    def to_json(self, truth_log: Path) -> dict:
        data = asdict(self)
        data["truth_log"] = str(truth_log)
        for gpu in data["gpus"]:
            for key in [k for k, v in gpu.items() if v is None]:
                del gpu[key]  # absent: the simulator's default (by name)
            gpu["temperature"] = {k: v for k, v in gpu["temperature"].items() if v is not None}
        return {k: v for k, v in data.items() if v is not None}

    def write(self, folder: Path) -> SimulatedHost:
        folder.mkdir(parents=True, exist_ok=True)
        config, truth = folder / "simulated-nvml.json", folder / "truth.tsv"
        config.write_text(json.dumps(self.to_json(truth), indent=1))
        (folder / "locks").mkdir(exist_ok=True)
        return SimulatedHost(self, config, truth, folder / "locks")


@dataclass
class SimulatedHost:
    spec: SimHost
    config_path: Path
    truth_path: Path
    lock_dir: Path

    @property
    def gpus(self) -> list[SimGpu]:
        return self.spec.gpus

    def env(self, *, pythonpath: tuple[Path, ...] = (), **extra: str) -> dict[str, str]:
        """The environment of a greenrt subprocess on this host: the simulator first on PYTHONPATH."""
        env = {**os.environ, **extra}
        parts = [str(SIMULATOR_DIR), *map(str, pythonpath), *filter(None, [os.environ.get("PYTHONPATH")])]
        env["PYTHONPATH"] = os.pathsep.join(parts)
        env["GREENRT_SIM_NVML"] = str(self.config_path)
        env["GREENRT_LOCK_DIR"] = str(self.lock_dir)
        return env

    def truth(self) -> Truth:
        return Truth.read(self.truth_path)


@dataclass
class Segment:
    t_ns: int
    energy_j: float
    power_w: float
    busy: bool
    temperature_c: float
    event: str


class Truth:
    """The simulator's truth log, per (process, GPU): segments of constant true power."""

    def __init__(self, segments: dict[tuple[int, int], list[Segment]]) -> None:
        self.segments = segments

    @classmethod
    def read(cls, path: Path) -> Truth:
        segments: dict[tuple[int, int], list[Segment]] = {}
        for line in path.read_text().splitlines() if path.exists() else []:
            pid, t, gpu, energy, power, busy, temperature, event = line.split("\t")
            segments.setdefault((int(pid), int(gpu)), []).append(
                Segment(int(t), float(energy), float(power), busy == "1", float(temperature), event))
        for series in segments.values():
            series.sort(key=lambda s: s.t_ns)
        return cls(segments)

    def pids(self) -> set[int]:
        return {pid for pid, _ in self.segments}

    def of(self, pid: int, gpu: int) -> list[Segment]:
        try:
            return self.segments[(pid, gpu)]
        except KeyError:
            raise AssertionError(f"no truth for pid {pid} gpu {gpu}; the log has {sorted(self.segments)}") from None

    def lost_at(self, pid: int, gpu: int) -> int | None:
        return next((s.t_ns for s in self.of(pid, gpu) if s.event == "lost"), None)

    def energy_at(self, pid: int, gpu: int, t_ns: int) -> float:
        """True cumulative energy at t_ns: exact, since power is constant over each segment."""
        series = self.of(pid, gpu)
        k = bisect.bisect_right([s.t_ns for s in series], t_ns) - 1
        if k < 0:
            raise AssertionError(f"t={t_ns} is before the simulation of pid {pid} gpu {gpu} began ({series[0].t_ns})")
        segment = series[k]
        if segment.event == "lost" and t_ns > segment.t_ns:
            raise AssertionError(f"t={t_ns} is after gpu {gpu} was lost ({segment.t_ns}): no truth there")
        return segment.energy_j + segment.power_w * (t_ns - segment.t_ns) / 1e9

    def energy_between(self, pid: int, gpu: int, start_ns: int, end_ns: int) -> float:
        return self.energy_at(pid, gpu, end_ns) - self.energy_at(pid, gpu, start_ns)

    def busy_intervals(self, pid: int, gpu: int) -> list[tuple[int, int]]:
        """[start, end) of each stretch the simulator held this GPU busy (end: the next idle segment's start)."""
        out, start = [], None
        for segment in self.of(pid, gpu):
            if segment.busy and start is None:
                start = segment.t_ns
            elif not segment.busy and start is not None:
                out.append((start, segment.t_ns))
                start = None
        if start is not None:
            out.append((start, self.of(pid, gpu)[-1].t_ns))
        return out

    def power_range(self, pid: int, gpu: int, start_ns: int, end_ns: int) -> tuple[float, float]:
        """Lowest and highest true power of the segments overlapping [start_ns, end_ns]."""
        series = self.of(pid, gpu)
        powers = [s.power_w for k, s in enumerate(series)
                  if s.t_ns <= end_ns and (k + 1 == len(series) or series[k + 1].t_ns >= start_ns)]
        return min(powers), max(powers)


@dataclass
class Finished:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    pid: int  # the greenrt process: the simulating process, whose truth is logged under this pid

    @property
    def output(self) -> str:
        return f"$ greenrt {' '.join(self.args)}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def run_greenrt(args: list[str], env: dict[str, str], timeout: float = 300, cwd: Path | None = None) -> Finished:
    """Run the real CLI (as sweep_helpers.greenrt does) and keep its pid, to find its truth in the log."""
    process = subprocess.Popen([GREENRT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, cwd=cwd)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        raise AssertionError(f"greenrt {' '.join(args)} ran past {timeout:.0f} s\n{stdout}\n{stderr}") from None
    return Finished(list(args), process.returncode, stdout, stderr, process.pid)


def counter_tolerance_j(gpu: SimGpu, skew_s: float = 0.025, slack_j: float = 0.5) -> float:
    """How far a window's energy from the counter may honestly lie from the truth (see test_nvidia_host_e2e.py).

    The counter holds the true energy of its last update tick, so a sample reads between 0 and P_max * T below
    the truth at its read; the sample's timestamp (the middle of the sensor's whole read) may also lie up to
    skew_s from the instant the simulator read its clock for the counter call, worth up to P_max * skew_s either
    way. Interpolating at a window edge mixes two such samples, so each edge errs within [-P*skew, P*(T+skew)],
    and the difference of the two edges within +-P_max * (T + 2 * skew): that bound, plus slack_j for float and
    mJ rounding.
    """
    return gpu.max_power_w * (gpu.counter_period_s + 2 * skew_s) + slack_j
