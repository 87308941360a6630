"""How much of a repeat sweep's wall time is spent measuring: the share inside measured windows and the required
cooldowns, for a sweep with the study's proportions (configs/study.toml) scaled down to fit a few minutes.

The study's run: a window of at least 30 s (and 100 inferences), a warm-up of 10 s (and 50 inferences), a cooldown
of at least 10 s, a 120 s idle baseline rechecked every hour. Here every one of those is halved (15 s, 50
inferences; 5 s, 25 inferences; 5 s) except the baseline, which keeps its share of the study's hour (120 s in
3600 s) of this sweep's budgeted time (6 runs of 25 s): 5 s, measured once. A cheap runtime (ONNX Runtime on CPU, MobileNetV2 batch
1) runs 6 repetitions, after a one-run sweep into another folder has filled the artifact cache (its export and
reference outputs): the measured sweep is a repeat sweep, as a user's second sweep on a host is. Energy comes from a
synthetic RAPL tree (tests/host/testkit/powercap.py) drawing a constant power, so the baseline is really measured.

The wall time is the `greenrt sweep` command's, from its start to its exit (tables and report included); the split
is the report's "where the time went" (orchestrator/report/time_spent.py). The estimate `greenrt plan` gave before
the sweep (config only, no history) is kept beside it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from scale import OUT, VENV_BIN, _load_test_helper

RUNTIME, MODEL, REPETITIONS = "onnxruntime/onnx-from-torch/cpu", "mobilenet_v2", 6
GOAL = 0.80
STUDY = {"window_s": 30.0, "window_iterations": 100, "warmup_s": 10.0, "warmup_iterations": 50, "cooldown_s": 10.0,
         "baseline_s": 120.0, "baseline_recheck_min": 60.0}
SCALE = 0.5


def config_text(name: str, repetitions: int, window_s: float, warmup_s: float, cooldown_s: float,
                baseline_s: float) -> str:
    return "\n".join([
        f'name = "{name}"', f'models = ["{MODEL}"]', "batch_sizes = [1]", f'runtimes = ["{RUNTIME}"]',
        f"repetitions = {repetitions}", "seed = 0",
        "[warmup]", f"iterations = {int(STUDY['warmup_iterations'] * SCALE)}", f"seconds = {warmup_s}",
        "[measure]", f"min_iterations = {int(STUDY['window_iterations'] * SCALE)}", f"min_seconds = {window_s}",
        # adaptive, as the study's: on a host without GPUs it waits its minimum, which is what it requires
        "[cooldown]", 'mode = "adaptive"', f"seconds = {cooldown_s}", "max_seconds = 60.0",
        "[baseline]", f"seconds = {baseline_s}", "recheck_minutes = 0"]) + "\n"


def greenrt(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    done = subprocess.run([str(VENV_BIN / "greenrt"), *args], capture_output=True, text=True, env=env)
    took = time.monotonic() - t0
    if done.returncode != 0:
        raise SystemExit(f"greenrt {' '.join(args)} failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n"
                         f"{done.stderr[-3000:]}")
    return done, took


def main(out: Path) -> None:
    from orchestrator.report.time_spent import share_in_windows, time_table
    from orchestrator.results.store import ResultsDir
    from orchestrator.results.tables import read_runs

    folder = OUT / "time-share"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    window_s, warmup_s = STUDY["window_s"] * SCALE, STUDY["warmup_s"] * SCALE
    cooldown_s = STUDY["cooldown_s"] * SCALE
    per_run = window_s + warmup_s + cooldown_s
    baseline_s = round(STUDY["baseline_s"] / (STUDY["baseline_recheck_min"] * 60) * per_run * REPETITIONS, 1)
    (folder / "warm.toml").write_text(config_text("time-share-warm", 1, 0.1, 0.0, 0.0, 0.5))
    (folder / "repeat.toml").write_text(config_text("time-share", REPETITIONS, window_s, warmup_s, cooldown_s,
                                                    baseline_s))
    powercap = _load_test_helper("powercap")
    tree = powercap.make_powercap_tree(folder / "powercap", packages=1, dram=True)
    env = {**os.environ, "GREENRT_LOCK_DIR": str(folder / "lock")}
    host = ["--launcher", "local", "--powercap-root", str(tree.root)]
    with powercap.ConstantDraw(tree, {"package-0": 20.0, "dram-0": 5.0}):
        greenrt("sweep", "--config", str(folder / "warm.toml"), "--out", str(folder / "warm"), *host, env=env)
        planned, _ = greenrt("plan", "--config", str(folder / "repeat.toml"), "--json", *host, env=env)
        _, wall = greenrt("sweep", "--config", str(folder / "repeat.toml"), "--out", str(folder / "repeat"), *host,
                          env=env)
    results = ResultsDir(folder / "repeat")
    journal = read_runs(results.journal_path, results.root)
    frame, covers = time_table(journal.time, results.read_facts(results.baseline_path, print))
    seconds = dict(zip(frame["part"], frame["seconds"]))
    measuring = (seconds["window"] or 0.0) + (seconds["cooldown"] or 0.0)
    budgets = measuring + (seconds["warm-up"] or 0.0) + (seconds["idle baseline"] or 0.0)
    estimate = json.loads(planned.stdout)["time_estimate"]
    # The study itself (540 runs): its budgets per run, plus the overhead per run measured here (load and the
    # rest of each run), plus what this sweep spent once (preparation, probe, tables, report) and its hourly
    # baselines: a projection from these figures, not a measurement.
    runs = journal.time.runs
    overhead = ((seconds["load"] or 0.0) + (seconds["other"] or 0.0)) / runs
    once = (seconds["preparation"] or 0.0) + (wall - seconds["wall time"])
    study_run = STUDY["window_s"] + STUDY["warmup_s"] + STUDY["cooldown_s"] + overhead
    study_runs_s = 540 * study_run
    study_wall = study_runs_s + once + STUDY["baseline_s"] * (1 + study_runs_s // (STUDY["baseline_recheck_min"] * 60))
    report = {
        "runtime": RUNTIME, "model": MODEL, "batch_size": 1, "runs": journal.time.runs, "scale": SCALE,
        "study": STUDY, "window_s": window_s, "warmup_s": warmup_s, "cooldown_s": cooldown_s, "baseline_s": baseline_s,
        "command_wall_s": round(wall, 1), "parts": {k: (round(v, 2) if v is not None else None)
                                                    for k, v in seconds.items()},
        "share_in_windows_and_cooldowns_of_command": round(measuring / wall, 4),
        "share_in_windows_and_cooldowns_of_sweep": round(share_in_windows(frame) or 0.0, 4),
        "share_in_config_budgets_of_command": round(budgets / wall, 4),
        "ceiling_of_the_config": round((window_s + cooldown_s) / per_run, 4),
        "overhead_per_run_s": round(overhead, 2), "once_s": round(once, 1),
        "projected_study_share": round(540 * (STUDY["window_s"] + STUDY["cooldown_s"]) / study_wall, 4),
        "estimate_low_s": estimate["low_s"], "estimate_high_s": estimate["high_s"],
        "goal": GOAL, "covers": covers, "cpu_count": os.cpu_count(), "load_average": os.getloadavg()[0],
    }
    out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT / "time-share.json")
    main(parser.parse_args().out)
    sys.exit(0)
