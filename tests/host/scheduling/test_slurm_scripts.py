"""sbatch scripts rendered as text, scontrol's answers parsed, and the merge of shard journals: pure parts."""
from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import polars as pl
import pytest

from orchestrator.errors import UserError
from orchestrator.planning.planner import HostCapabilities, plan_sweep
from orchestrator.planning.config import parse_config
from orchestrator.scheduling.merge import host_signature, merge_shards, mixed_hardware_cells
from orchestrator.scheduling.sharded import write_manifest
from orchestrator.scheduling.slurm import (ShardCommand, SlurmOptions, TaskState, array_spec, check_options,
                                           parse_scontrol, render_array_script, render_merge_script)
from orchestrator.results.tables import runs_table


def command(out: Path, config: Path, **change) -> ShardCommand:
    return ShardCommand(**{"greenrt": "/opt/greenrt/bin/greenrt", "config": config, "out": out, "count": 4,
                           "policy": "by-repetition", **change})


def test_array_script_runs_one_exclusive_shard_per_task(tmp_path):
    script = render_array_script("quick", [1, 2, 3, 4], command(tmp_path / "r", tmp_path / "q.toml"),
                                 SlurmOptions(partition="gpu", gpus_per_node=2, time="04:00:00",
                                              extra=("--account=lab", "--constraint=h100")), tmp_path)
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    for expected in ("#SBATCH --array=1-4", "#SBATCH --exclusive", "#SBATCH --nodes=1", "#SBATCH --partition=gpu",
                     "#SBATCH --gres=gpu:2", "#SBATCH --time=04:00:00", "#SBATCH --account=lab",
                     "#SBATCH --constraint=h100", f"#SBATCH --output={tmp_path}/r/shards/%a/slurm-%A_%a.out",
                     f"#SBATCH --chdir={tmp_path}"):
        assert expected in lines
    # sbatch reads options only before the first command
    assert max(i for i, l in enumerate(lines) if l.startswith("#SBATCH")) < lines.index("set -euo pipefail")
    exec_line = lines[-1]
    assert exec_line.startswith("exec /opt/greenrt/bin/greenrt sweep ")
    assert '--shard "${SLURM_ARRAY_TASK_ID}/4"' in exec_line and "--launcher local" in exec_line


def test_the_shard_command_line_survives_bash_with_hostile_paths(tmp_path):
    config = tmp_path / "my config $(touch pwned) `x`.toml"
    script = render_array_script("q", [2], command(tmp_path / "r", config, python="/opt/py thon/bin/python"),
                                 SlurmOptions(), tmp_path)
    exec_line = script.splitlines()[-1]
    # what bash would execute, with the task id Slurm sets
    echoed = subprocess.run(["bash", "-c", exec_line.replace("exec ", "printf '%s\\n' ", 1)], capture_output=True,
                            text=True, env={"SLURM_ARRAY_TASK_ID": "2"}, cwd=tmp_path, check=True).stdout.splitlines()
    assert echoed[echoed.index("--config") + 1] == str(config)
    assert echoed[echoed.index("--shard") + 1] == "2/4"
    assert echoed[echoed.index("--python") + 1] == "/opt/py thon/bin/python"
    assert not (tmp_path / "pwned").exists()


def test_merge_script_merges_the_directory(tmp_path):
    script = render_merge_script("q", "/g/greenrt", tmp_path / "r", SlurmOptions(partition="cpu"), tmp_path)
    assert script.splitlines()[-1] == f"exec /g/greenrt merge {shlex.quote(str(tmp_path / 'r'))}"
    assert "#SBATCH --partition=cpu" in script and "--exclusive" not in script


@pytest.mark.parametrize("options, message", [
    (SlurmOptions(time="1:00\n#SBATCH --uid=0"), "--time"),
    (SlurmOptions(extra=("--account=a\n--uid=0",)), "must be one sbatch option"),
    (SlurmOptions(extra=("account=a",)), "must be one sbatch option starting with '-'"),
    (SlurmOptions(gpus_per_node=-1), "--gpus-per-node -1"),
])
def test_options_that_would_break_an_sbatch_line_are_refused(options, message):
    with pytest.raises(UserError, match=message):
        check_options(options)


@pytest.mark.parametrize("tasks, spec", [([1, 2, 3, 4], "1-4"), ([2], "2"), ([1, 3, 4, 5, 7], "1,3-5,7")])
def test_array_spec(tasks, spec):
    assert array_spec(tasks) == spec


def test_scontrol_lines_give_each_tasks_state_including_a_pending_remainder():
    text = ("JobId=12 ArrayJobId=10 ArrayTaskId=2 JobName=g JobState=CANCELLED Reason=None ExitCode=0:15 "
            "NodeList=node2 Command=/x y\n"
            "JobId=10 ArrayJobId=10 ArrayTaskId=3-4%2 JobName=g JobState=PENDING Reason=Resources ExitCode=0:0 "
            "NodeList=(null)\n"
            "JobId=11 ArrayJobId=10 ArrayTaskId=1 JobState=COMPLETED Reason=None ExitCode=0:0 NodeList=node1\n")
    states = parse_scontrol(text)
    assert states[2] == TaskState("CANCELLED", "0:15", "node2", None) and states[2].finished
    assert states[3] == states[4] == TaskState("PENDING", "0:0", None, "Resources") and not states[3].finished
    assert states[1].state == "COMPLETED"
    assert parse_scontrol("JobId=13 JobState=RUNNING ExitCode=0:0 NodeList=node1")[None].state == "RUNNING"


def _host(cpu: str, gpu: str | None) -> dict:
    sensors = [{"name": "nvml", "available": True, "details": {"driver_version": "580.1",
                                                                "gpus": [{"index": 0, "name": gpu}]}}] if gpu else []
    return {"cpu_model": cpu, "logical_cpus": 64, "sensors": sensors}


def _record(run, status="ok", started="t0") -> dict:
    c = run.cell
    return {"run_id": run.run_id, "index": run.index, "repetition": run.repetition, "model": c.model,
            "batch_size": c.batch_size, "runtime": c.runtime, "precision": c.precision, "status": status,
            "started_at": started, "result": None, "energy": None}


def sharded_dir(tmp_path: Path, hosts: dict[int, dict]) -> tuple[Path, list]:
    cfg = parse_config({"name": "m", "models": ["mobilenet_v2"], "batch_sizes": [1],
                        "runtimes": ["torch/native/cpu", "onnxruntime/onnx-from-torch/cpu"], "repetitions": 4})
    plan = plan_sweep(cfg, HostCapabilities())
    root = tmp_path / "r"
    (root / "shards").mkdir(parents=True)
    (root / "plan.json").write_text(json.dumps(plan.to_dict()))
    write_manifest(root, 4, "by-repetition", [1, 2, 3, 4], tmp_path / "c.toml")
    for i, host in hosts.items():
        (root / f"shards/{i}").mkdir()
        (root / f"shards/{i}/host.json").write_text(json.dumps(host))
    return root, list(plan.runs)


def test_merge_is_the_union_with_missing_runs_counted_per_shard(tmp_path):
    h100, a100 = _host("EPYC", "NVIDIA H100"), _host("EPYC", "NVIDIA A100")
    root, runs = sharded_dir(tmp_path, {1: h100, 2: h100, 3: a100})
    journals = {1: [r for r in runs if r.repetition == 0], 2: [r for r in runs if r.repetition == 1][:1],
                3: [r for r in runs if r.repetition == 2]}
    for i, shard_runs in journals.items():
        (root / f"shards/{i}/runs.jsonl").write_text("".join(json.dumps(_record(r)) + "\n" for r in shard_runs))
    # an earlier merge holds shard 1's first run from an older attempt: the shard's record wins
    (root / "runs.jsonl").write_text(json.dumps(_record(runs[0], "failed", "old")) + "\n")
    states = {1: TaskState("COMPLETED", "0:0", "n1"), 2: TaskState("FAILED", "1:0", "n2"),
              3: TaskState("COMPLETED", "0:0", "n3"), 4: TaskState("CANCELLED", "0:15")}
    summary = merge_shards(root, states)
    merged = [json.loads(line) for line in (root / "runs.jsonl").read_text().splitlines()]
    assert sorted(r["run_id"] for r in merged) == sorted(r.run_id for rs in journals.values() for r in rs)
    assert [r["index"] for r in merged] == sorted(r["index"] for r in merged)
    first = next(r for r in merged if r["run_id"] == runs[0].run_id)
    assert (first["status"], first["started_at"], first["shard"]) == ("ok", "t0", 1)
    assert (summary.planned, summary.recorded, summary.missing) == (8, 5, 3)
    by_index = {s.index: s for s in summary.shards}
    assert (by_index[2].state, by_index[2].exit_code, by_index[2].missing) == ("FAILED", "1:0", 1)
    assert (by_index[4].state, by_index[4].recorded, by_index[4].missing) == ("CANCELLED", 0, 2)
    assert summary.hosts == {host_signature(h100): [1, 2], host_signature(a100): [3]}
    assert json.loads((root / "merge.json").read_text())["missing"] == 3
    assert json.loads((root / "host.json").read_text())["shard_hosts"] == summary.hosts


def test_host_signature_tells_gpus_and_drivers_apart():
    assert host_signature(_host("EPYC", "NVIDIA H100")) == "EPYC (64 CPUs); 1x NVIDIA H100, driver 580.1"
    assert host_signature(_host("EPYC", None)) == "EPYC (64 CPUs); no GPU"
    assert host_signature(_host("EPYC", "NVIDIA H100")) != host_signature(_host("EPYC", "NVIDIA A100"))


def test_cells_whose_repetitions_mix_hardware_are_named(tmp_path):
    root, runs = sharded_dir(tmp_path, {1: _host("EPYC", "NVIDIA H100"), 2: _host("EPYC", "NVIDIA A100")})
    for i in (1, 2):
        (root / f"shards/{i}/runs.jsonl").write_text(
            "".join(json.dumps(_record(r)) + "\n" for r in runs if r.repetition == i - 1))
    merge_shards(root)
    table = runs_table([json.loads(line) for line in (root / "runs.jsonl").read_text().splitlines()])
    assert set(table["shard"]) == {1, 2} and table["host"].n_unique() == 2
    assert mixed_hardware_cells(table) == [
        "mobilenet_v2 bs1 onnxruntime/onnx-from-torch/cpu fp32 (2 hosts)", "mobilenet_v2 bs1 torch/native/cpu fp32 (2 hosts)"]
    same = table.with_columns(pl.lit("one host").alias("host"))
    assert mixed_hardware_cells(same) == [] and mixed_hardware_cells(table.drop("host")) == []


@pytest.mark.slow  # a full report with its figures
def test_the_report_warns_when_a_cells_repetitions_come_from_different_hardware(tmp_path):
    from orchestrator.report.build import build_report
    from testkit.synthetic_sweep import journal, write_sweep

    records = journal()
    for i, record in enumerate(records):  # alternate repetitions between two kinds of node, as two shards would
        record["shard"], record["host_signature"] = (1, "EPYC; 1x H100") if i % 2 else (2, "EPYC; 1x A100")
    files = build_report(write_sweep(tmp_path / "mixed", records))
    assert files.findings[0].startswith("warning: 4 cell(s) have repetitions measured on different hardware")
    assert "resnet50 bs2 torch/native/cpu fp32 (2 hosts)" in files.findings[0]
    assert "different hardware" in files.markdown.read_text()
    plain = build_report(write_sweep(tmp_path / "plain"))
    assert not any("different hardware" in line for line in plain.findings)
