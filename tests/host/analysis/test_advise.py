"""The advice on synthetic journals whose right answers are worked out by hand here.

Each run has 4 iterations of a constant latency (so its p50 = p99 = that latency) and one CPU energy channel of
jpi x 4 x batch J (so its energy per inference is jpi). With 5 runs a side and no ties, the exact two-sided
Mann-Whitney p of two fully separated runtimes is 2 / C(10, 5) = 2/252 = 0.00794.
"""
from __future__ import annotations

import math

import pytest

from orchestrator.analysis.advice import AdviceRequest, advise, min_runs_to_separate
from orchestrator.analysis.carbon import GridFigures
from orchestrator.results.tables import runs_table
from testkit.records import channel, make_record

A, B, C, D = "torch/native/cpu", "tensorflow/native/cpu", "onnxruntime/onnx-from-torch/cpu", "mxnet/native/cpu"
P_SEPARATED_5 = 2 / math.comb(10, 5)
UNAVAILABLE = "no readable energy sensor on this host: rapl: no powercap tree at /nowhere"


def run(runtime, rep, p50, jpi=None, *, model="mobilenet_v2", batch=1, host="host-1", faithful=None, index=None):
    channels = {"package-0": channel("cpu", jpi * 4 * batch)} if jpi is not None else None
    record = make_record(f"r{rep:03d}-{model}-{runtime.replace('/', '_')}", model=model, batch_size=batch,
                         runtime=runtime, latencies_ms=(p50,) * 4, window_s=p50 * 4 / 1e3, channels=channels,
                         index=index if index is not None else rep)
    record["repetition"] = rep
    record["host_signature"] = host
    if jpi is None:
        record["energy"]["reason"] = UNAVAILABLE
    if faithful is not None:
        record["fidelity"] = {"status": "ok", "faithful": faithful, "max_abs_error": 1e-6 if faithful else 0.5,
                              "min_cosine_similarity": 1.0 if faithful else 0.2, "top1_agreement": 1.0}
    return record


def cell_of(records, request=AdviceRequest()):
    advice = advise(runs_table(records), request)
    assert len(advice.cells) == 1
    return advice.cells[0]


def point(cell, runtime):
    return next(p for p in cell.runtimes if p.runtime == runtime)


def test_a_clear_winner_is_recommended_with_its_interval_and_the_test_against_the_runner_up():
    energy = {A: [1.0, 1.1, 1.2, 1.3, 1.4], B: [2.0, 2.1, 2.2, 2.3, 2.4]}
    records = [run(r, i, p50={A: 10.0, B: 20.0}[r], jpi=j) for r in energy for i, j in enumerate(energy[r])]
    cell = cell_of(records)
    assert (cell.verdict, cell.recommended, cell.objective_used) == ("recommended", A, "energy")
    assert cell.figure.median == pytest.approx(1.2) and cell.figure.runs == 5
    assert cell.figure.mean == pytest.approx(1.2)
    assert 1.0 <= cell.figure.ci_low < 1.2 < cell.figure.ci_high <= 1.4
    s = cell.separation
    assert s.runner_up == B and s.ratio == pytest.approx(2.2 / 1.2) and s.comparisons == 1
    assert s.p_value == pytest.approx(P_SEPARATED_5) and s.p_holm == pytest.approx(P_SEPARATED_5)
    assert s.cliffs_delta == -1.0 and s.significant is True
    # A is lower on both figures: alone on the front, and B is dominated by it.
    assert cell.front == [A] and point(cell, B).dominated_by == [A] and point(cell, B).on_front is False
    assert cell.reasons == []


def test_a_tie_is_named_a_tie_with_the_tied_runtimes():
    energy = {A: [1.0, 1.2, 1.4, 1.6, 1.8], B: [1.1, 1.3, 1.5, 1.7, 1.9]}
    records = [run(r, i, 10.0, jpi=j) for r in energy for i, j in enumerate(energy[r])]
    cell = cell_of(records)
    # Medians 1.4 and 1.5; U = 10 of 25, far from significant.
    assert (cell.verdict, cell.recommended, cell.leader, cell.tied_with) == ("tie", None, A, [B])
    assert cell.separation.significant is False and cell.separation.p_value > 0.5
    assert "not significantly lower" in cell.reasons[0]


def test_the_winner_that_breaks_the_latency_limit_is_excluded_and_the_next_recommended():
    # A: least energy but p99 30 ms; B: 2 J at 10 ms; C: 3 J at 5 ms.
    figures = {A: (30.0, [1.0, 1.1, 1.2, 1.3, 1.4]), B: (10.0, [2.0, 2.1, 2.2, 2.3, 2.4]),
               C: (5.0, [3.0, 3.1, 3.2, 3.3, 3.4])}
    records = [run(r, i, p50, jpi=j) for r, (p50, js) in figures.items() for i, j in enumerate(js)]
    unconstrained = cell_of(records)
    assert unconstrained.recommended == A and unconstrained.front == [A, B, C]
    cell = cell_of(records, AdviceRequest(max_p99_ms=20.0))
    assert (cell.verdict, cell.recommended) == ("recommended", B)
    assert cell.separation.runner_up == C and cell.separation.comparisons == 1
    assert point(cell, A).eligible is False and point(cell, A).on_front is None
    assert point(cell, A).excluded_because == "p99 30 ms is above the limit of 20 ms"
    assert f"{A} excluded: p99 30 ms is above the limit of 20 ms" in cell.reasons
    # B is lower in energy, C in latency: both on the front of what may be deployed.
    assert cell.front == [B, C]


def test_a_front_of_three_leaves_out_the_runtime_dominated_by_two():
    # (energy J, p99 ms): A (1, 30), B (2, 20), C (3, 10) trade one for the other; D (3.5, 25) is worse than B and C.
    figures = {A: (1.0, 30.0), B: (2.0, 20.0), C: (3.0, 10.0), D: (3.5, 25.0)}
    records = [run(r, i, p99 + 0.1 * i, jpi=e + 0.01 * i) for r, (e, p99) in figures.items() for i in range(3)]
    cell = cell_of(records)
    assert cell.front == [A, B, C]
    assert point(cell, D).on_front is False and point(cell, D).dominated_by == [C, B]  # sorted by name
    assert [point(cell, r).on_front for r in (A, B, C)] == [True, True, True]
    # Medians: the second of each runtime's three runs.
    assert point(cell, B).energy.median == pytest.approx(2.01) and point(cell, B).p99.median == pytest.approx(20.1)
    # 3 runs each and 6 pairs: no test can reach 0.05 (6 x 2/20 > 1), so this is said, not a guess; with 4 runs
    # 6 x 2/70 = 0.17, with 5 runs 6 x 2/252 = 0.048.
    assert cell.verdict == "tie" and cell.recommended is None
    assert cell.reasons[0].startswith("3 repetitions: run at least 5 (with 4 runtimes")


def test_energy_missing_on_one_host_falls_back_to_latency_there_and_hosts_are_never_pooled():
    records = [run(r, i, p50, jpi=j, host="host-with-rapl", index=i)
               for r, p50, j in ((A, 10.0, 1.0), (B, 20.0, 2.0)) for i in range(5)]
    records += [run(r, i, p50, host="host-without", index=10 + i) for r, p50 in ((A, 12.0), (B, 6.0)) for i in range(5)]
    for k, record in enumerate(records):
        record["run_id"] += f"-{record['host_signature']}"
        record["index"] = k
    advice = advise(runs_table(records))
    assert [h.signature for h in advice.hosts] == ["host-with-rapl", "host-without"]
    assert advice.pooling.startswith("2 hosts")
    measured, missing = advice.cells
    assert (measured.host, measured.objective_used, measured.recommended) == ("host-with-rapl", "energy", A)
    assert measured.figure.runs == 5  # only that host's runs
    assert (missing.host, missing.objective, missing.objective_used) == ("host-without", "energy", "latency")
    assert missing.recommended == B and missing.figure.median == 6.0
    assert missing.front == [] and missing.front_note.startswith("no front: energy unavailable on this host: rapl")
    assert any(r.startswith("energy unavailable on this host: rapl: no powercap tree at /nowhere; ranked by latency")
               for r in missing.reasons)
    assert point(missing, A).energy.median is None and point(missing, A).carbon_g_per_million is None


def test_unfaithful_conversions_are_excluded_unless_asked_for():
    energy = {A: [2.0, 2.1, 2.2, 2.3, 2.4], C: [1.0, 1.1, 1.2, 1.3, 1.4]}
    records = [run(r, i, 10.0, jpi=j, faithful=(False if r == C and i == 3 else True) if r == C else None)
               for r in energy for i, j in enumerate(energy[r])]
    cell = cell_of(records)
    assert (cell.verdict, cell.recommended) == ("only candidate", A)
    assert point(cell, C).fidelity == "unfaithful" and not point(cell, C).eligible
    assert point(cell, C).excluded_because.startswith("outputs not faithful to the reference in 1 of 5 runs")
    admitted = cell_of(records, AdviceRequest(faithful_only=False))
    assert (admitted.verdict, admitted.recommended) == ("recommended", C)


def test_one_repetition_says_how_many_are_needed():
    records = [run(A, 0, 10.0, jpi=1.0), run(B, 0, 20.0, jpi=2.0)]
    cell = cell_of(records)
    assert (cell.verdict, cell.recommended, cell.leader) == ("not enough evidence", None, A)
    assert cell.figure.ci_low is None and cell.figure.note == "one run: no spread, no interval"
    assert cell.reasons[0].startswith("1 repetition: run at least 4")


def test_min_runs_to_separate_by_hand():
    assert min_runs_to_separate(1) == 4  # 2/C(6,3) = 0.1; 2/C(8,4) = 0.029
    assert min_runs_to_separate(3) == 5  # 3 x 2/70 = 0.086; 3 x 2/252 = 0.024
    assert min_runs_to_separate(15) == 6  # 15 x 2/252 = 0.119; 15 x 2/924 = 0.032


def test_edp_carbon_and_cost_are_energy_scaled_per_run():
    energy = {A: [1.0, 1.1, 1.2, 1.3, 1.4], B: [2.0, 2.1, 2.2, 2.3, 2.4]}
    records = [run(r, i, 10.0, jpi=j) for r in energy for i, j in enumerate(energy[r])]
    edp = cell_of(records, AdviceRequest(objective="edp"))
    assert edp.metric == "edp_j_s" and edp.figure.median == pytest.approx(1.2 * 0.010)
    grid = GridFigures(grid_intensity_g_per_kwh=400.0, pue=1.5, price_per_kwh=0.2)
    carbon = cell_of(records, AdviceRequest(objective="carbon", grid=grid))
    # 1.2 J x 1e6 inferences = 1.2e6 J = 1/3 kWh; x PUE 1.5 = 0.5 kWh; x 400 g = 200 g; x 0.2 = 0.1.
    assert carbon.recommended == A and carbon.figure.median == pytest.approx(200.0)
    assert point(carbon, A).carbon_g_per_million == pytest.approx(200.0)
    assert point(carbon, A).cost_per_million == pytest.approx(0.1)
    assert carbon.separation.p_value == pytest.approx(P_SEPARATED_5)  # the same runs, the same test
    with pytest.raises(ValueError, match="grid_intensity_g_per_kwh"):
        AdviceRequest(objective="carbon")
    with pytest.raises(ValueError, match="price_per_kwh"):
        AdviceRequest(objective="cost", grid=GridFigures(grid_intensity_g_per_kwh=1.0))


def test_filters_and_a_cell_without_a_successful_run():
    records = [run(A, i, 10.0, jpi=1.0, batch=b, index=2 * i + b) for i in range(2) for b in (1, 2)]
    for record in records:
        record["run_id"] += f"-bs{record['batch_size']}"
    failed = make_record("r9-failed", model="resnet50", runtime=B, status="failed", index=99,
                         failure={"kind": "oom", "message": "killed", "log_tail": ""})
    advice = advise(runs_table(records + [failed]), AdviceRequest(batch_sizes=(2,)))
    assert [(c.model, c.batch_size) for c in advice.cells] == [("mobilenet_v2", 2), ("resnet50", 2)]
    only, none = advice.cells
    assert only.verdict == "only candidate" and only.recommended == A
    assert none.verdict == "no candidate" and none.reasons[0] == "no successful run"
    assert f"{B}: 1 of 1 runs failed (oom)" in none.reasons
