"""Runtime comparisons (Mann-Whitney U, Kruskal-Wallis, Cliff's delta, Holm), the best-runtime table, two sweeps."""
import itertools

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps

from orchestrator.analysis.best import best_runtimes
from orchestrator.analysis.comparisons import cliffs_delta, compare_runtimes, delta_magnitude, holm
from orchestrator.analysis.sweeps import compare_sweeps
from orchestrator.results.tables import runs_table
from testkit.synthetic_sweep import JPI_R50, LAT_R50, ORT, TF, TORCH, journal, unavailable_journal


def test_holm_by_hand():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> raised to 0.06 (monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, None, 0.9]) == [pytest.approx(1.0), None, pytest.approx(1.0)]
    assert holm([]) == []


def test_cliffs_delta_by_hand():
    # pairs (a, b): (1,2)< (1,4)< (2,2)= (2,4)< (3,2)> (3,4)<  ->  (1 - 4) / 6
    assert cliffs_delta(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0])) == pytest.approx(-0.5)
    assert cliffs_delta(np.array([5.0, 5.0]), np.array([5.0, 5.0])) == 0.0
    assert cliffs_delta(np.array([9.0, 8.0]), np.array([1.0, 2.0])) == 1.0
    assert [delta_magnitude(d) for d in (0.1, -0.2, 0.4, -0.9)] == ["negligible", "small", "medium", "large"]


def _pairs_of(objective):
    pairs, groups = compare_runtimes(runs_table(journal()))
    return (pairs.filter((pl.col("model") == "resnet50") & (pl.col("objective") == objective)),
            groups.filter((pl.col("model") == "resnet50") & (pl.col("objective") == objective)))


def test_pairwise_tests_match_scipy_on_the_per_run_values():
    pairs, groups = _pairs_of("latency")
    assert pairs.height == 3
    raw = {}
    for a, b in itertools.combinations(sorted(LAT_R50), 2):
        row = pairs.filter((pl.col("runtime_a") == a) & (pl.col("runtime_b") == b)).row(0, named=True)
        ref = sps.mannwhitneyu(LAT_R50[a], LAT_R50[b], alternative="two-sided")
        assert row["u_statistic"] == pytest.approx(ref.statistic)
        assert row["p_value"] == pytest.approx(ref.pvalue)
        raw[(a, b)] = ref.pvalue
    # Holm by hand over the family of three: the smallest two (both 2/252 exact) times 3, then the tie's p=1.
    ordered = sorted(raw.items(), key=lambda kv: kv[1])
    expected, running = {}, 0.0
    for rank, (key, p) in enumerate(ordered):
        running = max(running, min(1.0, (3 - rank) * p))
        expected[key] = running
    for row in pairs.iter_rows(named=True):
        assert row["p_holm"] == pytest.approx(expected[(row["runtime_a"], row["runtime_b"])])
    kw = groups.row(0, named=True)
    ref = sps.kruskal(*(LAT_R50[r] for r in sorted(LAT_R50)))
    assert kw["h_statistic"] == pytest.approx(ref.statistic) and kw["p_value"] == pytest.approx(ref.pvalue)


def test_tied_runtimes_are_not_significant_and_have_no_effect():
    pairs, _ = _pairs_of("latency")
    tie = pairs.filter((pl.col("runtime_a") == TF) & (pl.col("runtime_b") == TORCH)).row(0, named=True)
    assert tie["p_value"] == pytest.approx(1.0) and tie["cliffs_delta"] == 0.0 and tie["significant"] is False
    apart = pairs.filter((pl.col("runtime_a") == ORT) & (pl.col("runtime_b") == TORCH)).row(0, named=True)
    assert apart["cliffs_delta"] == 1.0 and apart["magnitude"] == "large" and apart["significant"] is True


def test_energy_comparison_uses_energy_per_inference_per_run():
    pairs, _ = _pairs_of("energy")
    row = pairs.filter((pl.col("runtime_a") == ORT) & (pl.col("runtime_b") == TF)).row(0, named=True)
    ref = sps.mannwhitneyu(JPI_R50[ORT], JPI_R50[TF], alternative="two-sided")
    assert row["p_value"] == pytest.approx(ref.pvalue)
    assert row["median_a"] == pytest.approx(np.median(JPI_R50[ORT]))
    assert row["cliffs_delta"] == -1.0


def test_a_single_run_cell_is_not_tested():
    pairs, groups = compare_runtimes(runs_table(journal()))
    mbv2 = pairs.filter(pl.col("model") == "mobilenet_v2").row(0, named=True)
    assert mbv2["p_value"] is None and mbv2["significant"] is None and mbv2["cliffs_delta"] is None
    assert "has 1 run" in mbv2["note"]
    kw = groups.filter(pl.col("model") == "mobilenet_v2").row(0, named=True)
    assert kw["p_value"] is None and "at least 2 needed" in kw["note"]
    assert pairs.filter((pl.col("model") == "mobilenet_v2") & (pl.col("objective") == "energy")).is_empty()


def test_best_runtime_table():
    best = best_runtimes(runs_table(journal()))
    pick = lambda model, objective: best.filter((pl.col("model") == model) & (pl.col("objective") == objective)).row(0, named=True)  # noqa: E731
    latency = pick("resnet50", "latency")
    assert latency["verdict"] == "tie" and {latency["best"], latency["tied_with"]} == {TF, TORCH}
    energy = pick("resnet50", "energy")
    assert energy["verdict"] == "best" and energy["best"] == TORCH and energy["median"] == pytest.approx(1.2)
    assert energy["runner_up"] == ORT
    single = pick("mobilenet_v2", "latency")
    assert single["verdict"] == "untested" and single["best"] == TORCH
    missing = pick("mobilenet_v2", "energy")
    assert missing["verdict"] == "no data" and missing["best"] is None
    assert "no readable energy sensor" in missing["note"]


def test_best_is_no_data_everywhere_without_energy():
    best = best_runtimes(runs_table(unavailable_journal())).filter(pl.col("objective") == "energy")
    assert best["verdict"].to_list() == ["no data", "no data"]


def test_two_sweeps_side_by_side():
    a = runs_table(journal())
    slower = journal()
    for r in slower:
        if r["status"] == "ok" and r["model"] == "resnet50":
            r["result"]["latencies_ns"] = [2 * x for x in r["result"]["latencies_ns"]]
    table = compare_sweeps(a, runs_table(slower))
    row = table.filter((pl.col("model") == "resnet50") & (pl.col("runtime") == TORCH)).row(0, named=True)
    assert row["latency_ratio"] == pytest.approx(2.0)
    ref = sps.mannwhitneyu(LAT_R50[TORCH], [2 * v for v in LAT_R50[TORCH]], alternative="two-sided").pvalue
    assert row["latency_p"] == pytest.approx(ref)
    assert row["energy_ratio"] == pytest.approx(1.0) and row["energy_significant"] is False
    single = table.filter((pl.col("model") == "mobilenet_v2") & (pl.col("runtime") == TORCH)).row(0, named=True)
    assert single["latency_p"] is None and single["latency_significant"] is None
    assert "not tested" in single["latency_note"] and "energy unavailable" in single["energy_note"]


def _cell_of(runtimes: int, runs: int) -> pl.DataFrame:
    """One cell: runtime k's runs take latencies 10k .. 10k + runs - 1 ms, so each runtime is below the next."""
    rows = [{"model": "resnet50", "batch_size": 1, "precision": "fp32", "runtime": f"rt{k}", "status": "ok",
             "latency_p50_ms": float(10 * k + i), "j_per_inference": None}
            for k in range(runtimes) for i in range(runs)]
    return pl.DataFrame(rows, schema_overrides={"j_per_inference": pl.Float64})


def test_best_is_judged_by_the_leaders_comparisons_not_by_every_pair():
    # 6 runtimes, 5 runs each, wholly apart: every pair's exact p is 2/252. Holm over all 15 pairs would make
    # 15 x 2/252 = 0.119 (no pair significant); the claim "rt0 is best" rests on its 5 comparisons: 5 x 2/252 = 0.040.
    runs = _cell_of(6, 5)
    pairs = compare_runtimes(runs, {"latency": "latency_p50_ms"})[0]
    assert pairs["p_holm"].to_list() == pytest.approx([15 * 2 / 252] * 15) and not pairs["significant"].any()
    best = best_runtimes(runs, pairs, {"latency": "latency_p50_ms"}).row(0, named=True)
    assert (best["best"], best["verdict"], best["comparisons"]) == ("rt0", "best", 5)
    assert best["runner_up"] == "rt1" and best["runner_up_p_holm"] == pytest.approx(5 * 2 / 252)
    # 8 runtimes: 7 x 2/252 = 0.056, so the same separation no longer suffices, and the tie says so.
    tie = best_runtimes(_cell_of(8, 5), None, {"latency": "latency_p50_ms"}).row(0, named=True)
    assert tie["verdict"] == "tie" and tie["tied_with"].split(", ") == [f"rt{k}" for k in range(1, 8)]


def test_a_sweep_without_runs_has_empty_comparisons_not_an_error():
    """Every cell skipped: the runs table has no row (and, built without a record, no column)."""
    for runs in (pl.DataFrame(), runs_table([])):
        pairs, kruskal = compare_runtimes(runs)
        assert pairs.is_empty() and kruskal.is_empty()
        assert {"model", "runtime_a", "p_holm"} <= set(pairs.columns) and "h_statistic" in kruskal.columns
    assert best_runtimes(runs_table([])).is_empty()
