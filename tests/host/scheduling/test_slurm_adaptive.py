"""An adaptive sweep sharded through a real Slurm cluster on this machine (slurm_cluster.py): by default each shard
holds whole groups (model, batch size, precision) and runs its own rounds; the merge counts the runs the rounds
never needed as not needed (not missing), and its stopping.json holds each shard's verdicts unchanged.

Two groups (batch 1 and 2) of the cells of testkit/adaptive_sweeps.py: each group's verdict is known after `min`
rounds.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from testkit.adaptive_sweeps import FAST, SLOW, adaptive_config
from testkit.slurm_cluster import SlurmCluster

pytestmark = [pytest.mark.slurm, pytest.mark.root, pytest.mark.process]

GREENRT = str(Path(sys.executable).with_name("greenrt"))
@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("adaptive-slurm")
    cluster = SlurmCluster(folder / "slurm", nodes=2).start()
    try:
        config, out = folder / "adaptive.toml", folder / "results"
        adaptive_config(config, name="adaptive-sharded", batch_sizes="[1, 2]", min_seconds=0.2)
        run = lambda *args: subprocess.run([GREENRT, *args], capture_output=True, text=True,  # noqa: E731
                                           timeout=600, env=cluster.env)
        submitted = run("sweep", "--config", str(config), "--out", str(out), "--scheduler", "slurm", "--shards", "2",
                        "--powercap-root", str(folder / "no-rapl"))
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        watched = run("status", str(out), "--wait", "--interval", "1")
        yield out, submitted, watched
    finally:
        cluster.stop()


def test_each_shard_holds_whole_groups_and_runs_its_own_rounds(sharded):
    out, submitted, watched = sharded
    assert "32 runs in 2 shards (by-group)" in submitted.stdout, submitted.stdout
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert "by-group" in (out / "shards/shards.sbatch").read_text()
    for i in (1, 2):
        records = [json.loads(line) for line in (out / f"shards/{i}/runs.jsonl").read_text().splitlines()]
        assert len({r["batch_size"] for r in records}) == 1  # one group per shard, both its runtimes
        assert {r["runtime"] for r in records} == {FAST, SLOW}
        assert sorted(r["repetition"] for r in records) == [0, 0, 1, 1, 2, 2, 3, 3]  # 4 rounds of at most 8
        assert f"shard {i}/2 COMPLETED exit 0:0" in watched.stdout


def test_the_merge_keeps_each_shards_verdicts_and_counts_no_unneeded_run_missing(sharded):
    out, _, _ = sharded
    merged = json.loads((out / "stopping.json").read_text())
    assert merged["finished"] and len(merged["cells"]) == 4
    for i in (1, 2):
        shard = json.loads((out / f"shards/{i}/stopping.json").read_text())
        assert shard["finished"]
        mine = shard["cells"]
        assert {c: (s["stopped_by"], s["runs"], s["why"]) for c, s in mine.items()} == \
               {c: (merged["cells"][c]["stopped_by"], merged["cells"][c]["runs"], merged["cells"][c]["why"])
                for c in mine}
    assert {(s["stopped_by"], s["runs"]) for s in merged["cells"].values()} == {("verdict", 4)}
    summary = json.loads((out / "merge.json").read_text())
    assert (summary["planned"], summary["recorded"], summary["missing"]) == (16, 16, 0)  # of 32 planned up to max
    assert "## Adaptive repetitions" in (out / "report/report.md").read_text()
    best = pl.read_csv(out / "report/tables/best.csv").filter(pl.col("objective") == "latency")
    assert best.sort("batch_size").select("batch_size", "best", "verdict").rows() == [(1, FAST, "best"),
                                                                                     (2, FAST, "best")]
