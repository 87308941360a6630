"""What a run measured on a busy host becomes in a sweep, by [interference].on_busy.

flag: the record is journaled flagged. remeasure: the run is measured again after a cooldown, at most
max_remeasures more times; only the last attempt is journaled (the study needs one record per repetition), and it
says how many earlier attempts were flagged. abort: the flagged record is journaled, then the sweep stops with one
line and exit 3; rerunning the same command resumes once the host is quiet.

The verdict itself is measurement/interference_policy.decide (pure); this module only sequences it around the run.
A failed run is journaled as it is: it has no figures that a busy host could have bent.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.measurement.interference_policy import PolicySettings, decide
from orchestrator.results.record import RunRecord

logger = logging.getLogger(__name__)

BUSY_EXIT = 3  # the sweep stopped because the host was busy (on_busy = "abort"): neither a mistake nor a fault


@dataclass(frozen=True)
class Measured:
    record: RunRecord  # the one record to journal
    stop: str | None = None  # the one line that ends the sweep once the record is journaled (abort)


class BusyHostPolicy:
    """Measures each run under the config's on_busy, and says the first flagged run once in the log."""

    def __init__(self, settings: PolicySettings) -> None:
        self.settings = settings
        self._said = False

    def measure(self, execute: Callable[[], RunRecord], cooldown: Callable[[], None]) -> Measured:
        """execute() measures the run once into its complete record; cooldown() waits before it is measured again."""
        attempt = 1
        while True:
            record = execute()
            payload = record.interference
            if payload is None or not record.ok:
                return Measured(record)
            decision = decide(payload, self.settings.on_busy, attempt, self.settings.max_remeasures)
            payload.decision, payload.earlier_flagged_attempts = decision.note, attempt - 1
            if decision.action == "remeasure":
                logger.warning(f"{record.run_id}: {decision.note}")
                cooldown()
                attempt += 1
                continue
            if decision.action == "abort":
                return Measured(record, f"{record.run_id} (recorded, flagged): {decision.note}")
            if payload.flagged and (self.settings.on_busy == "remeasure" or not self._said):
                # "flag": said once here (a shared host flags most runs), every such run named in the summary
                later = "" if self.settings.on_busy == "remeasure" else "; the summary names every such run"
                logger.warning(f"{record.run_id}: {decision.note}{later}")
                self._said = True
            return Measured(record)
