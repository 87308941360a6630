"""A results directory written before the typed run record (journal schema 1, greenrt 53acdba) still resumes and
reports: nothing is measured again, nothing is rewritten, and the tables read every record."""
from __future__ import annotations

import shutil
import subprocess

import polars as pl
import pytest

from testkit.faults_helpers import sweep_env
from orchestrator.results.store import ResultsDir
from testkit.sweep_helpers import GREENRT
from testkit.paths import FIXTURES

FIXTURE = FIXTURES / "journal-schema1"

pytestmark = pytest.mark.process


@pytest.fixture
def old_sweep(tmp_path):
    out = tmp_path / "schema1"
    out.mkdir()
    for name in ("plan.json", "host.json", "baseline.json", "runs.jsonl"):
        shutil.copy(FIXTURE / name, out / name)
    return out


def test_the_store_reads_every_schema_1_record(old_sweep):
    records, problems = ResultsDir(old_sweep).records()
    assert problems == [] and len(records) == 2
    assert {r.schema_version for r in records} == {1} and all(r.ok for r in records)
    assert all(r.gpus == [] for r in records)  # schema 1 knew no per-GPU attribution


def test_an_old_journal_resumes_without_measuring_anything_again(old_sweep, tmp_path):
    journal = (old_sweep / "runs.jsonl").read_bytes()
    done = subprocess.run([GREENRT, "sweep", "--config", str(FIXTURE / "schema1.toml"), "--out", str(old_sweep),
                           "--launcher", "local", "--powercap-root", str(tmp_path / "no-powercap")],
                          capture_output=True, text=True, timeout=300, env=sweep_env(tmp_path / "lock"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 runs planned, 2 already recorded" in done.stdout
    assert (old_sweep / "runs.jsonl").read_bytes() == journal  # not a byte rewritten
    runs = pl.read_parquet(old_sweep / "tables/runs.parquet")
    assert runs["status"].to_list() == ["ok", "ok"]
    assert (runs["latency_p50_ms"] > 0).all() and runs["fidelity_faithful"].to_list() == [True, True]
    assert (old_sweep / "report" / "report.md").exists()
