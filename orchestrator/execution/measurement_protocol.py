"""The measurement protocol between a sweep's runs: the idle baseline (and its recheck) and the cooldown.

Its state is what each run's record keeps of it (`facts`): the baseline its dynamic energy was computed with, and
the cooldown that preceded it. The measuring itself is orchestrator/measurement/ (baseline.py, cooldown.py).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from orchestrator.measurement.baseline import baseline_reference, measure_idle, recheck_due
from orchestrator.measurement.cooldown import adaptive_unavailable, fixed_wait, idle_reference, wait_until_idle
from orchestrator.measurement.probe import Measurement
from orchestrator.planning.config import SweepConfig
from orchestrator.results.payloads import BaselineRef, Protocol
from orchestrator.results.store import ResultsDir

logger = logging.getLogger(__name__)


class MeasurementProtocol:
    def __init__(self, config: SweepConfig, measurement: Measurement, results: ResultsDir) -> None:
        self.config = config
        self.measurement = measurement
        self.results = results
        self.idle_w: dict[str, float] = {}  # the baseline in force, per channel: what dynamic energy subtracts
        # The baseline in force (its place in baseline.json's history and when it was measured, monotonic), the
        # cooldown that preceded the next run, and whether the adaptive cooldown's fallback was announced.
        self.baseline: dict[str, Any] | None = None
        self.baseline_index: int | None = None
        self._baseline_at: float | None = None
        self.last_cooldown: dict[str, Any] | None = None
        self._fallback_announced = False

    def measure_baseline(self) -> dict[str, Any]:
        baseline = measure_idle(self.measurement.sensors, self.config.baseline.seconds,
                                self.config.sampler.interval_ms / 1e3)
        self.idle_w = baseline["idle_w"]
        history = self.results.baseline_history()
        self.results.write_json(self.results.baseline_path, {"latest": baseline, "history": [*history, baseline]})
        self.baseline, self.baseline_index, self._baseline_at = baseline, len(history), time.monotonic()
        return baseline

    def recheck_baseline(self, now: float | None = None) -> dict[str, Any] | None:
        """Measure idle again when baseline.recheck_minutes have passed (call it between runs, after the cooldown)."""
        if self.baseline is None or self.baseline.get("status") != "ok":
            return None
        if not recheck_due(self._baseline_at, time.monotonic() if now is None else now,
                           self.config.baseline.recheck_minutes):
            return None
        return self.measure_baseline()

    def facts(self) -> Protocol:
        """For the record of the run just executed: the baseline its dynamic energy used, the cooldown before it."""
        baseline = None
        if self.baseline is not None and self.baseline_index is not None:
            baseline = BaselineRef(**baseline_reference(self.baseline, self.baseline_index))
        return Protocol(baseline=baseline, cooldown_before=self.last_cooldown)

    def cooldown(self, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
        settings = self.config.cooldown
        if settings.mode == "fixed":
            facts = fixed_wait(settings.seconds, sleep)
        else:
            gpu_sensors = [s for s in self.measurement.sensors if "gpu" in s.channels().values()]
            channels = [c for s in gpu_sensors for c, domain in s.channels().items() if domain == "gpu"]
            nvml = next((s.reason for s in self.measurement.statuses if s.name == "nvml"), "no NVML sensor")
            problem = adaptive_unavailable(channels, nvml, self.baseline)
            if problem is None:
                facts = wait_until_idle(gpu_sensors, idle_reference(self.baseline, channels), settings, clock, sleep)
                if facts["outcome"] == "limit":
                    logger.info(f"cooldown: {settings.max_seconds:g} s limit reached before idle: {facts['detail']}")
            else:
                if not self._fallback_announced:
                    logger.info(f"cooldown: adaptive cannot watch the GPUs, so each cooldown waits the fixed minimum "
                                f"of {settings.seconds:g} s: {problem}")
                    self._fallback_announced = True
                facts = fixed_wait(settings.seconds, sleep, fallback=problem)
        self.last_cooldown = facts
        return facts
