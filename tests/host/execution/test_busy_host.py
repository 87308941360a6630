"""[interference].on_busy in the sweep loop (orchestrator/execution/busy_host.py): a flagged run is kept flagged,
measured again after a cooldown (only the last attempt journaled, counting the earlier flagged ones), or journaled
before the sweep stops; a quiet or a failed run is kept as it is."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from orchestrator.execution.busy_host import BusyHostPolicy
from orchestrator.results.record import from_journal
from testkit.interference_payloads import payload
from testkit.records import make_record

BUSY, QUIET = 0.45, 0.01


def settings(on_busy: str, max_remeasures: int = 2) -> SimpleNamespace:
    return SimpleNamespace(on_busy=on_busy, max_remeasures=max_remeasures)


class Attempts:
    """Measures the same run once per call, each attempt on a host as busy as the next share given."""

    def __init__(self, *shares: float, status: str = "ok") -> None:
        self.shares, self.status, self.made, self.cooldowns = list(shares), status, [], 0

    def execute(self):
        record = from_journal(make_record("r001-x", status=self.status))
        record.interference = payload(self.shares[len(self.made)])
        self.made.append(record)
        return record

    def cooldown(self) -> None:
        self.cooldowns += 1


def test_flag_keeps_the_flagged_record_and_says_so_once(caplog):
    policy, attempts = BusyHostPolicy(settings("flag")), Attempts(BUSY, BUSY)
    with caplog.at_level(logging.WARNING):
        first = policy.measure(attempts.execute, attempts.cooldown)
        second = policy.measure(attempts.execute, attempts.cooldown)
    assert first.stop is None and first.record.interference.flagged
    assert first.record.interference.decision.startswith("measured on a busy host (other processes used 45.0%")
    assert first.record.interference.earlier_flagged_attempts == 0 and attempts.cooldowns == 0
    assert second.record is attempts.made[1]
    busy_lines = [r.message for r in caplog.records if "busy host" in r.message]
    assert len(busy_lines) == 1 and "the summary names every such run" in busy_lines[0], busy_lines


def test_remeasure_measures_again_until_quiet_and_counts_the_flagged_attempts():
    attempts = Attempts(BUSY, BUSY, QUIET)
    kept = BusyHostPolicy(settings("remeasure", max_remeasures=2)).measure(attempts.execute, attempts.cooldown)
    assert len(attempts.made) == 3 and attempts.cooldowns == 2  # a cooldown before each measurement again
    assert kept.record is attempts.made[-1] and kept.stop is None
    assert not kept.record.interference.flagged and kept.record.interference.earlier_flagged_attempts == 2


def test_remeasure_keeps_the_last_attempt_flagged_once_its_bound_is_spent():
    attempts = Attempts(BUSY, BUSY, BUSY, QUIET)
    kept = BusyHostPolicy(settings("remeasure", max_remeasures=2)).measure(attempts.execute, attempts.cooldown)
    assert len(attempts.made) == 3  # the first and two more, never a fourth
    assert kept.record is attempts.made[-1] and kept.record.interference.flagged
    assert kept.record.interference.earlier_flagged_attempts == 2
    assert kept.record.interference.decision.startswith("the host was still busy after 3 measurements")


def test_abort_returns_the_flagged_record_to_journal_and_the_line_that_stops_the_sweep():
    attempts = Attempts(BUSY)
    measured = BusyHostPolicy(settings("abort")).measure(attempts.execute, attempts.cooldown)
    assert measured.record is attempts.made[0] and measured.record.interference.flagged
    assert measured.stop.startswith("r001-x (recorded, flagged): the host was busy (other processes used 45.0%")
    assert "resume it once the host is quiet" in measured.stop and "\n" not in measured.stop


@pytest.mark.parametrize("on_busy", ["flag", "remeasure", "abort"])
def test_a_quiet_run_is_kept_as_it_is(on_busy):
    attempts = Attempts(QUIET)
    measured = BusyHostPolicy(settings(on_busy)).measure(attempts.execute, attempts.cooldown)
    assert measured.stop is None and len(attempts.made) == 1 and attempts.cooldowns == 0
    assert measured.record.interference.decision == "" and not measured.record.interference.flagged


@pytest.mark.parametrize("on_busy", ["remeasure", "abort"])
def test_a_failed_run_is_neither_measured_again_nor_a_reason_to_stop(on_busy):
    attempts = Attempts(BUSY, status="failed")
    measured = BusyHostPolicy(settings(on_busy)).measure(attempts.execute, attempts.cooldown)
    assert measured.stop is None and len(attempts.made) == 1
    assert measured.record.interference.flagged  # still recorded: a timeout on a busy host says something
