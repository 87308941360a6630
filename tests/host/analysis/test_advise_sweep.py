"""`greenrt advise` on a real CPU sweep of this machine: two runtimes, MobileNetV2 at batch 1, three repetitions.

No energy sensor is given (the powercap root does not exist), so the advice must fall back to latency and say
why; with 3 runs a side no Mann-Whitney test can reach 0.05 (smallest two-sided p 2/20 = 0.1), so whatever was
measured the verdict must be a tie that asks for at least 4 repetitions, and the figure is the median of the
runs table's own p50 latencies.
"""
from __future__ import annotations

import json
import os
import subprocess

import polars as pl
import pytest

from orchestrator.analysis.advice_schema import Advice
from testkit.sweep_helpers import GREENRT, write_config

pytestmark = pytest.mark.process
RUNTIMES = ("onnxruntime/onnx-from-torch/cpu", "torch/native/cpu")


def greenrt(*args: str, env: dict) -> subprocess.CompletedProcess:
    launcher = ("--launcher", "local") if args[0] == "sweep" else ()
    return subprocess.run([GREENRT, *args, *launcher], capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("advise")
    config = write_config(tmp / "advise.toml", name="advise", batch_sizes="[1]", repetitions=3)
    # A short budget: the test is of the advice, not of the measurement.
    config.write_text(config.read_text().replace("min_seconds = 1.0", "min_seconds = 0.3")
                      .replace("[baseline]\nseconds = 1.0", "[baseline]\nseconds = 0"))
    out = tmp / "results"
    # Its own host-lock folder (as testkit/faults_helpers.py): no energy is measured here, so it neither waits
    # on nor blocks another sweep of this host.
    env = {**os.environ, "GREENRT_LOCK_DIR": str(tmp / "lock")}
    done = greenrt("sweep", "--config", str(config), "--out", str(out), "--powercap-root", str(tmp / "no-powercap"),
                   env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done, out, env


def test_the_sweep_ends_with_the_advice(sweep):
    done, _, _ = sweep
    tail = done.stdout[done.stdout.index("advice: by energy per inference"):]
    assert "mobilenet_v2 bs1 fp32: tie between" in tail
    # The host's caveats (no energy, too few repetitions everywhere) open the summary, once; rows do not repeat them.
    head = done.stdout[:done.stdout.index("cells (median over repetitions)")]
    assert "caveat: Few repetitions: every cell has as few as 3 run(s) per runtime; run at least 4" in head
    assert "caveat: energy unavailable on this host" in head
    assert done.stdout.count("energy unavailable") == 1 and done.stdout.count("repetitions: run at least") == 0
    assert "why: too few repetitions" in tail


def test_advise_ranks_by_latency_and_says_the_runs_cannot_separate(sweep):
    _, out, env = sweep
    result = greenrt("advise", str(out), "--json", env=env)
    assert result.returncode == 0, result.stderr
    advice = Advice.model_validate(json.loads(result.stdout))
    (cell,) = advice.cells
    assert (cell.objective, cell.objective_used, cell.verdict, cell.recommended) == ("energy", "latency", "tie", None)
    assert sorted([cell.leader, *cell.tied_with]) == sorted(RUNTIMES)
    assert cell.reasons[0].startswith("3 repetitions: run at least 4")
    assert any(r.startswith("energy unavailable on this host") for r in cell.reasons)
    assert cell.front == [] and cell.front_note.startswith("no front: energy unavailable on this host")
    runs = pl.read_parquet(out / "tables/runs.parquet").filter(pl.col("runtime") == cell.leader)
    assert runs.height == 3 and cell.figure.runs == 3
    assert cell.figure.median == pytest.approx(runs["latency_p50_ms"].median())
    assert cell.figure.ci_low <= cell.figure.mean <= cell.figure.ci_high
    assert cell.separation.p_value >= 0.1 and cell.separation.significant is False
    for p in cell.runtimes:
        assert p.energy.median is None and p.p99.median > 0 and p.throughput_per_s > 0


def test_the_report_opens_with_the_recommendation_and_says_why_no_front_is_drawn(sweep):
    _, out, _ = sweep
    md = (out / "report" / "report.md").read_text()
    assert md.index("## The answer") < md.index("## Findings") < md.index("## Recommendations")
    assert "| mobilenet_v2 bs1 fp32 | tie: " in md
    # Why no front is drawn is the host's caveat, said once at the top rather than under every cell.
    assert md.count("energy unavailable on this host") == 1
    assert md.index("energy unavailable on this host") < md.index("| mobilenet_v2 bs1 fp32 | tie: ")
    assert not list((out / "report" / "figures").glob("pareto-*.png"))
