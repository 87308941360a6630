"""torch/inductor/cpu through a real sweep and the local launcher: MobileNetV2 batch 1 compiled by inductor in the
torch environment, its outputs compared with torch/native/cpu's (the reference run the sweep adds by itself).

The runner's temp folder (TMPDIR) is the test's, so inductor's private per-run cache lands there and is removed.
No sensors: energy is unavailable here, the test is about the runtime.
"""
from __future__ import annotations

import json

import polars as pl
import pytest

from testkit.sweep_helpers import greenrt, write_config

pytestmark = pytest.mark.process


@pytest.fixture(scope="module")
def inductor_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inductor")
    runner_tmp = tmp / "runner-tmp"
    runner_tmp.mkdir()
    config = write_config(tmp / "inductor.toml", runtimes='["torch/inductor/cpu"]', batch_sizes="[1]")
    out = tmp / "results"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TMPDIR", str(runner_tmp))
        # Its own host-lock folder, as the fault tests: it measures no energy (no sensors), so it need not wait on
        # (or block) another sweep on this host.
        env.setenv("GREENRT_LOCK_DIR", str(tmp / "lock"))
        done = greenrt("sweep", "--config", str(config), "--out", str(out), "--powercap-root", str(tmp / "none"))
    return done, out, runner_tmp


def test_inductor_run_is_measured_and_faithful_to_eager_torch(inductor_sweep):
    done, out, _ = inductor_sweep
    assert done.returncode == 0, done.stdout + done.stderr
    row = pl.read_parquet(out / "tables/runs.parquet").row(0, named=True)
    assert row["runtime"] == "torch/inductor/cpu" and row["status"] == "ok"
    assert row["fidelity_faithful"] is True, row["fidelity_verdict"]
    assert row["fidelity_max_abs_error"] < 1e-3 and row["fidelity_min_cosine"] > 0.9999
    assert row["fidelity_top1_agreement"] == 1.0
    assert row["compiles_in_window"] == 0  # the tables carry the compiler's flag: nothing compiled while timed


def test_the_compile_is_cold_outside_the_window_and_reported(inductor_sweep):
    done, out, runner_tmp = inductor_sweep
    assert done.returncode == 0, done.stdout + done.stderr
    (record,) = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    result = record["result"]
    facts = result["runtime_facts"]
    assert facts["backend"] == "inductor" and facts["mode"] == "default"
    assert facts["graphs_compiled"] >= 1 and facts["graph_breaks"] == 0 and facts["window_clean"] is True
    assert facts["recompilations_in_window"] == 0 and facts["compile_seconds_in_window"] == 0
    # A private cache per run: nothing compiled before is reused, and nothing is left behind.
    assert facts["cache"].startswith("private") and facts["fx_graph_cache"]["hits"] == 0
    assert not list(runner_tmp.glob("greenrt-inductor-*")) and not list(runner_tmp.glob("torchinductor_*"))
    # The compile is the first warm-up inference, far longer than any timed one.
    assert 0 < facts["compile_seconds"] <= result["engine_build_seconds"]
    assert max(result["latencies_ns"]) / 1e9 < result["engine_build_seconds"] / 5
    assert result["iterations"] >= 3
