"""`greenrt plan`'s time estimate (orchestrator/planning/time_budget.py) on configs whose timings are known: earlier
runs with known phases give exactly the expected estimate, each part says where its figure comes from, and an
adaptive `repetitions` table gives the range between its minimum and maximum."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from orchestrator.planning.config import parse_config
from orchestrator.planning.model_costs import CPU_GFLOPS_PER_CORE, export_guess, gflop_per_sample
from orchestrator.planning.time_budget import (CHECK_GUESS_S, CONFIG, EXPORT_GUESS_S, FINISH_GUESS_S, GUESS,
                                               LOAD_GUESS_S, OTHER_GUESS_S, REFERENCE_GUESS_S,
                                               PrepItem, clock, estimate, repetition_range, span)
from orchestrator.results.record import from_journal
from orchestrator.results.run_times import measured_run
from testkit.records import make_record

TORCH, ORT = "torch/native/cpu", "onnxruntime/onnx-from-torch/cpu"
CELL_TORCH, CELL_ORT = f"resnet50|bs1|{TORCH}|fp32", f"resnet50|bs1|{ORT}|fp32"


def config(**overrides):
    return parse_config({"name": "t", "models": ["resnet50"], "batch_sizes": [1], "runtimes": [TORCH, ORT],
                         "repetitions": 3, "warmup": {"iterations": 1, "seconds": 0.0},
                         "measure": {"min_iterations": 3, "min_seconds": 2.0},
                         "cooldown": {"mode": "fixed", "seconds": 4.0}, "baseline": {"seconds": 5.0}, **overrides})


def earlier_torch_run(run_id: str, cooldown_before: float | None = None):
    """A recorded torch run of resnet50 bs1: load 1.5 s, first inference 0.2 s, a 2.4 s window of 4 inferences
    (0.6 s each), 6 s of wall time in all (so 1.6 s besides load, warm-up and window)."""
    line = make_record(run_id, model="resnet50", batch_size=1, runtime=TORCH, latencies_ms=(600,) * 4, window_s=2.4)
    line["wall_seconds"] = 6.0
    if cooldown_before is not None:
        line["protocol"] = {"cooldown_before": {"mode": "adaptive", "outcome": "idle", "seconds": cooldown_before}}
    return measured_run(from_journal(line))


CELLS = {CELL_TORCH: TORCH, CELL_ORT: ORT}
ORT_LOAD, ORT_OTHER = LOAD_GUESS_S["converted"], OTHER_GUESS_S["converted"]  # a converted model's guesses


def test_known_phase_times_give_exactly_the_expected_estimate():
    history = [earlier_torch_run("a"), earlier_torch_run("b")]
    prep = [PrepItem("environment", "torch", cached=True), PrepItem("environment", "onnxruntime", cached=True),
            PrepItem("export", "torch-resnet50", cached=False),
            PrepItem("reference", "torch-resnet50 bs1", cached=False)]
    budget = estimate(config(), list(CELLS), history, prep)

    parts = {p.name: p for p in budget.parts}
    # torch: measured (load 1.5; warm-up = its first inference, 1 iteration; window max(2 s, 3 x 0.6 s) = 2 s;
    # other 6 - 1.5 - 0.5 - 2.4 = 1.6); onnxruntime, never measured: its window and warm-up from the same model and
    # batch (torch's latency), its load and the rest guessed (no earlier run of its runtime)
    assert parts["load"].low == pytest.approx(3 * 1.5 + 3 * ORT_LOAD)
    assert parts["warm-up"].low == pytest.approx(3 * 0.2 + 3 * 0.2)
    assert parts["window"].low == pytest.approx(3 * 2.0 + 3 * 2.0)
    assert parts["other"].low == pytest.approx(3 * 1.6 + 3 * ORT_OTHER)
    assert parts["cooldown"].low == pytest.approx(4.0 * 5)  # between 6 runs
    assert parts["idle baseline"].low == 5.0
    assert parts["exports (1)"].low == export_guess("resnet50") and parts["reference outputs (1)"].low == REFERENCE_GUESS_S
    assert parts["checks (2 environments, 2 cached items)"].low == 2 * CHECK_GUESS_S
    expected = (3 * (1.5 + 0.2 + 2.0 + 1.6) + 3 * (ORT_LOAD + 0.2 + 2.0 + ORT_OTHER) + 20.0 + 5.0
                + export_guess("resnet50") + REFERENCE_GUESS_S + 2 * CHECK_GUESS_S + FINISH_GUESS_S)
    assert budget.low == pytest.approx(expected) and budget.high == pytest.approx(expected)
    assert (budget.runs_low, budget.runs_high) == (6, 6)
    assert parts["cooldown"].source == CONFIG
    assert parts["window"].source == "measured on this host, 2 runs" == parts["warm-up"].source
    assert parts["load"].source == "1 cell measured on this host, 2 runs, 1 cell guess"
    assert budget.guessed == ["exports (1)", "reference outputs (1)", "checks (2 environments, 2 cached items)",
                              "load", "other", "start-up, tables and report"]


def test_a_cell_never_measured_borrows_its_runtimes_earlier_runs_and_all_measured_says_so():
    history = [earlier_torch_run("a")]
    other_model = {f"mobilenet_v2|bs1|{TORCH}|fp32": TORCH}
    cfg = config(models=["mobilenet_v2"], runtimes=[TORCH])
    parts = {p.name: p for p in estimate(cfg, list(other_model), history).parts}
    assert parts["load"].low == pytest.approx(3 * 1.5) and parts["load"].source == "measured on this host, 1 run"


def test_the_window_of_an_earlier_run_under_another_config_is_this_configs_at_its_latency():
    history = [earlier_torch_run("a")]  # 0.6 s per inference
    cells = {CELL_TORCH: TORCH}
    longer = estimate(config(runtimes=[TORCH], measure={"min_iterations": 10, "min_seconds": 1.0}), list(cells), history)
    assert {p.name: p for p in longer.parts}["window"].low == pytest.approx(3 * 10 * 0.6)


def test_adaptive_repetitions_give_the_range_between_min_and_max():
    cfg = config().model_copy(update={"repetitions": SimpleNamespace(min_runs=2, max_runs=5)})
    budget = estimate(cfg, list(CELLS), [earlier_torch_run("a")])
    parts = {p.name: p for p in budget.parts}
    assert (budget.runs_low, budget.runs_high) == (4, 10)
    assert (parts["window"].low, parts["window"].high) == (pytest.approx(4 * 2.0), pytest.approx(10 * 2.0))
    assert (parts["cooldown"].low, parts["cooldown"].high) == (4.0 * 3, 4.0 * 9)
    assert budget.low < budget.high and " to " in span(budget.low, budget.high)


def test_an_adaptive_cooldown_is_its_measured_time_else_anywhere_between_its_minimum_and_limit():
    cfg = config(cooldown={"mode": "adaptive", "seconds": 10.0, "max_seconds": 120.0})
    unmeasured = {p.name: p for p in estimate(cfg, list(CELLS)).parts}["cooldown"]
    assert (unmeasured.low, unmeasured.high) == (50.0, 600.0) and CONFIG in unmeasured.source
    history = [earlier_torch_run("a", 30.0), earlier_torch_run("b", 20.0), earlier_torch_run("c", 40.0)]
    cooled = {p.name: p for p in estimate(cfg, list(CELLS), history).parts}["cooldown"]
    assert (cooled.low, cooled.high, cooled.source) == (150.0, 150.0, "measured on this host, 3 runs")
    no_gpus = {p.name: p for p in estimate(cfg, list(CELLS), history, gpus=False).parts}["cooldown"]
    assert (no_gpus.low, no_gpus.high) == (50.0, 50.0)  # nothing to watch: each waits its minimum


def test_rechecked_baselines_are_counted_and_a_measured_export_time_is_used():
    cfg = config(baseline={"seconds": 10.0, "recheck_minutes": 1.0}, measure={"min_iterations": 1,
                                                                               "min_seconds": 30.0})
    budget = estimate(cfg, list(CELLS), [], [PrepItem("export", "torch-resnet50", False, 42.0)])
    parts = {p.name: p for p in budget.parts}
    runs = sum(p.low for p in budget.per_run)
    assert parts["idle baseline"].low == 10.0 * (1 + int(runs // 60))
    assert parts["exports (1)"].low == 42.0 and parts["exports (1)"].source == "measured on this host"
    assert GUESS not in parts["window"].source


@pytest.mark.parametrize("given, expected", [(3, (3, 3)), ({"min": 2, "max": 6}, (2, 6)),
                                             (SimpleNamespace(min_runs=2, max_runs=8), (2, 8))])
def test_repetitions_are_a_count_or_a_table_with_bounds(given, expected):
    assert repetition_range(given) == expected


def test_durations_read_as_people_say_them():
    assert [clock(s) for s in (45, 750, 3900)] == ["45 s", "12 min 30 s", "1 h 05 min"]


def test_an_environment_never_built_takes_what_the_others_took_here_and_a_reference_what_its_native_runs_did():
    history = [earlier_torch_run("a")]  # load 1.5 s, first inference 0.2 s, 1.6 s besides
    prep = [PrepItem("environment", "torch", True, 40.0), PrepItem("environment", "tensorflow", True, 60.0),
            PrepItem("environment", "onnxruntime", False),
            PrepItem("reference", "torch-resnet50 bs1", False, cell=CELL_TORCH)]
    parts = {p.name: p for p in estimate(config(), list(CELLS), history, prep).parts}
    assert parts["environments to build (1)"].low == 50.0
    assert parts["environments to build (1)"].source == "measured on this host"
    assert parts["reference outputs (1)"].low == pytest.approx(1.5 + 0.2 + 1.6)


def test_a_host_without_an_energy_sensor_measures_no_baseline():
    parts = {p.name: p for p in estimate(config(), list(CELLS), sensors=False).parts}
    assert parts["idle baseline"].low == 0.0 and "no energy sensor" in parts["idle baseline"].source


def test_a_cells_window_follows_its_model_and_batch_and_its_load_its_runtime():
    quick = make_record("o", model="mobilenet_v2", batch_size=1, runtime=ORT, latencies_ms=(10,) * 400, window_s=4.0)
    quick["wall_seconds"] = 9.0  # load 1.5, warm-up 0.5, window 4: 3 s besides
    history = [earlier_torch_run("a"), measured_run(from_journal(quick))]
    cell = f"mobilenet_v2|bs1|{TORCH}|fp32"  # never measured: neither torch's mobilenet nor anything's at bs64
    cfg = config(models=["mobilenet_v2"], runtimes=[TORCH], measure={"min_iterations": 300, "min_seconds": 1.0})
    parts = {p.name: p for p in estimate(cfg, [cell], history).parts}
    assert parts["window"].low == pytest.approx(3 * 300 * 0.010)  # mobilenet bs1's latency, from onnxruntime
    assert parts["other"].low == pytest.approx(3 * 1.6)  # torch's rest of a run, from its resnet50 run


def test_a_model_measured_only_at_another_batch_lends_its_latency_scaled_by_the_batch_size():
    history = [earlier_torch_run("a")]  # resnet50 bs1 on torch: 0.6 s per batch
    cell = f"resnet50|bs8|{ORT}|fp32"  # never measured at batch 8, nor on onnxruntime
    cfg = config(batch_sizes=[8], runtimes=[ORT], measure={"min_iterations": 10, "min_seconds": 1.0})
    parts = {p.name: p for p in estimate(cfg, [cell], history).parts}
    assert parts["window"].low == pytest.approx(3 * 10 * 0.6 * 8)
    assert parts["load"].low == pytest.approx(3 * ORT_LOAD)  # a load never borrows another runtime's


def test_a_host_that_never_ran_the_model_guesses_its_latency_from_the_models_operations_and_its_cores():
    # resnet50 at batch 64 on 2 cores: 8.2 GFLOP x 64 over 150 GFLOP/s, a 3.5 s batch; the window is then
    # min_iterations batches (longer than min_seconds), the warm-up its one iteration
    latency = gflop_per_sample("resnet50") * 64 / (CPU_GFLOPS_PER_CORE * 2)
    cfg = config(batch_sizes=[64], runtimes=[ORT])
    cell = f"resnet50|bs64|{ORT}|fp32"
    parts = {p.name: p for p in estimate(cfg, [cell], cores=2).parts}
    assert parts["window"].low == pytest.approx(3 * max(2.0, 3 * latency))
    assert parts["warm-up"].low == pytest.approx(3 * latency)
    assert "operations" in parts["window"].source and GUESS in parts["window"].source
    # twice the cores, half the latency; unknown cores or a GPU cell: the config's budget alone
    assert {p.name: p for p in estimate(cfg, [cell], cores=4).parts}["warm-up"].low == pytest.approx(3 * latency / 2)
    assert {p.name: p for p in estimate(cfg, [cell]).parts}["window"].source == CONFIG
    gpu = "resnet50|bs64|onnxruntime/onnx-from-torch/cuda|fp32"
    assert {p.name: p for p in estimate(cfg, [gpu], cores=2).parts}["window"].source == CONFIG


def test_an_export_grows_with_the_models_size_and_a_reference_with_its_operations():
    prep = [PrepItem("export", "tensorflow-bert-base-uncased", False), PrepItem("export", "mxnet-mobilenet_v2", False),
            PrepItem("export", "torch-my_model", False),
            PrepItem("reference", "torch-resnet50 bs64", False, cell=f"resnet50|bs64|{TORCH}|fp32")]
    parts = {p.name: p for p in estimate(config(), list(CELLS), prep=prep, cores=2).parts}
    assert parts["exports (3)"].low == pytest.approx(export_guess("bert-base-uncased") + export_guess("mobilenet_v2")
                                                     + EXPORT_GUESS_S)  # a model of unknown size: the flat guess
    assert export_guess("bert-base-uncased") > export_guess("resnet50") > export_guess("mobilenet_v2")
    reference = LOAD_GUESS_S["native"] + 8.2 * 64 / (CPU_GFLOPS_PER_CORE * 2) + OTHER_GUESS_S["native"]
    assert parts["reference outputs (1)"].low == pytest.approx(reference)
    assert "operations" in parts["reference outputs (1)"].source
