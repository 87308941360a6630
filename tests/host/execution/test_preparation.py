"""What a run needs before it is measured (orchestrator/execution/preparation.py): one request builder for the
measured run and its reference run, and `Missing`, the reason a converted model is not there."""
from __future__ import annotations

from pathlib import Path

from orchestrator.execution.artifacts import Artifact, ExportFailed
from orchestrator.execution.preparation import Missing, Preparation, build_request, reference_path
from orchestrator.planning.config import parse_config
from orchestrator.planning.planner import Cell, PlannedRun

CONVERTED = "onnxruntime/onnx-from-torch/cpu"


def planned(precision: str = "fp32", runtime: str = CONVERTED) -> PlannedRun:
    return PlannedRun(run_id=f"r-{precision}", cell=Cell(model="mobilenet_v2", batch_size=2, runtime=runtime,
                                                         precision=precision), repetition=0, index=0)


def test_the_reference_request_is_the_sources_cpu_run_with_the_same_inputs_and_none_of_the_measured_runs_settings(
        tmp_path):
    config = parse_config({"name": "t", "models": ["mobilenet_v2"], "batch_sizes": [2], "runtimes": [CONVERTED],
                           "threads": 3, "seed": 11, "measure": {"min_iterations": 50}})
    run = planned()
    artifact = Artifact(str(tmp_path / "a" / "model.onnx"), "k", 20, "dynamo", {"torch": "2"}, 1.0)
    measured = build_request(config, run, tmp_path / "runs" / "r", artifact)
    folder = tmp_path / "references" / "torch-mobilenet_v2-k"
    outputs = reference_path(folder, 2, config.seed)
    reference = build_request(config, run, folder, reference_outputs=outputs)

    assert (measured.runtime, measured.threads, measured.budget.min_iterations) == (CONVERTED, 3, 50)
    assert measured.artifact_path == artifact.path and measured.outputs_path == str(tmp_path / "runs/r/outputs.npz")
    assert reference.runtime == "torch/native/cpu" and reference.precision == "fp32"
    assert reference.run_id == outputs.stem and reference.result_path == str(folder / f"{outputs.stem}.json")
    assert reference.outputs_path == str(outputs) and reference.artifact_path is None
    assert (reference.budget.warmup_iterations, reference.budget.min_iterations) == (0, 1)
    assert reference.threads is None and reference.provider_options == {} and reference.cuda_jit_cache is None
    for same in ("model", "batch_size", "weights", "input_seed", "model_options", "user_model"):
        assert getattr(reference, same) == getattr(measured, same), same


class FailingExports:
    """An artifact cache whose export fails: counts how often it was asked."""

    root = Path("/nonexistent/artifacts")

    def __init__(self) -> None:
        self.asked = 0

    def ensure(self, *args, **kwargs):
        self.asked += 1
        raise ExportFailed("ONNX export of mobilenet_v2 from torch failed: unsupported op", "Traceback ...")


def test_a_failed_export_is_missing_once_for_every_run_that_needs_it_int8_copies_included():
    config = parse_config({"name": "t", "models": ["mobilenet_v2"], "batch_sizes": [2], "runtimes": [CONVERTED],
                           "precisions": ["fp32", "int8"]})
    exports = FailingExports()
    preparation = Preparation(config, launcher=None, artifacts=exports)
    fp32, int8 = preparation.artifact_for(planned("fp32")), preparation.artifact_for(planned("int8"))
    assert fp32 == int8 == Missing("ONNX export of mobilenet_v2 from torch failed: unsupported op", "Traceback ...")
    assert exports.asked == 1  # cached: the int8 copy is not quantized from nothing, nor exported again
    assert preparation.artifact_for(planned("fp32", "torch/native/cpu")) is None  # a native run loads no artifact


class PreparedLauncher:
    """A launcher whose environments are ready at once."""

    def prepare(self, environment: str) -> str:
        return f"{environment}: ready"


def test_the_preparations_time_goes_to_the_next_record_once():
    config = parse_config({"name": "t", "models": ["mobilenet_v2"], "batch_sizes": [2], "runtimes": [CONVERTED]})
    preparation = Preparation(config, launcher=PreparedLauncher(), artifacts=FailingExports())
    assert preparation.took_time() is None  # nothing prepared yet
    preparation.prepare([planned()])
    prepared = preparation.took_time()
    assert prepared is not None and prepared.seconds >= 0 and prepared.started_at.endswith("+00:00")
    assert preparation.took_time() is None  # the runs after the first keep nothing of it
