"""Cell statistics and the energy-time correlation, each against numpy/scipy on the raw numbers or by hand."""
import numpy as np
import polars as pl
import pytest
from scipy import stats as sps

from orchestrator.analysis.correlation import correlate, energy_time_correlations
from orchestrator.analysis.stats import N_RESAMPLES, cell_statistics, summarize
from orchestrator.results.tables import runs_table
from testkit.synthetic_sweep import DYNAMIC_SHARE, GPU_SHARE, JPI_R50, LAT_MBV2, LAT_R50, ORT, TORCH, journal, unavailable_journal


def _stat(stats, model, runtime, metric):
    rows = stats.filter((pl.col("model") == model) & (pl.col("runtime") == runtime) & (pl.col("metric") == metric))
    assert rows.height == 1
    return rows.row(0, named=True)


def test_summary_by_hand_and_against_scipy_bootstrap():
    values = [1.0, 2.0, 3.0, 4.0]
    s = summarize(values, seed=7)
    assert (s.n, s.median, s.q1, s.q3, s.iqr, s.mean) == (4, 2.5, 1.75, 3.25, 1.5, 2.5)  # linear quartiles by hand
    ref = sps.bootstrap((np.array(values),), np.mean, confidence_level=0.95, n_resamples=N_RESAMPLES,
                        method="percentile", rng=np.random.default_rng(7)).confidence_interval
    assert (s.ci_low, s.ci_high) == pytest.approx((ref.low, ref.high))
    assert 1.0 <= s.ci_low < 2.5 < s.ci_high <= 4.0


def test_bootstrap_interval_agrees_with_the_t_interval_on_a_large_sample():
    x = np.random.default_rng(3).normal(10.0, 2.0, 400)
    s = summarize(x, seed=0)
    half = sps.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    assert s.ci_low == pytest.approx(x.mean() - half, abs=0.05)
    assert s.ci_high == pytest.approx(x.mean() + half, abs=0.05)


def test_same_seed_same_interval_and_another_seed_another():
    x = np.random.default_rng(5).lognormal(0.0, 1.0, 9)  # continuous: the percentiles fall between resamples
    assert summarize(x, seed=1) == summarize(x, seed=1)
    assert summarize(x, seed=1).ci_low != summarize(x, seed=2).ci_low


def test_a_single_run_has_no_spread_and_no_interval_never_zero():
    s = summarize([5.0])
    assert s.median == 5.0 and s.mean == 5.0
    assert s.iqr is None and s.ci_low is None and s.ci_high is None
    assert "one run" in s.note


def test_ties_give_a_zero_width_interval_at_the_tied_value():
    s = summarize([2.0, 2.0, 2.0])
    assert (s.ci_low, s.ci_high, s.iqr) == (2.0, 2.0, 0.0)
    assert s.note == "all runs equal"


def test_no_value_says_why():
    s = summarize([], missing_reason="energy unavailable: no sensor")
    assert s.n == 0 and s.median is None and s.note == "energy unavailable: no sensor"


def test_cell_statistics_on_the_synthetic_journal():
    stats = cell_statistics(runs_table(journal()), seed=0)
    jpi = _stat(stats, "resnet50", TORCH, "j_per_inference")
    assert jpi["n"] == 5 and jpi["median"] == pytest.approx(np.median(JPI_R50[TORCH]))
    assert jpi["mean"] == pytest.approx(np.mean(JPI_R50[TORCH]))
    assert jpi["iqr"] == pytest.approx(np.subtract(*np.percentile(JPI_R50[TORCH], [75, 25])))
    assert jpi["ci_low"] < jpi["mean"] < jpi["ci_high"]
    gpu = _stat(stats, "resnet50", TORCH, "gpu_j_per_inference")
    assert gpu["median"] == pytest.approx(np.median(JPI_R50[TORCH]) * GPU_SHARE)
    cpu_dyn = _stat(stats, "resnet50", TORCH, "cpu_dynamic_j_per_inference")
    assert cpu_dyn["median"] == pytest.approx(np.median(JPI_R50[TORCH]) * (1 - GPU_SHARE) * DYNAMIC_SHARE)
    p50 = _stat(stats, "resnet50", ORT, "latency_p50_ms")
    assert (p50["runs"], p50["ok_runs"], p50["n"]) == (6, 5, 5)  # the failed run is counted, not measured
    assert p50["median"] == pytest.approx(np.median(LAT_R50[ORT]))
    tput = _stat(stats, "resnet50", ORT, "throughput_per_s")
    assert tput["median"] == pytest.approx(np.median([2 / (v / 1e3) for v in LAT_R50[ORT]]))


def test_single_run_cell_and_missing_energy_in_the_journal():
    stats = cell_statistics(runs_table(journal()))
    single = _stat(stats, "mobilenet_v2", TORCH, "latency_p50_ms")
    assert single["n"] == 1 and single["median"] == LAT_MBV2[TORCH][0] and single["ci_low"] is None
    energy = _stat(stats, "mobilenet_v2", ORT, "j_per_inference")
    assert energy["n"] == 0 and energy["median"] is None and energy["mean"] is None
    assert energy["note"].startswith("energy unavailable: no readable energy sensor")


def _cell_medians(records):
    """Per cell: median J/inference and median s/inference, computed from the records without greenrt."""
    cells = {}
    for r in records:
        if r["status"] != "ok" or not r["energy"]["channels"]:
            continue
        samples = r["result"]["iterations"] * r["batch_size"]
        total = sum(c["raw_j"] for c in r["energy"]["channels"].values())
        window = (r["result"]["window_end_ns"] - r["result"]["window_start_ns"]) / 1e9
        cells.setdefault((r["model"], r["runtime"]), []).append((total / samples, window / samples))
    return [(float(np.median([e for e, _ in v])), float(np.median([t for _, t in v]))) for v in cells.values()]


def test_correlation_matches_scipy_on_cell_medians():
    records = journal()
    table = energy_time_correlations(runs_table(records))
    row = table.filter((pl.col("scope") == "all cells") & (pl.col("energy") == "j_per_inference")).row(0, named=True)
    points = _cell_medians(records)
    energy, time = [e for e, _ in points], [t for _, t in points]
    assert row["n"] == 3
    assert row["spearman_rho"] == pytest.approx(sps.spearmanr(time, energy).statistic)
    assert row["spearman_p"] == pytest.approx(sps.spearmanr(time, energy).pvalue)
    assert row["pearson_r"] == pytest.approx(sps.pearsonr(time, energy).statistic)
    assert row["pearson_p"] == pytest.approx(sps.pearsonr(time, energy).pvalue)


def test_correlation_without_enough_points_or_energy_is_none_with_a_reason():
    assert correlate(np.array([1.0, 2.0]), np.array([1.0, 2.0]), "x", "j").note.startswith("2 cells")
    constant = correlate(np.array([1.0, 1.0, 1.0]), np.array([1.0, 2.0, 3.0]), "x", "j")
    assert constant.spearman_rho is None and "constant" in constant.note
    table = energy_time_correlations(runs_table(unavailable_journal()))
    assert table["spearman_rho"].null_count() == table.height
    assert all(n.startswith("energy unavailable: no readable energy sensor") for n in table["note"])


def test_perfectly_linear_energy_and_time_give_one():
    t = np.array([1.0, 2.0, 3.0, 5.0, 8.0])
    c = correlate(3.0 * t, t, "all cells", "j_per_inference")
    assert c.spearman_rho == pytest.approx(1.0) and c.pearson_r == pytest.approx(1.0)
