"""Sharding a plan: pure functions, and the CLI's refusals of impossible or malformed splits."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.planning.config import parse_config
from orchestrator.errors import UserError
from orchestrator.planning.planner import HostCapabilities, plan_sweep
from orchestrator.scheduling.shards import parse_shard, policy_for, shard_plan, split_runs, ShardSpec

GREENRT = str(Path(sys.executable).with_name("greenrt"))


def make_plan(repetitions=10, models=("resnet50", "mobilenet_v2"), batches=(1, 64)):
    cfg = parse_config({"name": "s", "models": list(models), "batch_sizes": list(batches),
                        "runtimes": ["torch/native/cpu", "onnxruntime/onnx-from-torch/cpu"],
                        "repetitions": repetitions})
    return plan_sweep(cfg, HostCapabilities())


@pytest.mark.parametrize("policy", ["by-repetition", "by-cell", "by-group"])
@pytest.mark.parametrize("count", [1, 3, 4])
def test_shards_partition_the_plan_in_its_order(policy, count):
    plan = make_plan()
    shards = split_runs(plan, count, policy)
    assert len(shards) == count and all(shards)
    ids = [r.run_id for s in shards for r in s]
    assert sorted(ids) == sorted(r.run_id for r in plan.runs) and len(ids) == len(set(ids))
    for shard in shards:
        assert [r.index for r in shard] == sorted(r.index for r in shard)


def test_by_repetition_gives_every_shard_every_cell_and_balanced_repetitions():
    plan = make_plan(repetitions=10)
    cells = {r.cell.key for r in plan.runs}
    shards = split_runs(plan, 4, "by-repetition")
    reps = [sorted({r.repetition for r in s}) for s in shards]
    assert reps == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]
    for shard in shards:
        assert {r.cell.key for r in shard} == cells  # paired comparisons within each host
        assert len(shard) == len(cells) * len({r.repetition for r in shard})


def test_by_cell_keeps_all_repetitions_of_a_cell_on_one_shard():
    plan = make_plan(repetitions=5)
    shards = split_runs(plan, 3, "by-cell")
    owners: dict[str, set[int]] = {}
    for i, shard in enumerate(shards):
        for run in shard:
            owners.setdefault(run.cell.key, set()).add(i)
    assert all(len(o) == 1 for o in owners.values()) and len(owners) == 8
    assert sorted(len(s) for s in shards) == [10, 15, 15]  # 8 cells over 3 shards: 3, 3, 2 cells of 5 runs


def test_by_group_keeps_every_runtime_and_repetition_of_a_group_on_one_shard():
    plan = make_plan(repetitions={"min": 2, "max": 5, "stop": "verdict"})
    assert len(plan.runs) == 40  # every run up to max
    shards = split_runs(plan, 3, "by-group")
    owners: dict[tuple, set[int]] = {}
    for i, shard in enumerate(shards):
        for run in shard:
            owners.setdefault((run.cell.model, run.cell.batch_size, run.cell.precision), set()).add(i)
        assert {len({r.repetition for r in shard if r.cell == c}) for c in {r.cell for r in shard}} == {5}
    assert all(len(o) == 1 for o in owners.values()) and len(owners) == 4
    assert sorted(len(s) for s in shards) == [10, 10, 20]  # 4 groups of 2 runtimes x 5 repetitions over 3 shards
    with pytest.raises(UserError, match="need at least 5 groups, the plan has 4; use fewer shards"):
        split_runs(plan, 5, "by-group")


def test_an_adaptive_sweep_shards_by_group_and_refuses_a_policy_that_splits_its_rounds():
    verdict, precision = {"min": 2, "max": 5, "stop": "verdict"}, {"min": 2, "max": 5, "stop": "precision"}
    assert policy_for(None, None) == "by-repetition" and policy_for(None, verdict) == "by-group"
    assert policy_for("by-cell", None) == "by-cell" and policy_for("by-group", None) == "by-group"
    assert policy_for("by-cell", precision) == "by-cell"  # a precision rule judges each cell alone
    with pytest.raises(UserError, match=r"^--shard-policy by-repetition: an adaptive sweep \(stop = 'verdict'\) "
                                        r"decides each round from the rounds before it.*valid: by-group"):
        policy_for("by-repetition", verdict)
    with pytest.raises(UserError, match="by-cell puts a group's runtimes in different shards; valid: by-group"):
        policy_for("by-cell", verdict)
    with pytest.raises(UserError, match="unknown shard policy 'by-model'"):
        policy_for("by-model", verdict)


def test_shard_plan_keeps_the_digest_and_takes_its_share():
    plan = make_plan(repetitions=4)
    mine = shard_plan(plan, ShardSpec(2, 4), "by-repetition")
    assert mine.config_digest == plan.config_digest and mine.skipped == plan.skipped
    assert {r.repetition for r in mine.runs} == {1} and len(mine.runs) == 8


def test_impossible_splits_are_refused_with_the_way_out():
    with pytest.raises(UserError, match="5 shards by repetition need at least 5 repetitions, the plan has 4; "
                                        "use fewer shards or --shard-policy by-cell"):
        split_runs(make_plan(repetitions=4), 5, "by-repetition")
    with pytest.raises(UserError, match="need at least 9 runnable cells, the plan has 8"):
        split_runs(make_plan(repetitions=1), 9, "by-cell")
    with pytest.raises(UserError, match="unknown shard policy 'by-model'; valid: by-repetition, by-cell, by-group"):
        split_runs(make_plan(), 2, "by-model")


@pytest.mark.parametrize("text, spec", [("1/4", ShardSpec(1, 4)), (" 4 / 4 ", ShardSpec(4, 4))])
def test_parse_shard(text, spec):
    assert parse_shard(text) == spec


@pytest.mark.parametrize("text", ["0/4", "5/4", "2", "a/b", "1/0"])
def test_parse_shard_refuses(text):
    with pytest.raises(UserError, match="expected i/N with 1 <= i <= N"):
        parse_shard(text)


@pytest.mark.parametrize("args, message", [
    (["--scheduler", "pbs", "--shards", "2"], "unknown scheduler 'pbs'; valid: none, slurm"),
    (["--scheduler", "slurm", "--shards", "2", "--shard-policy", "by-model"],
     "unknown shard policy 'by-model'; valid: by-repetition, by-cell, by-group"),
    (["--shard", "5/4"], "--shard '5/4': expected i/N with 1 <= i <= N"),
    (["--shards", "2"], "need --scheduler slurm; valid schedulers: none, slurm"),
    (["--scheduler", "slurm"], "--scheduler slurm needs --shards N"),
    (["--scheduler", "slurm", "--shards", "2", "--partition", "a b"], "--partition 'a b': must be non-empty"),
])
@pytest.mark.process
def test_bad_sharding_options_exit_2_with_one_line(tmp_path, args, message):
    config = tmp_path / "c.toml"
    config.write_text('name = "c"\nmodels = ["mobilenet_v2"]\nruntimes = ["torch/native/cpu"]\nbatch_sizes = [1]\n'
                      'repetitions = 2\n')
    out = tmp_path / "out"
    done = subprocess.run([GREENRT, "sweep", "--config", str(config), "--out", str(out), "--powercap-root",
                           str(tmp_path / "none"), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.process
def test_plan_shows_the_split(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('name = "c"\nmodels = ["mobilenet_v2"]\nruntimes = ["torch/native/cpu"]\nbatch_sizes = [1, 2]\n'
                      'repetitions = 3\n')
    done = subprocess.run([GREENRT, "plan", "--config", str(config), "--shards", "3", "--json"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    shards = json.loads(done.stdout)["shards"]
    assert [len(s) for s in shards] == [2, 2, 2] and all(s[0].startswith(f"r00{i}") for i, s in enumerate(shards))
