"""The busy-host verdict on the run record and in the runs table: journaled with the record and read back the
same; absent (not null) from a record that was not observed, so that older journals are written back byte for
byte; its columns say busy, others' share, steal and the top other process, and are empty where not observed."""
from __future__ import annotations

import json

from orchestrator.results.record import from_journal
from orchestrator.results.store import ResultsDir
from orchestrator.results.tables import runs_table
from testkit.interference_payloads import payload
from testkit.records import make_record


def test_the_verdict_is_journaled_and_reads_back_the_same(tmp_path):
    record = from_journal(make_record("r000-busy"))
    record.interference = payload(0.45)
    record.interference.earlier_flagged_attempts = 1
    results = ResultsDir(tmp_path / "out")
    results.root.mkdir()
    results.append(record)
    [line] = results.journal_path.read_text().splitlines()
    written = json.loads(line)["interference"]
    assert written["flagged"] is True and written["others_share"] == 0.45
    assert written["top"][0]["comm"] == "python3" and written["earlier_flagged_attempts"] == 1
    [again], problems = results.records()
    assert problems == [] and again.interference == record.interference


def test_a_record_not_observed_has_no_interference_key():
    record = from_journal(make_record("r000-old"))
    assert record.interference is None and "interference" not in record.to_journal()


def test_the_runs_table_says_which_runs_were_busy_by_how_much_and_by_what():
    busy, quiet, old = (from_journal(make_record(rid, index=i)) for i, rid in enumerate(("r0-busy", "r1-quiet", "r2-old")))
    busy.interference, quiet.interference = payload(0.45, comm="stress-ng", pid=77), payload(0.01)
    rows = {r["run_id"]: r for r in runs_table([busy, quiet, old]).to_dicts()}
    assert (rows["r0-busy"]["busy"], rows["r1-quiet"]["busy"], rows["r2-old"]["busy"]) == (True, False, None)
    assert rows["r0-busy"]["others_share"] == 0.45 and rows["r1-quiet"]["others_share"] == 0.01
    assert rows["r0-busy"]["top_other_process"] == "stress-ng (pid 77) 45.0%"
    assert rows["r0-busy"]["steal_share"] == 0.0
    assert all(rows["r2-old"][c] is None for c in ("others_share", "steal_share", "top_other_process"))
