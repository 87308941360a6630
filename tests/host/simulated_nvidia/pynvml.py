"""A simulated NVIDIA host, as a `pynvml` module: for greenrt's process-tier tests only, never for product code.

Tests put this folder FIRST on the PYTHONPATH of a real `greenrt` subprocess, so that its `import pynvml` gets
this module instead of nvidia-ml-py. The host it simulates is described by the JSON file named in GREENRT_SIM_NVML
(written by tests/host/testkit/nvidia_host.py); without that variable nvmlInit raises NVMLError_LibraryNotFound, as on a
host without a driver. Names, signatures and return types follow nvidia-ml-py 13's pynvml; anything else is an
AttributeError (a product call the simulator does not know must fail loudly, never get a made-up value).

The model, per GPU (all on time.monotonic_ns(), the clock greenrt's sampler stamps samples with):
  - true power is constant between consecutive calls for that GPU (a new segment starts at a call at least
    MIN_SEGMENT_NS after the previous one): idle_w or load_w, plus a sinusoidal wobble, so true energy is piecewise
    linear and a test interpolates it exactly. Every segment start is appended to the truth log.
  - busy: while a live process on this host has GREENRT_OWNER_PID=<pid of this process> in its environment (the
    local launcher marks every runner so), depending on busy_mode: "assigned-runner" (busy only when the runner's
    CUDA_VISIBLE_DEVICES names this GPU), "any-runner", "never" or "always".
  - nvmlDeviceGetTotalEnergyConsumption: the true energy at the last multiple of counter_period_s (mJ, int), like
    a real counter that only moves at its update ticks; NotSupported where the GPU has none (pre-Volta).
  - nvmlDeviceGetPowerUsage: the mean true power over the last power_average_s (1 s on Ampere and newer except
    GA100, by name, unless the config says otherwise), or the instantaneous true power (0: older GPUs, A100).
  - temperature relaxes exponentially toward idle_c + c_per_w * (power - idle_w), with time constant tau_s
    (cooling_tau_s when falling, if given); read as an int, like NVML's.
  - a GPU with handle_refused answers nvmlDeviceGetHandleByIndex with NVMLError_NoPermission (a Slurm job's device
    cgroup); it is still simulated, so its truth is logged.
  - a GPU can be lost (NVMLError_GpuIsLost on every call with its handle) lost_after_s after this process first
    initialised NVML, or lost_after_busy_s after it first became busy.

Truth log (tab-separated, one line per segment start, appended by every process that simulates this host):
  pid  t_ns  gpu_index  true_energy_J  true_power_W  busy(0/1)  temperature_C  event
event: "init" (first segment), "seg" (a new segment), "lost" (the GPU fell off the bus at t_ns; no more lines).
"""
from __future__ import annotations

import json
import math
import operator
import os
import re
import threading
import time
from collections import deque
from typing import Any

__version__ = "13.0.0+greenrt-simulated"
SIMULATED = True  # lets a test assert it got this module, not nvidia-ml-py

CONFIG_ENV = "GREENRT_SIM_NVML"
OWNER_ENV = "GREENRT_OWNER_PID"
MIN_SEGMENT_NS = 5_000_000  # calls closer than this to the segment start extend it (one read's calls are µs apart)

# --- constants (values as in nvidia-ml-py) -------------------------------------------------------------------------
NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_GRAPHICS = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_CLOCK_VIDEO = 3

NVML_DEVICE_ARCH_KEPLER = 2
NVML_DEVICE_ARCH_MAXWELL = 3
NVML_DEVICE_ARCH_PASCAL = 4
NVML_DEVICE_ARCH_VOLTA = 5
NVML_DEVICE_ARCH_TURING = 6
NVML_DEVICE_ARCH_AMPERE = 7
NVML_DEVICE_ARCH_ADA = 8
NVML_DEVICE_ARCH_HOPPER = 9
NVML_DEVICE_ARCH_BLACKWELL = 10
NVML_DEVICE_ARCH_UNKNOWN = 0xFFFFFFFF

nvmlClocksEventReasonGpuIdle = 0x0000000000000001
nvmlClocksEventReasonNone = 0x0000000000000000
nvmlClocksThrottleReasonGpuIdle = nvmlClocksEventReasonGpuIdle
nvmlClocksThrottleReasonNone = nvmlClocksEventReasonNone

NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999


# --- errors: NVMLError(code) gives the subclass, and each subclass is raised bare, as with nvidia-ml-py ------------
class NVMLError(Exception):
    _valClassMapping: dict[int, type] = {}
    _errcode_to_string = {
        NVML_ERROR_UNINITIALIZED: "Uninitialized",
        NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
        NVML_ERROR_NOT_SUPPORTED: "Not Supported",
        NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
        NVML_ERROR_NOT_FOUND: "Not Found",
        NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
        NVML_ERROR_TIMEOUT: "Timeout",
        NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
        NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
        NVML_ERROR_GPU_IS_LOST: "GPU is lost",
        NVML_ERROR_UNKNOWN: "Unknown Error",
    }
    _code = NVML_ERROR_UNKNOWN

    def __new__(cls, value: int | None = None, *args: Any):
        if cls is NVMLError and value is not None:
            cls = NVMLError._valClassMapping.get(value, cls)
        obj = Exception.__new__(cls)
        obj.value = cls._code if value is None or cls is not NVMLError else value
        return obj

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)

    def __str__(self) -> str:
        return self._errcode_to_string.get(self.value, f"NVML Error with code {self.value}")


def _error_class(name: str, code: int) -> type:
    cls = type(name, (NVMLError,), {"_code": code, "__module__": __name__})
    NVMLError._valClassMapping[code] = cls
    return cls


NVMLError_Uninitialized = _error_class("NVMLError_Uninitialized", NVML_ERROR_UNINITIALIZED)
NVMLError_InvalidArgument = _error_class("NVMLError_InvalidArgument", NVML_ERROR_INVALID_ARGUMENT)
NVMLError_NotSupported = _error_class("NVMLError_NotSupported", NVML_ERROR_NOT_SUPPORTED)
NVMLError_NoPermission = _error_class("NVMLError_NoPermission", NVML_ERROR_NO_PERMISSION)
NVMLError_NotFound = _error_class("NVMLError_NotFound", NVML_ERROR_NOT_FOUND)
NVMLError_DriverNotLoaded = _error_class("NVMLError_DriverNotLoaded", NVML_ERROR_DRIVER_NOT_LOADED)
NVMLError_Timeout = _error_class("NVMLError_Timeout", NVML_ERROR_TIMEOUT)
NVMLError_LibraryNotFound = _error_class("NVMLError_LibraryNotFound", NVML_ERROR_LIBRARY_NOT_FOUND)
NVMLError_FunctionNotFound = _error_class("NVMLError_FunctionNotFound", NVML_ERROR_FUNCTION_NOT_FOUND)
NVMLError_GpuIsLost = _error_class("NVMLError_GpuIsLost", NVML_ERROR_GPU_IS_LOST)
NVMLError_Unknown = _error_class("NVMLError_Unknown", NVML_ERROR_UNKNOWN)

_INIT_ERRORS = {"LibraryNotFound": NVMLError_LibraryNotFound, "DriverNotLoaded": NVMLError_DriverNotLoaded,
                "NoPermission": NVMLError_NoPermission, "Unknown": NVMLError_Unknown}


# --- what a GPU's name implies (the simulator's own table: it must not borrow the product's) ---------------------
# (pattern, architecture, compute capability, energy counter, 1-second power average)
_FAMILIES: tuple[tuple[str, int, tuple[int, int], bool, bool], ...] = (
    (r"\bG?B(100|200|300)\b|Blackwell|RTX 50\d\d", NVML_DEVICE_ARCH_BLACKWELL, (10, 0), True, True),
    (r"\bG?H(100|200|800|20)\b", NVML_DEVICE_ARCH_HOPPER, (9, 0), True, True),
    (r"\bL(4|20|40S?)\b|RTX 40\d\d|\bAda\b", NVML_DEVICE_ARCH_ADA, (8, 9), True, True),
    (r"\bA(100|30|800)\b", NVML_DEVICE_ARCH_AMPERE, (8, 0), True, False),  # GA100: instantaneous power
    (r"\bA(2|10G?|10M|16|40)\b|RTX A\d{4}|RTX 30\d\d", NVML_DEVICE_ARCH_AMPERE, (8, 6), True, True),
    (r"\bT4\b|RTX 20\d\d|Quadro RTX", NVML_DEVICE_ARCH_TURING, (7, 5), True, False),
    (r"\bV100\b|TITAN V\b", NVML_DEVICE_ARCH_VOLTA, (7, 0), True, False),
    (r"\bP(4|40|100)\b|GTX 10\d\d|TITAN X", NVML_DEVICE_ARCH_PASCAL, (6, 0), False, False),
    (r"\bK(80|40|20)\b", NVML_DEVICE_ARCH_KEPLER, (3, 7), False, False),
)


def _family(name: str) -> tuple[int, tuple[int, int], bool, bool]:
    for pattern, arch, cc, counter, averaged in _FAMILIES:
        if re.search(pattern, name, re.IGNORECASE):
            return arch, cc, counter, averaged
    return NVML_DEVICE_ARCH_UNKNOWN, (0, 0), True, False


# --- the host ------------------------------------------------------------------------------------------------------
class _Handle:
    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"<simulated nvmlDevice_t {self.index}>"


class c_nvmlPciInfo_t:  # noqa: N801 - pynvml's name
    def __init__(self, bus_id: str) -> None:
        self.busId = bus_id  # "00000000:19:00.0"
        domain, bus, rest = bus_id.split(":")
        device, _ = rest.split(".")
        self.busIdLegacy = f"{int(domain, 16):04x}:{bus}:{rest}".upper()
        self.domain, self.bus, self.device = int(domain, 16), int(bus, 16), int(device, 16)
        self.pciDeviceId = 0x233510DE
        self.pciSubSystemId = 0x18A610DE


class c_nvmlMemory_t:  # noqa: N801
    def __init__(self, total: int, used: int, version: int | None = None) -> None:
        self.total, self.used, self.free = total, used, total - used
        if version:
            self.version, self.reserved = version, 0


class _Gpu:
    def __init__(self, index: int, spec: dict[str, Any], host: _Host) -> None:
        self.index, self.host = index, host
        self.name = spec["name"]
        self.uuid = spec["uuid"]
        self.pci_bus_id = spec["pci_bus_id"]
        arch, cc, counter, averaged = _family(self.name)
        self.architecture = spec.get("architecture", arch)
        self.compute_capability = tuple(spec.get("compute_capability", cc))
        self.mig = spec.get("mig")  # None: no MIG on this GPU (NotSupported); False/True: MIG mode disabled/enabled
        # nvmlDeviceGetHandleByIndex raises NoPermission for this GPU, as under a Slurm job's device cgroup.
        self.handle_refused = bool(spec.get("handle_refused", False))
        self.other_pids = [int(pid) for pid in spec.get("other_pids", [])]
        self.energy_counter = spec.get("energy_counter", counter)
        average_s = spec.get("power_average_s")
        self.power_average_ns = int((1.0 if averaged else 0.0) * 1e9 if average_s is None else average_s * 1e9)
        self.idle_w = float(spec.get("idle_w", 60.0))
        self.load_w = float(spec.get("load_w", 300.0))
        self.wobble_w = float(spec.get("wobble_w", 2.0))
        self.wobble_period_s = float(spec.get("wobble_period_s", 7.0))
        self.wobble_phase = float(spec.get("wobble_phase", 1.3 * index))
        self.counter_period_ns = max(1, int(float(spec.get("counter_period_s", 0.1)) * 1e9))
        temperature = spec.get("temperature") or {}
        self.idle_c = float(temperature.get("idle_c", 35.0))
        self.c_per_w = float(temperature.get("c_per_w", 0.1))
        self.tau_s = float(temperature.get("tau_s", 5.0))
        cooling = temperature.get("cooling_tau_s")
        self.cooling_tau_s = self.tau_s if cooling is None else float(cooling)
        self.unsupported = set(spec.get("unsupported", []))
        self.lost_after_s = spec.get("lost_after_s")
        self.lost_after_busy_s = spec.get("lost_after_busy_s")
        self.busy_mode = spec.get("busy_mode") or host.busy_mode
        self.sm_clock = tuple(spec.get("sm_clock_mhz", (345, 1980)))  # idle, busy
        self.mem_clock = int(spec.get("mem_clock_mhz", 2619))
        self.busy_reasons = int(spec.get("busy_clock_event_reasons", nvmlClocksEventReasonNone))
        self.power_limit_mw = int(float(spec.get("power_limit_w", max(self.load_w * 1.5, 100.0))) * 1000)
        self.memory_total = int(spec.get("memory_total_bytes", 80 * 2**30))
        self.handle = _Handle(index)
        # State: the current segment (start, true energy and temperature there, constant power over it).
        now = host.t0_ns
        self.seg_t = now
        self.seg_e = float(spec.get("energy_start_j", 1_000_000.0 + 1000.0 * index))
        self.seg_busy = False
        self.seg_temp = float(temperature.get("start_c", self.idle_c))
        self.seg_p = self._true_power(now, False)
        self.history: deque[tuple[int, float, float]] = deque([(self.seg_t, self.seg_e, self.seg_p)])
        self.counter_tick = now // self.counter_period_ns
        self.counter_j = self.seg_e
        self.first_busy_ns: int | None = None
        self.lost_ns: int | None = None
        host.log(self, "init")

    # The physics.
    def _true_power(self, t_ns: int, busy: bool) -> float:
        base = self.load_w if busy else self.idle_w
        return base + self.wobble_w * math.sin(2 * math.pi * t_ns / 1e9 / self.wobble_period_s + self.wobble_phase)

    def _target_c(self, power_w: float) -> float:
        return self.idle_c + self.c_per_w * (power_w - self.idle_w)

    def energy_at(self, t_ns: int) -> float:
        """True cumulative energy at t_ns (within the kept history)."""
        for start, energy, power in reversed(self.history):
            if start <= t_ns:
                return energy + power * (t_ns - start) / 1e9
        start, energy, _ = self.history[0]
        return energy

    def temperature_at(self, t_ns: int) -> float:
        target = self._target_c(self.seg_p)
        tau = self.tau_s if target >= self.seg_temp else self.cooling_tau_s
        dt = (t_ns - self.seg_t) / 1e9
        return target + (self.seg_temp - target) * (math.exp(-dt / tau) if tau > 0 else 0.0)

    def _lost_deadline(self) -> int | None:
        deadlines = []
        if self.lost_after_s is not None:
            deadlines.append(self.host.t0_ns + int(float(self.lost_after_s) * 1e9))
        if self.lost_after_busy_s is not None and self.first_busy_ns is not None:
            deadlines.append(self.first_busy_ns + int(float(self.lost_after_busy_s) * 1e9))
        return min(deadlines) if deadlines else None

    def advance(self) -> int:
        """Bring the GPU to now (raising GpuIsLost once it is lost); returns now."""
        if self.lost_ns is not None:
            raise NVMLError_GpuIsLost()
        busy = self.host.busy(self)  # may scan /proc: before reading the clock
        now = time.monotonic_ns()
        deadline = self._lost_deadline()
        if deadline is not None and now >= deadline:
            self._update_counter(max(deadline, self.seg_t))
            self.lost_ns = max(deadline, self.seg_t)
            self.host.log(self, "lost", t_ns=self.lost_ns, energy=self.energy_at(self.lost_ns),
                          temperature=self.temperature_at(self.lost_ns))
            raise NVMLError_GpuIsLost()
        self._update_counter(now)
        if now - self.seg_t >= MIN_SEGMENT_NS:
            energy, temp = self.energy_at(now), self.temperature_at(now)
            self.seg_t, self.seg_e, self.seg_temp, self.seg_busy = now, energy, temp, busy
            self.seg_p = self._true_power(now, busy)
            if busy and self.first_busy_ns is None:
                self.first_busy_ns = now
            self.history.append((now, energy, self.seg_p))
            horizon = now - max(self.power_average_ns, 0) - 1_000_000_000
            while len(self.history) > 1 and self.history[1][0] <= horizon:
                self.history.popleft()
            self.host.log(self, "seg")
        return now

    def _update_counter(self, now: int) -> None:
        tick = now // self.counter_period_ns
        if tick > self.counter_tick:
            self.counter_tick = tick
            self.counter_j = self.energy_at(tick * self.counter_period_ns)

    def power_reading_w(self, now: int) -> float:
        if self.power_average_ns <= 0:
            return self.seg_p
        start = max(now - self.power_average_ns, self.host.t0_ns)
        if now <= start:
            return self.seg_p
        return (self.energy_at(now) - self.energy_at(start)) / ((now - start) / 1e9)


class _Host:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.pid = os.getpid()
        self.t0_ns = time.monotonic_ns()
        self.driver_version = str(config.get("driver_version", "580.95.05"))
        self.cuda_driver_version = int(config.get("cuda_driver_version", 13000))
        self.busy_mode = config.get("busy_mode", "any-runner")
        if self.busy_mode not in ("assigned-runner", "any-runner", "never", "always"):
            raise ValueError(f"simulated pynvml: unknown busy_mode {self.busy_mode!r}")
        self.scan_interval_ns = int(float(config.get("scan_interval_s", 0.1)) * 1e9)
        self.missing_functions = set(config.get("missing_functions", []))
        self.owner = f"{OWNER_ENV}={int(config.get('owner_pid') or self.pid)}".encode()
        self._scanned_ns: int | None = None
        self._runners: list[dict[str, str]] = []
        path = config.get("truth_log")
        self._truth = open(path, "a", buffering=1) if path else None
        self.gpus = [_Gpu(i, spec, self) for i, spec in enumerate(config.get("gpus", []))]
        by_bus = sorted(self.gpus, key=lambda g: g.pci_bus_id.lower())
        self.pci_order = {g.index: k for k, g in enumerate(by_bus)}

    def log(self, gpu: _Gpu, event: str, t_ns: int | None = None, energy: float | None = None,
            temperature: float | None = None) -> None:
        if self._truth is None:
            return
        t = gpu.seg_t if t_ns is None else t_ns
        e = gpu.seg_e if energy is None else energy
        c = gpu.seg_temp if temperature is None else temperature
        self._truth.write(f"{self.pid}\t{t}\t{gpu.index}\t{e!r}\t{gpu.seg_p!r}\t{int(gpu.seg_busy)}\t{c:.4f}\t{event}\n")

    # Which runners live, and what they were given.
    def runners(self) -> list[dict[str, str]]:
        now = time.monotonic_ns()
        if self._scanned_ns is not None and now - self._scanned_ns < self.scan_interval_ns:
            return self._runners
        found = []
        try:
            entries = os.listdir("/proc")
        except OSError:
            entries = []
        for name in entries:
            if not name.isdigit() or int(name) == self.pid:
                continue
            try:
                with open(f"/proc/{name}/environ", "rb") as fh:
                    environ = fh.read().split(b"\0")
                if self.owner not in environ:
                    continue
                with open(f"/proc/{name}/stat") as fh:
                    if fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                        continue
            except OSError:  # gone, or not ours to read
                continue
            env = dict(item.decode(errors="replace").split("=", 1) for item in environ if b"=" in item)
            found.append({"pid": name, "CUDA_VISIBLE_DEVICES": env.get("CUDA_VISIBLE_DEVICES"),
                          "CUDA_DEVICE_ORDER": env.get("CUDA_DEVICE_ORDER", "FASTEST_FIRST")})
        self._runners, self._scanned_ns = found, now
        return found

    def busy(self, gpu: _Gpu) -> bool:
        mode = gpu.busy_mode
        if mode == "never":
            return False
        if mode == "always":
            return True
        runners = self.runners()
        if mode == "any-runner":
            return bool(runners)
        return any(self.visible_to(runner, gpu) for runner in runners)

    def visible_to(self, runner: dict[str, str], gpu: _Gpu) -> bool:
        """Whether CUDA would show this GPU to the runner, as CUDA parses CUDA_VISIBLE_DEVICES: unset = all, empty
        = none; entries are UUIDs (or unique prefixes of one) or indices; parsing stops at the first invalid entry.
        An index means the PCI-bus-order position only under CUDA_DEVICE_ORDER=PCI_BUS_ID; otherwise CUDA counts
        fastest first, which this simulator cannot know, so an index then names no GPU."""
        value = runner["CUDA_VISIBLE_DEVICES"]
        if value is None:
            return True
        for entry in (e.strip() for e in value.split(",")):
            if entry.upper().startswith("GPU-"):
                matches = [g for g in self.gpus if g.uuid.upper().startswith(entry.upper())]
                if len(matches) != 1:
                    return False
                if matches[0] is gpu:
                    return True
            elif entry.isdigit():
                if int(entry) >= len(self.gpus):
                    return False
                if runner["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID" and self.pci_order[gpu.index] == int(entry):
                    return True
            else:
                return False
        return False


_lock = threading.RLock()
_host: _Host | None = None
_init_count = 0


def _check(function: str) -> _Host:
    if function in (_host.missing_functions if _host else ()):
        raise NVMLError_FunctionNotFound()
    if _host is None or _init_count <= 0:
        raise NVMLError_Uninitialized()
    return _host


def _device(function: str, handle: Any, field: str | None = None) -> tuple[_Gpu, int]:
    host = _check(function)
    if not isinstance(handle, _Handle) or not 0 <= handle.index < len(host.gpus):
        raise NVMLError_InvalidArgument()
    gpu = host.gpus[handle.index]
    now = gpu.advance()  # a lost GPU raises here, before anything else is looked at
    if field is not None and field in gpu.unsupported:
        raise NVMLError_NotSupported()
    return gpu, now


# --- the API -------------------------------------------------------------------------------------------------------
def nvmlInit() -> None:
    global _host, _init_count
    with _lock:
        path = os.environ.get(CONFIG_ENV)
        if not path:
            raise NVMLError_LibraryNotFound()
        if _host is None:
            with open(path) as fh:
                config = json.load(fh)
            if config.get("init_error"):
                raise _INIT_ERRORS[config["init_error"]]()
            _host = _Host(config)
        _init_count += 1


def nvmlInitWithFlags(flags: int) -> None:
    nvmlInit()


def nvmlShutdown() -> None:
    global _init_count
    with _lock:
        if _host is None or _init_count <= 0:
            raise NVMLError_Uninitialized()
        _init_count -= 1


def nvmlSystemGetDriverVersion() -> str:
    with _lock:
        return _check("nvmlSystemGetDriverVersion").driver_version


def nvmlSystemGetCudaDriverVersion() -> int:
    with _lock:
        return _check("nvmlSystemGetCudaDriverVersion").cuda_driver_version


def nvmlSystemGetCudaDriverVersion_v2() -> int:
    with _lock:
        return _check("nvmlSystemGetCudaDriverVersion_v2").cuda_driver_version


def nvmlSystemGetNVMLVersion() -> str:
    with _lock:
        host = _check("nvmlSystemGetNVMLVersion")  # e.g. "12.550.54.15": CUDA major, then the driver's version
        return f"{host.cuda_driver_version // 1000}.{host.driver_version}"


def nvmlDeviceGetCount() -> int:
    with _lock:
        return len(_check("nvmlDeviceGetCount").gpus)


def _by(function: str, match) -> _Handle:
    host = _check(function)
    for gpu in host.gpus:
        if match(gpu):
            if gpu.handle_refused:
                raise NVMLError_NoPermission()
            if gpu.lost_ns is not None:
                raise NVMLError_GpuIsLost()
            return gpu.handle
    raise NVMLError_NotFound()


def nvmlDeviceGetHandleByIndex(index: int) -> _Handle:
    with _lock:
        host = _check("nvmlDeviceGetHandleByIndex")
        try:
            index = operator.index(index)  # what ctypes' c_uint takes: ints, numpy ints; not floats or strings
        except TypeError:
            raise NVMLError_InvalidArgument() from None
        if not 0 <= index < len(host.gpus):
            raise NVMLError_InvalidArgument()
        gpu = host.gpus[index]
        if gpu.handle_refused:
            raise NVMLError_NoPermission()
        if gpu.lost_ns is not None:
            raise NVMLError_GpuIsLost()
        return gpu.handle


def nvmlDeviceGetHandleByUUID(uuid: str | bytes) -> _Handle:
    text = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
    with _lock:
        return _by("nvmlDeviceGetHandleByUUID", lambda g: g.uuid.lower() == text.lower())


def nvmlDeviceGetHandleByPciBusId(pciBusId: str | bytes) -> _Handle:  # noqa: N803 - pynvml's name
    text = (pciBusId.decode() if isinstance(pciBusId, bytes) else str(pciBusId)).lower()

    def same(gpu: _Gpu) -> bool:  # NVML accepts the 8-digit and the 4-digit domain forms
        mine = gpu.pci_bus_id.lower()
        return text == mine or (text.count(":") == 2 and text.split(":", 1)[1] == mine.split(":", 1)[1]
                                and int(text.split(":")[0], 16) == int(mine.split(":")[0], 16))
    with _lock:
        return _by("nvmlDeviceGetHandleByPciBusId", same)


def nvmlDeviceGetIndex(handle: _Handle) -> int:
    with _lock:
        return _device("nvmlDeviceGetIndex", handle)[0].index


def nvmlDeviceGetName(handle: _Handle) -> str:
    with _lock:
        return _device("nvmlDeviceGetName", handle)[0].name


def nvmlDeviceGetUUID(handle: _Handle) -> str:
    with _lock:
        return _device("nvmlDeviceGetUUID", handle)[0].uuid


def nvmlDeviceGetPciInfo(handle: _Handle) -> c_nvmlPciInfo_t:
    with _lock:
        return c_nvmlPciInfo_t(_device("nvmlDeviceGetPciInfo", handle)[0].pci_bus_id)


nvmlDeviceGetPciInfo_v3 = nvmlDeviceGetPciInfo


def nvmlDeviceGetTotalEnergyConsumption(handle: _Handle) -> int:
    with _lock:
        gpu, _ = _device("nvmlDeviceGetTotalEnergyConsumption", handle, "energy")
        if not gpu.energy_counter:
            raise NVMLError_NotSupported()
        return int(gpu.counter_j * 1000)


def nvmlDeviceGetPowerUsage(handle: _Handle) -> int:
    with _lock:
        gpu, now = _device("nvmlDeviceGetPowerUsage", handle, "power")
        return int(round(gpu.power_reading_w(now) * 1000))


def nvmlDeviceGetTemperature(handle: _Handle, sensor: int) -> int:
    with _lock:
        gpu, now = _device("nvmlDeviceGetTemperature", handle, "temperature")
        if sensor != NVML_TEMPERATURE_GPU:
            raise NVMLError_InvalidArgument()
        return int(round(gpu.temperature_at(now)))


def nvmlDeviceGetClockInfo(handle: _Handle, type: int) -> int:  # noqa: A002 - pynvml's name
    with _lock:
        gpu, _ = _device("nvmlDeviceGetClockInfo", handle, "clocks")
        if type in (NVML_CLOCK_GRAPHICS, NVML_CLOCK_SM):
            return int(gpu.sm_clock[1] if gpu.seg_busy else gpu.sm_clock[0])
        if type == NVML_CLOCK_MEM:
            return gpu.mem_clock
        if type == NVML_CLOCK_VIDEO:
            return 1305 if gpu.seg_busy else 555
        raise NVMLError_InvalidArgument()


def _reasons(function: str, handle: _Handle) -> int:
    with _lock:
        gpu, _ = _device(function, handle, "clock_event_reasons")
        return gpu.busy_reasons if gpu.seg_busy else nvmlClocksEventReasonGpuIdle


def nvmlDeviceGetCurrentClocksEventReasons(handle: _Handle) -> int:
    return _reasons("nvmlDeviceGetCurrentClocksEventReasons", handle)


def nvmlDeviceGetCurrentClocksThrottleReasons(handle: _Handle) -> int:
    return _reasons("nvmlDeviceGetCurrentClocksThrottleReasons", handle)


def nvmlDeviceGetPowerManagementLimit(handle: _Handle) -> int:
    with _lock:
        return _device("nvmlDeviceGetPowerManagementLimit", handle, "power_limit")[0].power_limit_mw


def nvmlDeviceGetMemoryInfo(handle: _Handle, version: int | None = None) -> c_nvmlMemory_t:
    with _lock:
        gpu, _ = _device("nvmlDeviceGetMemoryInfo", handle, "memory")
        used = (6 if gpu.seg_busy else 0.5) * 2**30
        return c_nvmlMemory_t(gpu.memory_total, int(used), version)


def nvmlDeviceGetArchitecture(device: _Handle) -> int:
    with _lock:
        return _device("nvmlDeviceGetArchitecture", device)[0].architecture


def nvmlDeviceGetCudaComputeCapability(handle: _Handle) -> tuple[int, int]:
    with _lock:
        major, minor = _device("nvmlDeviceGetCudaComputeCapability", handle)[0].compute_capability
        return (int(major), int(minor))


class c_nvmlProcessInfo_t:  # noqa: N801 - pynvml's name
    def __init__(self, pid: int, used: int | None) -> None:
        self.pid = pid
        self.usedGpuMemory = used  # None where NVML cannot say (pynvml maps NVML_VALUE_NOT_AVAILABLE to None)
        self.gpuInstanceId = self.computeInstanceId = 0xFFFFFFFF


def nvmlDeviceGetComputeRunningProcesses(handle: _Handle) -> list[c_nvmlProcessInfo_t]:
    """Live runners that see this GPU (as busy_mode "assigned-runner" counts them), then the GPU's other_pids."""
    with _lock:
        gpu, _ = _device("nvmlDeviceGetComputeRunningProcesses", handle)
        host = gpu.host
        found = [c_nvmlProcessInfo_t(int(r["pid"]), 2 * 2**30) for r in host.runners() if host.visible_to(r, gpu)]
        return found + [c_nvmlProcessInfo_t(pid, 512 * 2**20) for pid in gpu.other_pids]


NVML_DEVICE_MIG_DISABLE = 0
NVML_DEVICE_MIG_ENABLE = 1


def nvmlDeviceGetMigMode(device: _Handle) -> list[int]:
    """[current, pending], as nvidia-ml-py returns them; NotSupported on a GPU without MIG."""
    with _lock:
        gpu = _device("nvmlDeviceGetMigMode", device)[0]
        if gpu.mig is None:
            raise NVMLError_NotSupported()
        mode = NVML_DEVICE_MIG_ENABLE if gpu.mig else NVML_DEVICE_MIG_DISABLE
        return [mode, mode]


def __getattr__(name: str) -> Any:
    # Only reached for names this module does not define: say so, rather than let a test pass on a made-up value.
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"simulated pynvml (tests/host/simulated_nvidia) does not implement {name!r}; add it to "
                         f"the simulator with nvidia-ml-py's signature if greenrt needs it")
