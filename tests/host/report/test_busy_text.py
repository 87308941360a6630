"""The one line naming the runs measured on a busy host (orchestrator/report/busy_text.py): said once at the top
of the terminal summary and the report; nothing where no run was flagged or none was observed."""
from __future__ import annotations

from orchestrator.report.busy_text import NAMED, busy_line
from orchestrator.results.record import from_journal
from orchestrator.results.tables import runs_table
from testkit.interference_payloads import payload
from testkit.records import make_record


def _runs(shares):
    records = []
    for i, share in enumerate(shares):
        record = from_journal(make_record(f"r{i:03d}-x", index=i))
        record.interference = None if share is None else payload(share, pid=100 + i)
        records.append(record)
    return runs_table(records)


def test_the_line_names_the_flagged_runs_and_the_worst_with_its_top_process():
    line = busy_line(_runs([0.01, 0.30, None, 0.62]))
    assert line.startswith("2 of 3 observed runs were measured on a busy host: r001-x, r003-x; ")
    assert "other processes used up to 62% of the CPUs (r003-x, most: python3 (pid 103) 62.0%)" in line
    assert "\n" not in line and "busy, others_share and top_other_process columns" in line


def test_many_flagged_runs_are_named_up_to_a_few_and_counted():
    line = busy_line(_runs([0.5] * (NAMED + 3) + [0.01]))
    assert f"{NAMED + 3} of {NAMED + 4} observed runs" in line and " and 3 more;" in line
    assert f"r{NAMED - 1:03d}-x" in line and f"r{NAMED:03d}-x" not in line


def test_when_every_one_of_many_runs_was_busy_the_line_says_all_and_names_none():
    line = busy_line(_runs([0.5] * (NAMED + 3)))
    assert line.startswith(f"all {NAMED + 3} observed runs were measured on a busy host; other processes used up to")
    assert "r001-x" not in line  # only the worst run is named, for its share


def test_nothing_is_said_without_a_flagged_run():
    assert busy_line(_runs([0.01, 0.02])) is None
    assert busy_line(_runs([None, None])) is None  # a journal from before busy hosts were observed
    assert busy_line(_runs([])) is None
