"""The client language as a factor (analysis/clients.py), its `client` column, and advise's client line."""
import polars as pl

from orchestrator.analysis.advice import AdviceRequest, advise
from orchestrator.analysis.clients import ENERGY, LATENCY, client_frame, client_groups, client_label, \
    reference_client
from orchestrator.analysis.comparisons import ALPHA
from orchestrator.analysis.frames import with_derived
from orchestrator.results.tables import runs_table
from testkit.client_journals import (ORT_NODE, ORT_PLAIN, ORT_PY, TS_CPP, TS_PY, client_journal, gap_journal,
                                   jittered)
from testkit.synthetic_sweep import journal


def _groups(records):
    return {(g.batch_size, g.base): g for g in client_groups(runs_table(records))}


def _row(group, runtime):
    return next(row for row in group.rows if row.runtime == runtime)


def test_a_clear_ten_percent_gap_is_significant_and_points_the_right_way():
    groups = _groups(gap_journal(energy=True))
    ort = groups[(1, ORT_PLAIN)]
    assert ort.reference == ORT_PY and [r.runtime for r in ort.rows] == [ORT_PY, ORT_NODE]
    node = _row(ort, ORT_NODE).figures[LATENCY]
    assert node.test.significant and node.test.p_holm < ALPHA and node.test.cliffs_delta == 1.0
    assert 1.05 < node.ratio.value < 1.15 and 1.0 < node.ratio.low <= node.ratio.value <= node.ratio.high
    assert node.verdict.startswith("Node.js ") and "% slower than Python (Holm p " in node.verdict
    energy = _row(ort, ORT_NODE).figures[ENERGY]
    assert ort.metrics == (LATENCY, ENERGY) and energy.test.significant and energy.ratio.low > 1.0
    assert "% more energy than Python" in energy.verdict
    cpp = _row(groups[(1, TS_PY)], TS_CPP).figures[LATENCY]
    assert groups[(1, TS_PY)].reference == TS_PY  # no @python: the plain id is the Python client
    assert cpp.test.significant and cpp.ratio.high < 1.0 and cpp.test.cliffs_delta == -1.0
    assert cpp.verdict.startswith("C++ ") and "% faster than Python" in cpp.verdict


def test_identical_distributions_give_no_difference():
    group = _groups(gap_journal())[(8, ORT_PLAIN)]
    node = _row(group, ORT_NODE).figures[LATENCY]
    assert node.test.significant is False and node.test.p_holm > 0.5
    assert node.verdict.startswith("no difference detected at this sample size (Holm p ")
    assert node.ratio.value == 1.0 and node.ratio.low <= 1.0 <= node.ratio.high
    assert group.metrics == (LATENCY,)  # no run of this group measured energy: no energy figure, not a zero


def test_a_client_with_one_run_is_not_tested_and_has_no_interval():
    records = client_journal({ORT_PY: jittered(10.0), ORT_NODE: [11.0]})
    node = _row(client_groups(runs_table(records))[0], ORT_NODE).figures[LATENCY]
    assert node.test.significant is None and node.test.p_holm is None
    assert node.verdict.startswith("not tested: ") and node.ratio.low is None and node.ratio.value is not None


def test_holm_family_is_the_cells_comparisons_with_the_python_client():
    # Three clients of one base: the plain id beside @python is compared with @python too, in one family of two.
    records = client_journal({ORT_PLAIN: jittered(10.0, seed=1), ORT_PY: jittered(10.0, seed=2),
                              ORT_NODE: jittered(11.0, seed=3)})
    group = client_groups(runs_table(records))[0]
    assert [r.runtime for r in group.rows] == [ORT_PY, ORT_PLAIN, ORT_NODE]
    assert [r.label for r in group.rows] == ["Python", "Python, own environment", "Node.js"]
    tests = {r.runtime: r.figures[LATENCY].test for r in group.rows if not r.is_reference}
    ranked = sorted(tests.values(), key=lambda t: t.p_value)
    assert ranked[0].p_holm == min(1.0, 2 * ranked[0].p_value)  # the smaller p times the family's size, 2
    frame = client_frame([group])
    assert frame.filter(pl.col("runtime") == ORT_PY)["ratio_to_python"].to_list() == [1.0]
    assert set(frame["reference"].to_list()) == {ORT_PY}


def test_reference_and_labels():
    assert reference_client([ORT_NODE, ORT_PLAIN]) == ORT_PLAIN
    assert reference_client([ORT_NODE, ORT_PY, ORT_PLAIN]) == ORT_PY
    assert client_label(ORT_PLAIN, [ORT_PLAIN, ORT_NODE]) == "Python"
    assert client_label(TS_CPP, [TS_PY, TS_CPP]) == "C++"


def test_a_sweep_without_a_client_suffix_has_no_client_group():
    assert client_groups(runs_table(journal())) == []
    assert client_frame([]).is_empty()


def test_the_runs_table_has_a_client_column_and_old_tables_get_it():
    table = runs_table(gap_journal())
    by_runtime = dict(table.select("runtime", "client").unique().iter_rows())
    assert by_runtime == {ORT_PY: "python", ORT_NODE: "node", TS_PY: "python", TS_CPP: "cpp"}
    old = runs_table(journal()).drop("client")  # a runs.parquet written before the column
    assert set(with_derived(old)["client"].to_list()) == {"python"}


def test_advise_names_the_significantly_faster_client_of_the_recommended_runtime():
    advice = advise(runs_table(gap_journal()), AdviceRequest(objective="latency"))
    cells = {(c.model, c.batch_size): c for c in advice.cells}
    fast = cells[("resnet50", 1)]
    assert fast.recommended == ORT_PY and fast.client.use == ORT_PY and fast.client.verdict == "significant"
    assert fast.client.clients == [ORT_PY, ORT_NODE] and fast.client.ratio > 1.05
    assert fast.client.words.startswith(f"client: drive {ORT_PLAIN} from Python ({ORT_PY}), its fastest client: "
                                        "Node.js ")
    same = cells[("resnet50", 8)]
    assert same.client.verdict == "no difference" and same.client.use is None
    assert same.client.words.startswith(f"client: does not matter at this sample size for {ORT_PLAIN}")


def test_advise_says_nothing_of_clients_where_one_was_measured():
    advice = advise(runs_table(journal()), AdviceRequest(objective="latency"))
    assert all(cell.client is None for cell in advice.cells)
