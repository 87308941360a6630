"""Background polling of the energy sensors for the whole life of a runner, on the host's monotonic clock.

The loop only reads sensors and appends (timestamp, readings) to a list: no polars, no per-field copying. The
columnar SampleSeries is built once, when sampling stops (or on snapshot()).
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .sensors.base import Reading, Sensor

if TYPE_CHECKING:
    import polars as pl

_META_KEY = "greenrt.samples"
_FLOAT_COLUMNS = ("energy_j", "power_w", "temperature_c")
_INT_COLUMNS = ("sm_clock_mhz", "mem_clock_mhz", "throttle_reasons")
_BOOL_COLUMNS = ("wrapped", "backwards")
COLUMNS = ("t_ns", "channel", "domain", *_FLOAT_COLUMNS, *_INT_COLUMNS, *_BOOL_COLUMNS)


@dataclass(frozen=True)
class SampleError:
    """A sensor read that failed: its channels have no sample at t_ns, and windows around it are invalid."""

    t_ns: int
    sensor: str
    channels: tuple[str, ...]
    reason: str


@dataclass
class SampleSeries:
    """One row per (read, channel), in columns. Timestamps: time.monotonic_ns() of the channel's own counter read
    where the sensor stamped it (Reading.t_ns: NVML), else the middle of the sensor's whole read."""

    t_ns: list[int] = field(default_factory=list)
    channel: list[str] = field(default_factory=list)
    domain: list[str] = field(default_factory=list)
    energy_j: list[float | None] = field(default_factory=list)
    power_w: list[float | None] = field(default_factory=list)
    temperature_c: list[float | None] = field(default_factory=list)
    sm_clock_mhz: list[int | None] = field(default_factory=list)
    mem_clock_mhz: list[int | None] = field(default_factory=list)
    throttle_reasons: list[int | None] = field(default_factory=list)
    wrapped: list[bool] = field(default_factory=list)
    backwards: list[bool] = field(default_factory=list)
    errors: list[SampleError] = field(default_factory=list)
    channels: dict[str, str] = field(default_factory=dict)  # channel -> domain, also for channels never read

    def __len__(self) -> int:
        return len(self.t_ns)

    def append(self, t_ns: int, reading: Reading, domain: str) -> None:
        self.t_ns.append(t_ns)
        self.channel.append(reading.channel)
        self.domain.append(domain)
        self.energy_j.append(reading.energy_j)
        self.power_w.append(reading.power_w)
        self.temperature_c.append(reading.temperature_c)
        self.sm_clock_mhz.append(reading.sm_clock_mhz)
        self.mem_clock_mhz.append(reading.mem_clock_mhz)
        self.throttle_reasons.append(reading.throttle_reasons)
        self.wrapped.append(reading.wrapped)
        self.backwards.append(reading.backwards)

    @classmethod
    def from_reads(
        cls, reads: Sequence[tuple[int, list[Reading]]], channels: dict[str, str], errors: Sequence[SampleError]
    ) -> SampleSeries:
        series = cls(errors=list(errors), channels=dict(channels))
        for t, readings in reads:
            for r in readings:
                series.append(t if r.t_ns is None else r.t_ns, r, channels.get(r.channel, "unknown"))
        return series

    def _rows_of(self, name: str) -> np.ndarray:
        idx = np.fromiter((i for i, c in enumerate(self.channel) if c == name), dtype=np.int64)
        # Series are appended in time order; sorting anyway keeps concatenated or reloaded series correct.
        order = np.argsort(np.asarray([self.t_ns[i] for i in idx], dtype=np.int64), kind="stable")
        return idx[order]

    def channel_column(self, name: str, column: str) -> np.ndarray:
        """One column of one channel, time-ordered: float64 with nan for None, or int64/bool for those columns."""
        idx = self._rows_of(name)
        values = getattr(self, column)
        if column == "t_ns":
            return np.asarray([values[i] for i in idx], dtype=np.int64)
        if column in _BOOL_COLUMNS:
            return np.asarray([values[i] for i in idx], dtype=bool)
        if column in (*_FLOAT_COLUMNS, *_INT_COLUMNS):
            return np.asarray([np.nan if values[i] is None else values[i] for i in idx], dtype=np.float64)
        return np.asarray([values[i] for i in idx], dtype=object)

    def channel_arrays(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(t_ns int64, energy_j float64, power_w float64) of one channel, time-ordered, nan where None."""
        idx = self._rows_of(name)
        t = np.asarray([self.t_ns[i] for i in idx], dtype=np.int64)
        e = np.asarray([np.nan if self.energy_j[i] is None else self.energy_j[i] for i in idx], dtype=np.float64)
        p = np.asarray([np.nan if self.power_w[i] is None else self.power_w[i] for i in idx], dtype=np.float64)
        return t, e, p

    @staticmethod
    def polars_schema() -> dict[str, Any]:
        import polars as pl

        return {
            "t_ns": pl.Int64,
            "channel": pl.String,
            "domain": pl.String,
            "energy_j": pl.Float64,
            "power_w": pl.Float64,
            "temperature_c": pl.Float64,
            "sm_clock_mhz": pl.Int64,
            "mem_clock_mhz": pl.Int64,
            "throttle_reasons": pl.UInt64,
            "wrapped": pl.Boolean,
            "backwards": pl.Boolean,
        }

    def to_polars(self) -> pl.DataFrame:
        import polars as pl

        return pl.DataFrame({c: getattr(self, c) for c in COLUMNS}, schema=self.polars_schema())

    def _metadata(self) -> dict[str, str]:
        return {_META_KEY: json.dumps({"channels": self.channels, "errors": [asdict(e) for e in self.errors]})}

    def write_parquet(self, path: str | Path) -> None:
        """Samples as rows; channels and read errors in the file's key-value metadata, so one file is the record."""
        self.to_polars().write_parquet(Path(path), metadata=self._metadata())

    @classmethod
    def read_parquet(cls, path: str | Path) -> SampleSeries:
        import polars as pl

        frame = pl.read_parquet(Path(path))
        meta = json.loads(pl.read_parquet_metadata(Path(path)).get(_META_KEY, "{}"))
        series = cls(
            errors=[SampleError(e["t_ns"], e["sensor"], tuple(e["channels"]), e["reason"]) for e in meta.get("errors", [])],
            channels=dict(meta.get("channels", {})),
        )
        for column in COLUMNS:
            setattr(series, column, frame.get_column(column).to_list())
        return series


class Sampler:
    """Polls sensors every interval_s in a daemon thread, from start() to stop().

    start() and stop() each take one sample synchronously, so the series always brackets whatever ran between
    them. A failed read is recorded as a SampleError and polling goes on.
    """

    def __init__(
        self, sensors: Sequence[Sensor], interval_s: float = 0.05, clock: Callable[[], int] = time.monotonic_ns
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.sensors = list(sensors)
        self.interval_s = interval_s
        self.clock = clock
        self.channels: dict[str, str] = {}
        self._sensor_channels: list[tuple[str, ...]] = []
        for s in self.sensors:
            chans = s.channels()
            self.channels.update(chans)
            self._sensor_channels.append(tuple(chans))
        self._reads: list[tuple[int, list[Reading]]] = []
        self._errors: list[SampleError] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.series: SampleSeries | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def sample_once(self) -> None:
        clock, reads, errors = self.clock, self._reads, self._errors
        for sensor, chans in zip(self.sensors, self._sensor_channels):
            before = clock()
            try:
                readings = sensor.read()
            except Exception as exc:  # SensorReadError by contract; anything else is recorded the same way
                after = clock()
                reason = str(exc) or type(exc).__name__
                errors.append(SampleError((before + after) // 2, sensor.name, chans, reason))
                continue
            after = clock()
            reads.append(((before + after) // 2, readings))

    def _loop(self) -> None:
        interval = max(1, int(self.interval_s * 1e9))
        clock, stop = self.clock, self._stop
        next_tick = clock() + interval
        try:
            while True:
                delay = next_tick - clock()
                if delay > 0 and stop.wait(delay / 1e9):
                    return
                if stop.is_set():
                    return
                self.sample_once()
                # Absolute ticks, so read time does not accumulate as drift; after a stall, skip the missed ticks
                # instead of reading in a burst.
                next_tick += interval
                now = clock()
                if now >= next_tick:
                    next_tick += ((now - next_tick) // interval + 1) * interval
        except BaseException as exc:  # a bug in the loop must not end sampling silently
            chans = tuple(self.channels)
            self._errors.append(SampleError(clock(), "sampler", chans, f"sampler thread died: {exc!r}"))

    def start(self) -> Sampler:
        if self._thread is not None:
            raise RuntimeError("a Sampler runs once; make a new one")
        self.sample_once()
        self._thread = threading.Thread(target=self._loop, name="greenrt-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> SampleSeries:
        if self._thread is None:
            raise RuntimeError("stop() before start()")
        if self.series is not None:
            return self.series
        self._stop.set()
        self._thread.join()
        self.sample_once()  # after the join: sensors keep unwrap state and are read by one thread at a time
        self.series = SampleSeries.from_reads(self._reads, self.channels, self._errors)
        return self.series

    def snapshot(self) -> SampleSeries:
        """The samples so far, while running (e.g. to watch temperature during a cooldown)."""
        return SampleSeries.from_reads(list(self._reads), self.channels, list(self._errors))

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
