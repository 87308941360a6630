"""Phase energy (measurement/phase_energy.py) against a known power schedule.

A synthetic powercap tree's counters follow a piecewise power schedule (a gap at idle, a prefill at high power, a
decode lower); the real RAPL sensor reads the tree at jittered sample times. Each phase's energy must equal the
schedule integrated over that phase's recorded intervals, within the edge uncertainty the phase states, and
prefill + decode + gaps must equal the window's energy. A stepping counter (NVML's) shows a short prefill flagged.
"""
from __future__ import annotations

import bisect

import numpy as np
import pytest

from orchestrator.measurement.energy import window_energy
from orchestrator.measurement.phase_energy import account_generation, phase_energy
from orchestrator.measurement.sampler import SampleError, SampleSeries
from orchestrator.measurement.sensors.base import Reading
from orchestrator.measurement.sensors.rapl import RaplSensor
from orchestrator.results.generation_payload import GenerationTimesShape, generation_payload
from orchestrator.results.payloads import Energy, EnergyChannel
from testkit.powercap import make_powercap_tree

MS = 1_000_000
S = 1_000_000_000
# Watts of each channel in each part of an iteration: the prefill draws most, the gaps idle.
WATTS = {"package-0": {"gap": 20.0, "prefill": 95.0, "decode": 55.0},
         "dram-0": {"gap": 2.0, "prefill": 9.0, "decode": 6.0}}
IDLE_W = {"package-0": 20.0, "dram-0": 2.0}


class Schedule:
    """Iterations of [gap, prefill, decode] back to back; power is a step function of time, so its integral is
    known exactly at any instant."""

    def __init__(self, iterations: int, prefill_ms: float, decode_ms: float, gap_ms: float, origin_ns: int = 10 * S,
                 seed: int = 0):
        rng = np.random.default_rng(seed)
        t, self.edges, self.parts, self.phases_ns = origin_ns, [origin_ns], [], []
        self.window = (origin_ns, 0)
        for _ in range(iterations):
            gap = int(gap_ms * MS * rng.uniform(0.5, 1.5))
            prefill = int(prefill_ms * MS * rng.uniform(0.8, 1.2))
            decode = int(decode_ms * MS * rng.uniform(0.8, 1.2))
            start, first, end = t + gap, t + gap + prefill, t + gap + prefill + decode
            self.phases_ns.append([start, first, end])
            self.edges += [start, first, end]
            self.parts += ["gap", "prefill", "decode"]
            t = end
        self.edges.append(t + int(gap_ms * MS))
        self.parts.append("gap")
        self.window = (origin_ns, self.edges[-1])
        self._at_edges: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def energy(self, channel: str, t_ns: int) -> float:
        """Joules the channel drew from the window's start to t_ns (outside the window: the gap's power)."""
        if channel not in self._at_edges:
            watts = np.array([WATTS[channel][part] for part in self.parts])
            self._at_edges[channel] = (watts, np.concatenate([[0.0], np.cumsum(np.diff(self.edges) / S * watts)]))
        watts, at_edges = self._at_edges[channel]
        if t_ns < self.edges[0]:
            return -(self.edges[0] - t_ns) / S * WATTS[channel]["gap"]
        k = min(bisect.bisect_right(self.edges, t_ns) - 1, len(self.parts) - 1)  # past the end: the last gap's power
        return float(at_edges[k] + (t_ns - self.edges[k]) / S * watts[k])

    def over(self, channel: str, intervals) -> float:
        return sum(self.energy(channel, b) - self.energy(channel, a) for a, b in intervals)


def rapl_series(tmp_path, schedule: Schedule, sample_ms: float = 10.0, seed: int = 1) -> SampleSeries:
    """The real RAPL sensor reading a powercap tree whose counters the schedule drives (in uJ, as the kernel's)."""
    tree = make_powercap_tree(tmp_path / "powercap", packages=1, dram=True, start_uj=0)
    sensor = RaplSensor(tree.root)
    rng = np.random.default_rng(seed)
    start, end = schedule.window[0] - 50 * MS, schedule.window[1] + 50 * MS
    reads, t = [], start
    while t < end + int(sample_ms * MS):
        for channel in WATTS:  # one thread writes and reads: no need for the tree's atomic rename
            tree.energy_path(channel).write_text(f"{int(1e9 + schedule.energy(channel, t) * 1e6)}\n")
        reads.append((t, sensor.read()))
        t += int(sample_ms * MS * rng.uniform(0.6, 1.4))
    return SampleSeries.from_reads(reads, sensor.channels(), [])


def _times(schedule: Schedule, missing_first=()):
    phases = [[s, None if k in missing_first else f, e] for k, (s, f, e) in enumerate(schedule.phases_ns)]
    return GenerationTimesShape(prompt_tokens=64, new_tokens=16, batch_size=2, phases_ns=phases)


def _gaps(schedule: Schedule):
    bounds = [schedule.window[0]] + [x for s, _, e in schedule.phases_ns for x in (s, e)] + [schedule.window[1]]
    return list(zip(bounds[0::2], bounds[1::2]))


@pytest.mark.parametrize("prefill_ms, decode_ms, gap_ms", [(40, 300, 5), (120, 600, 20), (8, 150, 2)])
def test_each_phase_is_the_schedule_over_its_intervals_within_its_stated_uncertainty(tmp_path, prefill_ms, decode_ms,
                                                                                     gap_ms):
    schedule = Schedule(iterations=8, prefill_ms=prefill_ms, decode_ms=decode_ms, gap_ms=gap_ms)
    series = rapl_series(tmp_path, schedule)
    energy = phase_energy(series, schedule.window, _times(schedule), IDLE_W, counted={"package-0", "dram-0"})
    assert energy.status == "ok", energy.reason
    intervals = {"prefill": [(s, f) for s, f, _ in schedule.phases_ns],
                 "decode": [(f, e) for _, f, e in schedule.phases_ns], "gaps": _gaps(schedule)}
    for name, channel in energy.channels.items():
        assert channel.status == "ok" and channel.counter_period_s is not None
        for phase, spans in intervals.items():
            figures = getattr(channel, phase)
            truth = schedule.over(name, spans)
            # the stated bound, plus the counter's 1 uJ resolution at each edge
            assert abs(figures.raw_j - truth) <= figures.edge_uncertainty_j + 2e-6 * 2 * len(spans), (name, phase)
            seconds = sum(b - a for a, b in spans) / S
            assert figures.dynamic_j == pytest.approx(figures.raw_j - IDLE_W[name] * seconds)
        # prefill + decode + gaps = the window's energy, which is the window accounting's own figure
        parts = channel.prefill.raw_j + channel.decode.raw_j + channel.gaps.raw_j
        assert parts == pytest.approx(channel.window_j, abs=1e-9)
        assert channel.window_j == window_energy(series, *schedule.window)[name].energy_j
        assert channel.window_j == pytest.approx(schedule.over(name, [schedule.window]), abs=channel.prefill.edge_uncertainty_j)
    assert energy.closure_j == pytest.approx(0.0, abs=1e-9)
    total = energy.prefill.raw_j + energy.decode.raw_j + energy.gaps.raw_j
    assert total == pytest.approx(energy.window_j, abs=1e-9)
    assert energy.prefill.intervals == energy.decode.intervals == 8 and energy.gaps.intervals == 9


def test_the_phase_figures_are_not_the_window_shared_out_by_time(tmp_path):
    """The prefill draws more than the decode: its J per second must come out higher, as the schedule says."""
    schedule = Schedule(iterations=6, prefill_ms=100, decode_ms=300, gap_ms=10)
    energy = phase_energy(rapl_series(tmp_path, schedule), schedule.window, _times(schedule), IDLE_W,
                          counted={"package-0", "dram-0"})
    prefill_w = energy.prefill.raw_j / energy.prefill.seconds
    decode_w = energy.decode.raw_j / energy.decode.seconds
    assert prefill_w == pytest.approx(95 + 9, rel=0.1) and decode_w == pytest.approx(55 + 6, rel=0.05)


def test_an_iteration_without_first_token_is_in_the_request_but_in_neither_phase(tmp_path):
    schedule = Schedule(iterations=6, prefill_ms=50, decode_ms=300, gap_ms=5)
    series = rapl_series(tmp_path, schedule)
    times = _times(schedule, missing_first={2})
    energy = phase_energy(series, schedule.window, times, IDLE_W, counted={"package-0", "dram-0"})
    assert energy.status == "partial" and "1 of 6 iterations" in energy.reason
    assert energy.split_iterations == 5 and energy.prefill.intervals == 5
    s, _, e = schedule.phases_ns[2]
    truth = sum(schedule.over(ch, [(s, e)]) for ch in WATTS)
    # within a sample interval (at most 14 ms here) of the highest power at each of its two edges
    assert energy.unsplit_j == pytest.approx(truth, abs=2 * 0.014 * (95 + 9))
    assert energy.prefill.raw_j + energy.decode.raw_j + energy.gaps.raw_j + energy.unsplit_j == \
        pytest.approx(energy.window_j, abs=1e-9)
    payload = generation_payload(times, schedule.window, energy)
    assert payload.j_per_request == pytest.approx(energy.iterations_j / (6 * 2))
    assert payload.j_per_prompt_token == pytest.approx(energy.prefill.raw_j / (5 * 2 * 64))
    assert payload.j_per_output_token == pytest.approx(energy.decode.raw_j / (5 * 2 * 15))


def test_a_channel_outside_the_run_is_split_but_not_counted(tmp_path):
    schedule = Schedule(iterations=4, prefill_ms=50, decode_ms=300, gap_ms=5)
    energy = phase_energy(rapl_series(tmp_path, schedule), schedule.window, _times(schedule), IDLE_W,
                          counted={"package-0"})
    assert not energy.channels["dram-0"].counted and energy.channels["dram-0"].prefill.raw_j > 0
    assert energy.window_j == pytest.approx(energy.channels["package-0"].window_j)


def test_a_read_error_in_the_window_makes_the_channel_invalid_with_the_reason(tmp_path):
    schedule = Schedule(iterations=4, prefill_ms=50, decode_ms=300, gap_ms=5)
    series = rapl_series(tmp_path, schedule)
    series.errors.append(SampleError(schedule.phases_ns[1][1], "rapl", ("dram-0",), "EIO"))
    energy = phase_energy(series, schedule.window, _times(schedule), IDLE_W, counted={"package-0", "dram-0"})
    assert energy.status == "partial" and "dram-0: read error" in energy.reason
    assert energy.channels["dram-0"].prefill is None
    assert energy.prefill.raw_j is None and energy.window_j is None  # never a partial sum


def test_stamps_outside_the_window_are_refused_not_clipped(tmp_path):
    schedule = Schedule(iterations=3, prefill_ms=50, decode_ms=300, gap_ms=5)
    window = (schedule.phases_ns[0][1], schedule.window[1])  # the window starts inside the first prefill
    energy = phase_energy(rapl_series(tmp_path, schedule), window, _times(schedule), IDLE_W, counted={"package-0"})
    assert energy.status == "invalid" and "outside the window" in energy.reason


def stepping_series(schedule: Schedule, period_s: float = 0.1, sample_s: float = 0.01, seed: int = 2) -> SampleSeries:
    """A GPU counter that steps every period_s (holding the energy of its last tick, like NVML's), sampled every
    sample_s with jitter, its power reading beside it."""
    rng = np.random.default_rng(seed)
    start, end = schedule.window[0] - int(0.5 * S), schedule.window[1] + int(0.5 * S)
    series = SampleSeries(channels={"package-0": "gpu"})
    t = start
    while t < end:
        tick = start + (t - start) // int(period_s * S) * int(period_s * S)
        watts = (schedule.energy("package-0", t + MS) - schedule.energy("package-0", t)) / (MS / S)
        series.append(int(t), Reading("package-0", 1000.0 + schedule.energy("package-0", tick), power_w=watts), "gpu")
        t += int(sample_s * S * rng.uniform(0.7, 1.3))
    return series


def test_a_prefill_shorter_than_the_counter_step_is_flagged_and_within_its_bound():
    schedule = Schedule(iterations=20, prefill_ms=12, decode_ms=400, gap_ms=3)
    energy = phase_energy(stepping_series(schedule), schedule.window, _times(schedule), {"package-0": 20.0},
                          counted={"package-0"})
    channel = energy.channels["package-0"]
    assert channel.counter_period_s == pytest.approx(0.1, rel=0.1)
    assert channel.prefill.short and not channel.decode.short
    assert energy.prefill.short_channels == ["package-0"] and energy.decode.short_channels == []
    for phase, spans in (("prefill", [(s, f) for s, f, _ in schedule.phases_ns]),
                         ("decode", [(f, e) for _, f, e in schedule.phases_ns])):
        figures = getattr(channel, phase)
        assert abs(figures.raw_j - schedule.over("package-0", spans)) <= figures.edge_uncertainty_j, phase
        assert figures.edge_sd_j < figures.edge_uncertainty_j
    # the bound is honest about how little the prefill figure says: wider than the prefill's own energy here
    assert energy.prefill.edge_uncertainty_j > energy.prefill.raw_j / 2
    payload = generation_payload(_times(schedule), schedule.window, energy)
    assert "prefill intervals" in payload.energy_note and "package-0" in payload.energy_note
    assert channel.prefill.raw_j + channel.decode.raw_j + channel.gaps.raw_j == pytest.approx(channel.window_j, abs=1e-9)


def test_no_series_is_unavailable_with_the_reason():
    schedule = Schedule(iterations=1, prefill_ms=10, decode_ms=10, gap_ms=1)
    energy = phase_energy(None, None, _times(schedule), None, counted=())
    assert energy.status == "unavailable" and energy.reason


def _energy_payload(channels: dict[str, tuple[str, bool | None]], status: str = "ok") -> Energy:
    return Energy(status=status, reason="" if status == "ok" else "no sensor",
                  channels={n: EnergyChannel(domain=d, status="ok", assigned=a) for n, (d, a) in channels.items()})


def test_account_generation_counts_the_channels_the_run_energy_counts(tmp_path):
    schedule = Schedule(iterations=4, prefill_ms=50, decode_ms=300, gap_ms=5)
    result = {"status": "ok", "window_start_ns": schedule.window[0], "window_end_ns": schedule.window[1],
              "generation": _times(schedule).model_dump()}
    series = rapl_series(tmp_path, schedule)
    energy = _energy_payload({"package-0": ("cpu", None), "dram-0": ("dram", None)})
    g = account_generation(result, series, schedule.window, IDLE_W, energy)
    assert g.energy.status == "ok" and g.iterations == 4
    assert g.j_per_output_token == pytest.approx(g.energy.decode.raw_j / (4 * 2 * 15))
    assert g.energy.window_j == pytest.approx(sum(c.window_j for c in g.energy.channels.values()))
    # a GPU the run was not given is split beside, never in the run's figures
    series.channels["package-0"] = "gpu"
    energy = _energy_payload({"package-0": ("gpu", False), "dram-0": ("dram", None)})
    g = account_generation(result, series, schedule.window, IDLE_W, energy)
    assert g.energy.window_j == pytest.approx(g.energy.channels["dram-0"].window_j)


def test_account_generation_without_energy_still_has_the_times_and_says_why():
    schedule = Schedule(iterations=2, prefill_ms=50, decode_ms=300, gap_ms=5)
    result = {"window_start_ns": schedule.window[0], "window_end_ns": schedule.window[1],
              "generation": _times(schedule).model_dump()}
    g = account_generation(result, None, schedule.window, None, Energy.unavailable("no readable energy sensor"))
    assert g.ttft_ms.n == 2 and g.j_per_output_token is None
    assert g.energy.status == "unavailable" and g.energy.reason == "no readable energy sensor"
    assert account_generation({"latencies_ns": [1]}, None, schedule.window, None, Energy.unavailable("x")) is None


def test_stamps_out_of_order_raise_so_the_accounting_fails_with_the_reason():
    result = {"window_start_ns": 0, "window_end_ns": 100, "generation": {
        "prompt_tokens": 4, "new_tokens": 2, "batch_size": 1, "phases_ns": [[0, 90, 50]]}}
    with pytest.raises(ValueError, match="not in order"):
        account_generation(result, None, (0, 100), None, Energy.unavailable("x"))
