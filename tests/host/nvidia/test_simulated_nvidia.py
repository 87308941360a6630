"""The simulated NVIDIA host (tests/host/simulated_nvidia/pynvml.py) behaves as specified, before anything trusts it.

Each test loads a fresh copy of the simulator under its own module name (never as `pynvml` in this process), with
GREENRT_SIM_NVML pointing at a host the test describes through nvidia_host.py.
"""
from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import time

import pytest

from testkit.nvidia_host import SIMULATOR_DIR, SimGpu, SimHost, SimTemperature, counter_tolerance_j

_loaded = 0


@pytest.fixture
def simulate(tmp_path, monkeypatch):
    """simulate(SimHost) -> (a fresh simulator module, initialised on that host, and the SimulatedHost)."""
    modules = []

    def start(spec: SimHost, init: bool = True):
        global _loaded
        host = spec.write(tmp_path / f"host{len(modules)}")
        monkeypatch.setenv("GREENRT_SIM_NVML", str(host.config_path))
        _loaded += 1
        loader = importlib.util.spec_from_file_location(f"simulated_pynvml_{_loaded}", SIMULATOR_DIR / "pynvml.py")
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
        modules.append(module)
        if init:
            module.nvmlInit()
        return module, host

    yield start
    for module in modules:
        if module._host is not None and module._host._truth is not None:
            module._host._truth.close()


class Runner:
    """A child process marked as a runner of this (simulating) process, with the CUDA variables given."""

    def __init__(self, owner: int | None = None, **cuda: str | None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUDA_")}
        env["GREENRT_OWNER_PID"] = str(os.getpid() if owner is None else owner)
        env.update({k: v for k, v in cuda.items() if v is not None})
        self.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


def settle(nv, seconds: float = 0.25) -> None:
    """Past the simulator's /proc scan interval (0.1 s unless a test sets it) and its minimum segment, then one
    call per GPU (so the state it found starts a segment)."""
    time.sleep(seconds)
    for i in range(nv.nvmlDeviceGetCount()):
        nv.nvmlDeviceGetPowerUsage(nv.nvmlDeviceGetHandleByIndex(i))
    time.sleep(0.01)


def is_busy(nv, index: int) -> bool:
    # Clock event reasons carry GpuIdle (0x1) while the GPU is idle, as on real GPUs.
    return nv.nvmlDeviceGetCurrentClocksEventReasons(nv.nvmlDeviceGetHandleByIndex(index)) == 0


def test_without_a_config_there_is_no_driver(simulate, monkeypatch):
    nv, _ = simulate(SimHost([SimGpu()]), init=False)
    monkeypatch.delenv("GREENRT_SIM_NVML")
    with pytest.raises(nv.NVMLError_LibraryNotFound) as caught:
        nv.nvmlInit()
    assert isinstance(caught.value, nv.NVMLError) and caught.value.value == nv.NVML_ERROR_LIBRARY_NOT_FOUND
    assert str(caught.value) == "NVML Shared Library Not Found"
    # NVMLError(code) gives the subclass, as nvidia-ml-py's does.
    assert type(nv.NVMLError(nv.NVML_ERROR_GPU_IS_LOST)) is nv.NVMLError_GpuIsLost


def test_an_init_error_is_raised_by_its_name(simulate):
    nv, _ = simulate(SimHost([SimGpu()], init_error="DriverNotLoaded"), init=False)
    with pytest.raises(nv.NVMLError_DriverNotLoaded):
        nv.nvmlInit()


def test_identity_of_the_gpus_and_lookups(simulate):
    spec = SimHost([SimGpu("NVIDIA H200"), SimGpu("Tesla P100-PCIE-16GB"), SimGpu("NVIDIA A100-SXM4-80GB")],
                   driver_version="570.86.10")
    nv, host = simulate(spec)
    assert nv.SIMULATED and nv.nvmlSystemGetDriverVersion() == "570.86.10"
    assert nv.nvmlDeviceGetCount() == 3
    for i, gpu in enumerate(host.gpus):
        handle = nv.nvmlDeviceGetHandleByIndex(i)
        assert nv.nvmlDeviceGetName(handle) == gpu.name
        assert nv.nvmlDeviceGetUUID(handle) == gpu.uuid and gpu.uuid.startswith("GPU-") and len(gpu.uuid) == 40
        assert nv.nvmlDeviceGetPciInfo(handle).busId == gpu.pci_bus_id
        assert nv.nvmlDeviceGetHandleByUUID(gpu.uuid) is handle
        assert nv.nvmlDeviceGetHandleByPciBusId(gpu.pci_bus_id) is handle
        assert nv.nvmlDeviceGetHandleByPciBusId(gpu.pci_bus_id[4:].lower()) is handle  # 0000:19:00.0 form
    assert host.gpus[0].pci_bus_id == "00000000:19:00.0"
    h200, p100, a100 = (nv.nvmlDeviceGetHandleByIndex(i) for i in range(3))
    assert nv.nvmlDeviceGetArchitecture(h200) == nv.NVML_DEVICE_ARCH_HOPPER
    assert nv.nvmlDeviceGetCudaComputeCapability(h200) == (9, 0)
    assert nv.nvmlDeviceGetArchitecture(p100) == nv.NVML_DEVICE_ARCH_PASCAL
    assert nv.nvmlDeviceGetCudaComputeCapability(a100) == (8, 0)
    memory = nv.nvmlDeviceGetMemoryInfo(h200)
    assert memory.total == memory.used + memory.free and memory.total > 0
    assert nv.nvmlDeviceGetPowerManagementLimit(h200) > 0
    with pytest.raises(nv.NVMLError_InvalidArgument):
        nv.nvmlDeviceGetHandleByIndex(3)
    with pytest.raises(nv.NVMLError_NotFound):
        nv.nvmlDeviceGetHandleByUUID("GPU-00000000-0000-0000-0000-000000000000")
    with pytest.raises(nv.NVMLError_NotFound):
        nv.nvmlDeviceGetHandleByPciBusId("00000000:AA:00.0")
    with pytest.raises(nv.NVMLError_InvalidArgument):
        nv.nvmlDeviceGetTemperature(h200, 7)
    # A call the simulator does not implement fails loudly; getattr with a default still works (feature probes).
    with pytest.raises(AttributeError, match="does not implement"):
        nv.nvmlDeviceGetFanSpeed(h200)
    assert getattr(nv, "nvmlDeviceGetFanSpeed", None) is None
    nv.nvmlShutdown()
    with pytest.raises(nv.NVMLError_Uninitialized):
        nv.nvmlDeviceGetName(h200)


def test_energy_counter_moves_only_at_its_update_ticks(simulate):
    period = 0.05
    nv, host = simulate(SimHost([SimGpu(counter_period_s=period, wobble_w=5.0)], busy_mode="always"))
    handle = nv.nvmlDeviceGetHandleByIndex(0)
    reads = []
    deadline = time.monotonic() + 0.6
    while time.monotonic() < deadline:
        before = time.monotonic_ns()
        mj = nv.nvmlDeviceGetTotalEnergyConsumption(handle)
        reads.append((before, time.monotonic_ns(), mj))
        time.sleep(0.003)
    period_ns = int(period * 1e9)
    changes = 0
    for (b0, a0, v0), (b1, a1, v1) in zip(reads, reads[1:]):
        assert v1 >= v0
        if v1 != v0:
            changes += 1
            # A change needs a tick boundary between the two reads ...
            assert a1 // period_ns > b0 // period_ns, (b0, a1, v0, v1)
        else:
            # ... and a tick boundary surely between them changes it (the GPU draws power).
            assert b1 // period_ns == a0 // period_ns, (a0, b1, v0)
    assert 0.6 / period / 2 <= changes <= 0.6 / period + 2  # fewer if this thread was descheduled past a tick
    # Each value is the true energy at its tick, to the mJ.
    truth = host.truth()
    began = truth.of(os.getpid(), 0)[0].t_ns
    checked = 0
    for before, after, mj in reads:
        tick = (after // period_ns) * period_ns if after // period_ns == before // period_ns else None
        if tick is not None and tick >= began:
            checked += 1
            assert mj / 1e3 == pytest.approx(truth.energy_at(os.getpid(), 0, tick), abs=2e-3)
    assert checked > 50


@pytest.mark.slow  # the simulator's clock runs in real time for seconds
def test_counter_window_energy_is_within_the_stated_tolerance(simulate):
    """The derivation behind counter_tolerance_j, checked where the truth is exact: sample like greenrt's sampler
    (counter read, stamped at the middle of the read) and interpolate at two window edges."""
    gpu = SimGpu(counter_period_s=0.1, load_w=350.0, wobble_w=20.0, wobble_period_s=0.7)
    nv, host = simulate(SimHost([gpu], busy_mode="always"))
    handle = nv.nvmlDeviceGetHandleByIndex(0)
    samples = []
    deadline = time.monotonic() + 1.6
    while time.monotonic() < deadline:
        before = time.monotonic_ns()
        mj = nv.nvmlDeviceGetTotalEnergyConsumption(handle)
        samples.append(((before + time.monotonic_ns()) // 2, mj / 1e3))
        time.sleep(0.05)
    truth = host.truth()

    def interpolated(t):
        for (t0, e0), (t1, e1) in zip(samples, samples[1:]):
            if t0 <= t <= t1:
                return e0 + (e1 - e0) * (t - t0) / (t1 - t0)
        raise AssertionError(t)

    worst = 0.0
    for k in range(2, len(samples) - 12, 3):
        start = (samples[k][0] + samples[k + 1][0]) // 2 + 7_000_000
        end = (samples[k + 10][0] + samples[k + 11][0]) // 2 - 3_000_000
        error = (interpolated(end) - interpolated(start)) - truth.energy_between(os.getpid(), 0, start, end)
        worst = max(worst, abs(error))
    assert worst <= counter_tolerance_j(gpu), worst
    assert worst > 0.5  # the counter's steps are really there: the tolerance is not vacuous


@pytest.mark.slow  # the simulator's clock runs in real time for seconds
def test_power_reading_is_a_1s_average_on_ampere_and_newer_and_instantaneous_before(simulate):
    spec = SimHost([SimGpu("NVIDIA H200", idle_w=60, load_w=460, wobble_w=0),
                    SimGpu("Tesla V100-SXM2-16GB", idle_w=40, load_w=240, wobble_w=0),
                    SimGpu("NVIDIA A100-SXM4-80GB", idle_w=50, load_w=350, wobble_w=0),
                    SimGpu("NVIDIA H200", idle_w=60, load_w=460, wobble_w=0, power_average_s=0)])
    nv, host = simulate(spec)
    handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(4)]
    watts = lambda i: nv.nvmlDeviceGetPowerUsage(handles[i]) / 1e3  # noqa: E731
    assert [watts(i) for i in range(4)] == pytest.approx([60, 40, 50, 60], abs=0.01)
    time.sleep(1.05)  # a full second of idle history
    with Runner():
        settle(nv, 0.15)
        busy_since = min(s.t_ns for s in host.truth().of(os.getpid(), 0) if s.busy)
        time.sleep(max(0.0, 0.4 - (time.monotonic_ns() - busy_since) / 1e9))
        elapsed = (time.monotonic_ns() - busy_since) / 1e9
        readings = [watts(i) for i in range(4)]
        # The averaged reading has moved only the busy fraction of the last second toward the load.
        assert readings[0] == pytest.approx(60 + 400 * elapsed, abs=400 * 0.03)
        assert readings[1] == pytest.approx(240, abs=0.01)
        assert readings[2] == pytest.approx(350, abs=0.01)  # GA100: instantaneous
        assert readings[3] == pytest.approx(460, abs=0.01)  # overridden per GPU
        time.sleep(1.0)
        assert watts(0) == pytest.approx(460, abs=0.01)
    settle(nv, 0.2)
    assert watts(1) == pytest.approx(40, abs=0.01)
    assert 60 < watts(0) < 460  # falling over a second, not at once


@pytest.mark.slow  # the simulator's clock runs in real time for seconds
def test_temperature_relaxes_exponentially_toward_a_target_set_by_power(simulate):
    fast = SimTemperature(idle_c=30, c_per_w=0.1, tau_s=0.2)
    slow = SimTemperature(idle_c=30, c_per_w=0.1, tau_s=0.2, cooling_tau_s=1000.0)
    spec = SimHost([SimGpu("Tesla T4", idle_w=20, load_w=220, wobble_w=0, temperature=fast),
                    SimGpu("Tesla T4", idle_w=20, load_w=220, wobble_w=0, temperature=slow)])
    nv, host = simulate(spec)
    handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(2)]
    celsius = lambda i: nv.nvmlDeviceGetTemperature(handles[i], nv.NVML_TEMPERATURE_GPU)  # noqa: E731
    assert [celsius(0), celsius(1)] == [30, 30]
    with Runner():
        settle(nv, 0.15)
        busy_since = min(s.t_ns for s in host.truth().of(os.getpid(), 0) if s.busy)
        time.sleep(max(0.0, 0.2 - (time.monotonic_ns() - busy_since) / 1e9))
        elapsed = (time.monotonic_ns() - busy_since) / 1e9
        expected = 50 - 20 * math.exp(-elapsed / 0.2)  # target 30 + 0.1 * 200 = 50 °C
        assert abs(celsius(0) - expected) <= 1.0
        time.sleep(1.2)
        assert celsius(0) == 50 and celsius(1) == 50
    settle(nv, 0.15)  # idle from here
    time.sleep(1.2)
    assert celsius(0) <= 31  # cooled within a few time constants
    assert celsius(1) == 50  # a cooling time constant of 1000 s: still hot
    truth = host.truth().of(os.getpid(), 0)
    assert max(s.temperature_c for s in truth) == pytest.approx(50, abs=0.1)


def test_a_lost_gpu_fails_every_call_with_its_handle(simulate):
    spec = SimHost([SimGpu(lost_after_s=0.3), SimGpu(), SimGpu(lost_after_busy_s=0.2)], busy_mode="always")
    nv, host = simulate(spec)
    lost, fine, after_busy = (nv.nvmlDeviceGetHandleByIndex(i) for i in range(3))
    nv.nvmlDeviceGetPowerUsage(after_busy)
    time.sleep(0.01)
    nv.nvmlDeviceGetPowerUsage(after_busy)  # a new segment: busy from here
    assert nv.nvmlDeviceGetTotalEnergyConsumption(lost) > 0
    time.sleep(0.35)
    calls = [lambda h: nv.nvmlDeviceGetTotalEnergyConsumption(h), nv.nvmlDeviceGetPowerUsage, nv.nvmlDeviceGetName,
             lambda h: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU), nv.nvmlDeviceGetUUID,
             lambda h: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM), nv.nvmlDeviceGetCurrentClocksEventReasons]
    for handle in (lost, after_busy):
        for call in calls:
            with pytest.raises(nv.NVMLError_GpuIsLost):
                call(handle)
    with pytest.raises(nv.NVMLError_GpuIsLost):
        nv.nvmlDeviceGetHandleByIndex(0)
    assert nv.nvmlDeviceGetPowerUsage(fine) > 0 and nv.nvmlDeviceGetCount() == 3
    truth = host.truth()
    t0 = truth.of(os.getpid(), 0)[0].t_ns
    assert (truth.lost_at(os.getpid(), 0) - t0) / 1e9 == pytest.approx(0.3, abs=0.01)
    first_busy = min(s.t_ns for s in truth.of(os.getpid(), 2) if s.busy)
    assert (truth.lost_at(os.getpid(), 2) - first_busy) / 1e9 == pytest.approx(0.2, abs=0.01)
    assert truth.lost_at(os.getpid(), 1) is None


def test_fields_a_gpu_lacks_raise_not_supported(simulate):
    spec = SimHost([SimGpu("Tesla P100-PCIE-16GB", unsupported=("temperature", "clocks", "clock_event_reasons",
                                                                 "power")),
                    SimGpu("Tesla V100-PCIE-16GB"), SimGpu("NVIDIA H100 80GB HBM3", energy_counter=False)],
                   missing_functions=("nvmlDeviceGetCurrentClocksEventReasons",))
    nv, _ = simulate(spec)
    p100, v100, h100 = (nv.nvmlDeviceGetHandleByIndex(i) for i in range(3))
    for call in (lambda: nv.nvmlDeviceGetTotalEnergyConsumption(p100),  # pre-Volta: no counter
                 lambda: nv.nvmlDeviceGetTemperature(p100, nv.NVML_TEMPERATURE_GPU),
                 lambda: nv.nvmlDeviceGetClockInfo(p100, nv.NVML_CLOCK_SM),
                 lambda: nv.nvmlDeviceGetClockInfo(p100, nv.NVML_CLOCK_MEM),
                 lambda: nv.nvmlDeviceGetCurrentClocksThrottleReasons(p100),
                 lambda: nv.nvmlDeviceGetPowerUsage(p100),
                 lambda: nv.nvmlDeviceGetTotalEnergyConsumption(h100)):  # overridden per GPU
        with pytest.raises(nv.NVMLError_NotSupported):
            call()
    assert nv.nvmlDeviceGetName(p100) == "Tesla P100-PCIE-16GB"
    assert nv.nvmlDeviceGetTotalEnergyConsumption(v100) > 0  # Volta has the counter
    assert nv.nvmlDeviceGetCurrentClocksThrottleReasons(v100) == nv.nvmlClocksEventReasonGpuIdle
    with pytest.raises(nv.NVMLError_FunctionNotFound):  # a driver older than NVML 12.2's rename
        nv.nvmlDeviceGetCurrentClocksEventReasons(v100)


@pytest.mark.slow  # the simulator's clock runs in real time for seconds
def test_busy_follows_the_runners_cuda_visible_devices(simulate):
    spec = SimHost([SimGpu("Tesla V100-SXM2-16GB") for _ in range(3)], busy_mode="assigned-runner",
                   scan_interval_s=0.02)
    nv, host = simulate(spec)
    uuids = [g.uuid for g in host.gpus]
    busy = lambda: [is_busy(nv, i) for i in range(3)]  # noqa: E731
    settle(nv, 0.06)
    assert busy() == [False] * 3
    cases = [({"CUDA_VISIBLE_DEVICES": uuids[1]}, [False, True, False]),
             ({"CUDA_VISIBLE_DEVICES": f"{uuids[2]},{uuids[0]}"}, [True, False, True]),
             ({"CUDA_VISIBLE_DEVICES": uuids[2][:12]}, [False, False, True]),  # a unique prefix, as CUDA takes
             ({"CUDA_VISIBLE_DEVICES": "2", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}, [False, False, True]),
             ({"CUDA_VISIBLE_DEVICES": "2"}, [False, False, False]),  # fastest-first order: unknowable here
             ({"CUDA_VISIBLE_DEVICES": ""}, [False, False, False]),
             ({"CUDA_VISIBLE_DEVICES": f"bogus,{uuids[0]}"}, [False, False, False]),  # CUDA stops at the bogus one
             ({}, [True, True, True])]  # unset: every GPU
    for cuda, expected in cases:
        with Runner(**cuda):
            settle(nv, 0.06)
            assert busy() == expected, cuda
        settle(nv, 0.06)
        assert busy() == [False] * 3, f"still busy after the runner with {cuda} ended"
    with Runner(owner=1):  # another greenrt's runner: not this host's load
        settle(nv, 0.06)
        assert busy() == [False] * 3


def test_busy_modes_any_runner_and_never(simulate):
    spec = SimHost([SimGpu("Tesla T4"), SimGpu("Tesla T4", busy_mode="never")], busy_mode="any-runner")
    nv, host = simulate(spec)
    with Runner(CUDA_VISIBLE_DEVICES=""):  # any-runner ignores what the runner was given
        settle(nv)
        assert [is_busy(nv, 0), is_busy(nv, 1)] == [True, False]
        power = nv.nvmlDeviceGetPowerUsage(nv.nvmlDeviceGetHandleByIndex(0)) / 1e3
        assert power == pytest.approx(host.gpus[0].load_w, abs=host.gpus[0].wobble_w + 0.01)
    settle(nv)
    assert not is_busy(nv, 0)
    truth = host.truth()
    assert len(truth.busy_intervals(os.getpid(), 0)) == 1 and truth.busy_intervals(os.getpid(), 1) == []


def test_greenrt_nvml_sensor_reads_the_simulated_host(simulate):
    """The product's own sensor, handed this module in-process: the simulator speaks the API greenrt uses."""
    from orchestrator.measurement.sensors.nvml import probe_nvml

    nv, host = simulate(SimHost([SimGpu("NVIDIA H200"), SimGpu("Tesla P100-PCIE-16GB", unsupported=("memory",))]),
                        init=False)
    sensor, status = probe_nvml(nv)
    assert status.available, status.reason
    # The planner refuses batches larger than a GPU's memory: NVML's total, or unknown (never a guess).
    assert [g.memory_bytes for g in sensor.gpus] == [SimGpu().memory_total_bytes, None]
    assert "580.95.05" in status.reason and "gpu-1" in status.reason
    readings = {r.channel: r for r in sensor.read()}
    assert readings["gpu-0"].energy_j is not None and readings["gpu-1"].energy_j is None
    assert readings["gpu-0"].temperature_c == 35.0 and readings["gpu-0"].power_w == pytest.approx(60, abs=2.1)
    sensor.close()


def test_the_truth_log_interpolates_exactly(tmp_path):
    from testkit.nvidia_host import Truth

    path = tmp_path / "truth.tsv"
    path.write_text("7\t1000000000\t0\t10.0\t100.0\t0\t35.0\tinit\n7\t1500000000\t0\t60.0\t200.0\t1\t36.0\tseg\n"
                    "8\t1000000000\t0\t0.0\t1.0\t0\t35.0\tinit\n")
    truth = Truth.read(path)
    assert truth.pids() == {7, 8}
    assert truth.energy_at(7, 0, 1_250_000_000) == pytest.approx(35.0)
    assert truth.energy_between(7, 0, 1_250_000_000, 2_000_000_000) == pytest.approx(25.0 + 100.0)
    assert truth.busy_intervals(7, 0) == [(1_500_000_000, 1_500_000_000)]
    with pytest.raises(AssertionError):
        truth.energy_at(7, 0, 999_999_999)
