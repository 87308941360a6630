"""Native GPU cells are compared with their framework's CPU outputs, an fp16 cell by its own stated tolerance
(issue 20, point 9)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.fidelity import compare_outputs
from models.fidelity_criteria import ABS_TOL, FP16_ABS_TOL, FP16_MIN_COSINE, FP16_REL_TOL, REL_TOL, criterion_for
from orchestrator.execution.preparation import Missing, Preparation, build_request
from orchestrator.execution.run import compare_output_files
from orchestrator.planning.config import parse_config
from orchestrator.planning.planner import Cell, PlannedRun
from orchestrator.planning.runtimes import parse_runtime
from runners.protocol import RunRequest, from_dict

NATIVE_GPU = ("torch/native/cuda", "tensorflow/native/cuda", "mxnet/native/cuda")


@pytest.mark.parametrize("name", NATIVE_GPU)
def test_a_native_gpu_runtime_is_compared_with_its_frameworks_cpu_run(name):
    runtime = parse_runtime(name)
    assert runtime.reference_framework == runtime.framework
    assert runtime.reference_runtime == f"{runtime.framework}/native/cpu"


@pytest.mark.parametrize("name", ("torch/native/cpu", "tensorflow/native/cpu", "mxnet/native/cpu"))
def test_a_native_cpu_runtime_is_the_reference_itself(name):
    assert parse_runtime(name).reference_framework is None and parse_runtime(name).reference_runtime is None


def test_fp16_has_its_own_criterion_and_fp32_keeps_its_own():
    assert criterion_for("fp16") == "fp16" and criterion_for("fp32") == "fp32" and criterion_for("int8") == "quantized"
    reference = np.full((2, 8), 10.0)
    fp16_tolerance = FP16_ABS_TOL + FP16_REL_TOL * 10.0
    within, beyond = reference + 0.9 * fp16_tolerance, reference + 1.1 * fp16_tolerance
    report = compare_outputs({"logits": reference}, {"logits": within}, precision="fp16")
    assert report["criterion"] == "fp16" and report["faithful"] is True and report["acceptable"] is None
    assert report["tolerance"] == {"abs": FP16_ABS_TOL, "rel": FP16_REL_TOL, "min_cosine": FP16_MIN_COSINE}
    assert report["verdict"].startswith("faithful: ") and (
        f"(fp16 tolerance {FP16_ABS_TOL:g} + {FP16_REL_TOL:g} x max|reference|, cosine >= {FP16_MIN_COSINE:g})"
        in report["verdict"])
    assert compare_outputs({"logits": reference}, {"logits": beyond}, precision="fp16")["faithful"] is False
    # What fp16 may move, fp32 may not: the same outputs are not faithful by the fp32 criterion.
    assert 0.9 * fp16_tolerance > ABS_TOL + REL_TOL * 10.0
    assert compare_outputs({"logits": reference}, {"logits": within})["faithful"] is False


def test_the_fp16_criterion_catches_a_wrong_output_within_its_absolute_tolerance():
    """A sign-flipped half of the output stays within max|reference|'s 3 % only if tiny: the cosine bound judges."""
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(2, 1000)) * 0.01
    wrong = reference.copy()
    wrong[:, :100] *= -1
    report = compare_outputs({"logits": reference}, {"logits": wrong}, precision="fp16")
    assert report["min_cosine_similarity"] < FP16_MIN_COSINE and report["faithful"] is False


def test_saved_fp16_outputs_are_judged_by_the_fp16_criterion(tmp_path):
    reference = np.linspace(-5, 5, 64, dtype=np.float32).reshape(2, 32)
    np.savez(tmp_path / "ref.npz", logits=reference)
    np.savez(tmp_path / "out.npz", logits=reference.astype(np.float16))  # fp16's own rounding of the same values
    report = compare_output_files(tmp_path / "ref.npz", tmp_path / "out.npz", "fp16")
    assert report.status == "ok" and report.criterion == "fp16" and report.faithful is True


class RecordingLauncher:
    """Writes nothing: records what the sweep asked it to launch."""

    def __init__(self) -> None:
        self.launches: list[tuple[str, list[str]]] = []

    def launch(self, environment, argv, **kwargs):
        from orchestrator.execution.launchers.base import LaunchOutcome

        self.launches.append((environment, argv))
        return LaunchOutcome(exit_code=1, timed_out=False, seconds=0.0, log_path=Path(kwargs["log_path"]),
                             log_tail="no torch here")


class Artifacts:
    def __init__(self, root: Path) -> None:
        self.root = root

    def source_versions(self, framework: str) -> dict[str, str]:
        return {framework: "1.0"}


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_a_native_cuda_cell_gets_a_cpu_reference_run_of_its_framework_in_fp32(tmp_path, precision):
    config = parse_config({"name": "t", "models": ["mobilenet_v2"], "batch_sizes": [2],
                           "runtimes": ["torch/native/cuda"], "precisions": [precision]})
    run = PlannedRun(run_id="r0", cell=Cell(model="mobilenet_v2", batch_size=2, runtime="torch/native/cuda",
                                            precision=precision), repetition=0, index=0)
    launcher = RecordingLauncher()
    reason = Preparation(config, launcher, Artifacts(tmp_path / "artifacts")).reference_for(run)
    assert launcher.launches and launcher.launches[0][0] == "torch"  # the framework's CPU environment
    request_path = Path(launcher.launches[0][1][-1])
    request = from_dict(RunRequest, json.loads(request_path.read_text()))
    assert request.runtime == "torch/native/cpu" and request.precision == "fp32" and request.batch_size == 2
    assert isinstance(reason, Missing) and reason.reason.startswith("the torch reference run failed")
    # The cell's own run keeps its outputs for the comparison.
    assert build_request(config, run, tmp_path / "run", None).outputs_path == str(tmp_path / "run" / "outputs.npz")


def test_a_tf32_cell_is_judged_by_fp16s_tolerance_under_its_own_name():
    """TF32 rounds GEMM inputs to fp16's mantissa: an error fp32's tolerance refuses is faithful at tf32."""
    reference = np.full((2, 8), 10.0)
    within = reference + 0.9 * (FP16_ABS_TOL + FP16_REL_TOL * 10.0)
    report = compare_outputs({"logits": reference}, {"logits": within}, precision="tf32")
    assert criterion_for("tf32") == "tf32" and report["criterion"] == "tf32" and report["faithful"] is True
    assert "(tf32 tolerance" in report["verdict"]
    assert compare_outputs({"logits": reference}, {"logits": within}, precision="fp32")["faithful"] is False
