"""Executing a plan: one run after another, each sampled for its runner's whole life, each journaled at once."""
from __future__ import annotations

import json
import logging
import signal
import time
import traceback

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from models.fidelity import compare_outputs
from orchestrator.measurement import accounting
from orchestrator.execution.artifacts import Artifact, ArtifactCache, ExportFailed, artifact_key
from orchestrator.execution.quantized import INT8, QuantizedArtifact, ensure_quantized
from orchestrator.execution.run_caches import jit_cache, tensorrt_caches
from orchestrator.measurement.baseline import baseline_reference, measure_idle, recheck_due
from orchestrator.measurement.cooldown import adaptive_unavailable, fixed_wait, idle_reference, wait_until_idle
from orchestrator.planning.config import SweepConfig
from orchestrator.provisioning.environments import EnvironmentBuildError
from orchestrator.planning.gpus import GpuDescription, assign_gpus
from orchestrator.measurement.probe import Measurement
from orchestrator.provisioning.images import ImageBuildError
from orchestrator.execution.launchers.base import Launcher, LaunchOutcome
from orchestrator.planning.planner import Plan, PlannedRun
from orchestrator.planning.runtimes import parse_runtime
from orchestrator.measurement.sampler import Sampler, SampleSeries
from orchestrator.results.payloads import ArtifactFacts, Energy
from orchestrator.results.record import FAILED, OK, Failure, RunRecord
from orchestrator.results.store import ResultsDir, disk_full
from runners.runtimes_table import cpu_precision_fast
from runners.protocol import (Budget, ProtocolError, RunRequest, RunResult, Weights, read_json, to_dict,
                              write_json_atomic)

logger = logging.getLogger(__name__)

ACCOUNTING = "accounting"  # failure kind: the runner finished, greenrt failed afterwards (the result is kept)
ACCOUNTING_ERROR_FILE = "accounting-error.txt"


def build_request(config: SweepConfig, run: PlannedRun, run_dir: Path, artifact: Artifact | None) -> RunRequest:
    cell = run.cell
    runtime = parse_runtime(cell.runtime)
    return RunRequest(
        run_id=run.run_id,
        runtime=cell.runtime,
        model=cell.model,
        batch_size=cell.batch_size,
        precision=cell.precision,
        result_path=str(run_dir / "result.json"),
        weights=config.weights_for(runtime.source_framework or runtime.framework, cell.model),
        input_seed=config.seed,
        budget=Budget(
            warmup_iterations=config.warmup.iterations,
            warmup_seconds=config.warmup.seconds,
            min_iterations=config.measure.min_iterations,
            min_seconds=config.measure.min_seconds,
            max_seconds=config.measure.max_seconds,
        ),
        model_options=config.options_for(cell.model),
        artifact_path=artifact.path if artifact else user_model_file(config, cell.model, runtime),
        # A converted or compiled model's outputs are kept until they are compared with its reference's (fidelity).
        outputs_path=str(run_dir / "outputs.npz") if runtime.reference_framework else None,
        threads=config.threads,
        provider_options={
            **(tensorrt_caches(run_dir.parent.parent, cell, runtime.source_framework or runtime.model_format,
                               config.options_for(cell.model)) if runtime.provider == "tensorrt" else {}),
            **config.provider_options.get(cell.runtime, {}),
        },
        user_model=config.user_model(cell.model),
        # CUDA's JIT cache outlives the run (containers have a read-only root and a tmpfs /tmp): PTX-only kernels
        # (TensorFlow's compute_90 on Hopper) are compiled once per sweep, not in every run's load and warm-up.
        cuda_jit_cache=jit_cache(run_dir.parent.parent) if runtime.needs_gpu else None,
    )


def user_model_file(config: SweepConfig, model: str, runtime) -> str | None:
    """A user's ONNX file, which an onnx-format runtime loads as it is (no export)."""
    entry = config.user_model(model)
    return entry.path if entry is not None and runtime.model_format == "onnx" else None


def reference_path(folder: Path, batch_size: int, seed: int) -> Path:
    """Where a reference framework's outputs for one model (its folder), batch and input seed are cached."""
    return folder / f"reference-bs{batch_size}-seed{seed}.npz"


def compare_output_files(reference: Path, outputs: Path, precision: str = "fp32") -> dict[str, Any]:
    """The fidelity record of a converted model's saved outputs against its source's (an int8 run's by the
    quantized criterion: models.fidelity.criterion_for)."""
    try:
        with np.load(reference) as ref, np.load(outputs) as out:
            return {"status": "ok", **compare_outputs(dict(ref), dict(out), precision=precision)}
    except (OSError, ValueError) as exc:
        return {"status": "unavailable", "reason": f"outputs not comparable: {exc}"}


def weights_files(weights: Weights) -> list[Path]:
    return [Path(weights.path)] if weights.kind == "file" and weights.path else []


def run_mounts(request: RunRequest) -> dict[str, list[Path]]:
    """What a run writes besides its own folder (TensorRT's engine and timing caches, CUDA's JIT cache), and what it
    only reads."""
    writable = [Path(request.provider_options[key]) for key in ("trt_engine_cache_path", "trt_timing_cache_path")
                if key in request.provider_options]
    if request.cuda_jit_cache:
        writable.append(Path(request.cuda_jit_cache["path"]))
    readonly = weights_files(request.weights)
    if request.user_model is not None:  # a user's model file (and hf weights), wherever the runner runs
        readonly += [Path(p) for p in request.user_model.files()]
    if request.artifact_path:
        readonly.append(Path(request.artifact_path).parent)  # the model and its external-data file
    return {"writable": writable, "readonly": readonly}


def launch_facts(outcome: LaunchOutcome, result: RunResult | None) -> dict[str, Any]:
    """How the runner was started, and what starting it cost: outside the measured window, but worth knowing."""
    facts: dict[str, Any] = {"seconds": outcome.seconds, "exit_code": outcome.exit_code, **outcome.details}
    if result and outcome.started_ns and result.process_start_ns:
        facts["startup_s"] = (result.process_start_ns - outcome.started_ns) / 1e9
    if result and outcome.started_ns and result.first_inference_ns:
        facts["start_to_first_inference_s"] = (result.first_inference_ns - outcome.started_ns) / 1e9
    return facts


def _failure(kind: str, message: str, log_tail: str = "") -> Failure:
    return Failure(kind=kind, message=message, log_tail=log_tail)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


_UNTOLD_SIGKILL = "the kernel's OOM killer, or another process: a child process's end does not say which"


def classify_outcome(outcome: LaunchOutcome, result: RunResult | None, result_problem: str | None) -> Failure | None:
    """None when the run succeeded; else a failure with its kind and reason."""
    if outcome.start_error:
        return _failure("start", outcome.start_error, outcome.log_tail)
    if outcome.oom_killed:
        evidence = outcome.details.get("oom_evidence")
        return _failure("oom", "the runner was killed (SIGKILL) for exceeding its memory"
                        + (f": {evidence}" if evidence else ""), outcome.log_tail)
    if outcome.timed_out:
        return _failure("timeout", f"runner killed after the {outcome.seconds:.0f} s time limit", outcome.log_tail)
    if result is None:
        code = outcome.exit_code
        # Exit 0 without a readable result: the runner "succeeded" but wrote garbage (or nothing).
        kind = "killed" if code is not None and code < 0 else "bad-result" if code == 0 else "crash"
        how = f"exited with code {code}"
        if kind == "killed":
            how = f"was killed by {_signal_name(-code)}" + (
                f" ({outcome.details.get('oom_evidence') or _UNTOLD_SIGKILL})" if -code == signal.SIGKILL else "")
        return _failure(kind, f"runner {how} and {result_problem}", outcome.log_tail)
    if result.status != "ok":
        error = result.error
        kind = error.kind if error else "runtime"
        # The runner's own out-of-memory error (MemoryError, CUDA OOM) and the OOM killer's end are one kind.
        return _failure("oom" if kind == "out-of-memory" else kind,
                        error.message if error else "runner reported an error", outcome.log_tail)
    return None


class SweepRunner:
    def __init__(self, config: SweepConfig, plan: Plan, results: ResultsDir, launcher: Launcher,
                 measurement: Measurement, artifacts: ArtifactCache,
                 run_gpus: tuple[GpuDescription, ...] | None = None) -> None:
        self.config = config
        # The GPUs a GPU runtime's run is given (--gpus); CPU runtimes are given none.
        self.run_gpus = measurement.gpus if run_gpus is None else run_gpus
        self.plan = plan
        self.results = results
        self.launcher = launcher
        self.measurement = measurement
        self.artifacts = artifacts
        self.idle_w: dict[str, float] = {}
        self._artifacts: dict[tuple[str, str], Artifact | ExportFailed] = {}
        self._references: dict[tuple[str, str], Path | str] = {}
        # The protocol's state between runs: the baseline in force (its place in baseline.json's history and when
        # it was measured, monotonic), the cooldown that preceded the next run, and whether a fallback was announced.
        self.baseline: dict[str, Any] | None = None
        self.baseline_index: int | None = None
        self._baseline_at: float | None = None
        self.last_cooldown: dict[str, Any] | None = None
        self._fallback_announced = False

    def pending(self) -> list[PlannedRun]:
        recorded = self.results.recorded_run_ids()
        return [run for run in self.plan.runs if run.run_id not in recorded]

    def prepare(self, runs: list[PlannedRun]) -> None:
        """Environments and converted models, all before the baseline and the first measured run.

        A failure here fails only the runs that need the thing that failed: they are recorded with the reason when
        their turn comes, and the rest of the sweep goes on.
        """
        for environment in sorted({parse_runtime(r.cell.runtime).environment for r in runs}):
            try:
                logger.info(f"environment {environment}: {self.launcher.prepare(environment)}")
            except (EnvironmentBuildError, ImageBuildError) as exc:
                logger.info(f"environment {environment}: FAILED: {exc}")
        for run in runs:
            try:
                self._artifact_for(run)  # exported (and cached) now, before anything is measured
            except ExportFailed as exc:
                logger.info(f"FAILED: {exc}")
                continue
            if parse_runtime(run.cell.runtime).reference_framework is not None:
                self._reference_for(run)

    def reference_folder(self, framework: str, model: str) -> Path:
        """The cache folder of `framework`'s native outputs for `model`: keyed like a converted model (framework
        and its versions, model options, weights), so that every runtime compared with it shares one run."""
        key = artifact_key(framework, model, self.config.options_for(model), self.config.weights_for(framework, model),
                           None, self.artifacts.source_versions(framework), user_model=self.config.user_model(model))
        return self.artifacts.root.parent / "references" / f"{framework}-{model}-{key}"

    def _reference_for(self, run: PlannedRun) -> Path | str:
        """The reference framework's outputs for this run's model, batch and inputs: a path, or why there are none.

        A native CPU run of the reference framework (a converted model's source, a compiler's own framework) with
        the same seeded weights and inputs, cached; each converted or compiled run's outputs are compared with it.
        """
        runtime = parse_runtime(run.cell.runtime)
        source = runtime.reference_framework
        assert source is not None, f"{run.cell.runtime} has no reference framework"
        try:
            folder = self.reference_folder(source, run.cell.model)
        except ExportFailed as exc:
            return f"no {source} reference: {exc}"
        path = reference_path(folder, run.cell.batch_size, self.config.seed)
        stem = path.stem
        if path.exists():
            return path
        key = (str(folder), stem)
        if key not in self._references:
            folder.mkdir(parents=True, exist_ok=True)
            logger.info(f"reference outputs: {run.cell.model} bs{run.cell.batch_size} in {source}")
            request = RunRequest(run_id=stem, runtime=runtime.reference_runtime, model=run.cell.model,
                                 batch_size=run.cell.batch_size, result_path=str(folder / f"{stem}.json"),
                                 weights=self.config.weights_for(source, run.cell.model), input_seed=self.config.seed,
                                 budget=Budget(warmup_iterations=0, min_iterations=1),
                                 model_options=self.config.options_for(run.cell.model), outputs_path=str(path),
                                 artifact_path=user_model_file(self.config, run.cell.model, runtime),
                                 user_model=self.config.user_model(run.cell.model))
            write_json_atomic(folder / f"{stem}.request.json", to_dict(request))
            outcome = self.launcher.launch(source, ["run", "--request", str(folder / f"{stem}.request.json")],
                                           workdir=folder, timeout_s=self.config.prepare_timeout_seconds, env_vars={},
                                           log_path=folder / f"{stem}.log", readonly=run_mounts(request)["readonly"])
            self._references[key] = path if path.exists() else (
                f"the {source} reference run failed ({outcome.start_error or 'exit ' + str(outcome.exit_code)}): "
                + (outcome.log_tail.splitlines() or [""])[-1][:300])
        return self._references[key]

    def _artifact_for(self, run: PlannedRun) -> Artifact | None:
        runtime = parse_runtime(run.cell.runtime)
        if runtime.source_framework is None:
            return None
        key = (runtime.model_format, run.cell.model)  # onnx-from-tensorflow and tflite-from-tensorflow differ
        if key not in self._artifacts:
            logger.info(f"{runtime.target_format} artifact: {run.cell.model} from {runtime.source_framework}")
            try:
                self._artifacts[key] = self.artifacts.ensure(runtime, run.cell.model, self.config.options_for(run.cell.model),
                                                             self.config.weights_for(runtime.source_framework, run.cell.model),
                                                             self.config.opset,
                                                             user_model=self.config.user_model(run.cell.model))
            except ExportFailed as exc:
                self._artifacts[key] = exc
        artifact = self._artifacts[key]
        if isinstance(artifact, ExportFailed):
            raise artifact
        if run.cell.precision == INT8:  # an INT8 model quantized from the fp32 one, cached like it
            qkey = (*key, INT8)
            if qkey not in self._artifacts:
                logger.info(f"INT8 artifact: {run.cell.model} from {runtime.source_framework}'s ONNX")
                try:
                    self._artifacts[qkey] = ensure_quantized(self.artifacts, artifact, runtime.source_framework,
                                                             run.cell.model, self.config.options_for(run.cell.model))
                except ExportFailed as exc:
                    self._artifacts[qkey] = exc
            artifact = self._artifacts[qkey]
            if isinstance(artifact, ExportFailed):
                raise artifact
        return artifact

    def measure_baseline(self) -> dict[str, Any]:
        baseline = measure_idle(self.measurement.sensors, self.config.baseline.seconds, self.config.sampler.interval_ms / 1e3)
        self.idle_w = baseline["idle_w"]
        history = self.results.baseline_history()
        self.results.write_json(self.results.baseline_path, {"latest": baseline, "history": [*history, baseline]})
        self.baseline, self.baseline_index, self._baseline_at = baseline, len(history), time.monotonic()
        return baseline

    def recheck_baseline(self, now: float | None = None) -> dict[str, Any] | None:
        """Measure idle again when baseline.recheck_minutes have passed (call it between runs, after the cooldown)."""
        if self.baseline is None or self.baseline.get("status") != "ok":
            return None
        if not recheck_due(self._baseline_at, time.monotonic() if now is None else now,
                           self.config.baseline.recheck_minutes):
            return None
        return self.measure_baseline()

    def protocol_facts(self) -> dict[str, Any]:
        """For the record of the run just executed: the baseline its dynamic energy used, the cooldown before it."""
        return {"baseline": baseline_reference(self.baseline, self.baseline_index) if self.baseline else None,
                "cooldown_before": self.last_cooldown}

    def new_record(self, run: PlannedRun) -> RunRecord:
        """A run's record before anything is known of its outcome (also what an interrupted run is recorded as)."""
        runtime = parse_runtime(run.cell.runtime)
        return RunRecord(
            run_id=run.run_id, index=run.index, repetition=run.repetition, model=run.cell.model,
            batch_size=run.cell.batch_size, runtime=runtime.name, framework=runtime.framework,
            model_format=runtime.model_format, provider=runtime.provider, precision=run.cell.precision,
            started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), launcher=self.launcher.name,
            environment=runtime.environment, env_vars=self.config.environment.get(runtime.name, {}),
            gpus=[g.to_dict() for g in self.gpus_for(run)])

    def gpus_for(self, run: PlannedRun) -> tuple[GpuDescription, ...]:
        """The run's own GPUs: the first `gpus_per_run` of --gpus that a run can be given (no MIG); none for a CPU
        runtime. Only these are visible to its runner and charged to it; the other GPUs are sampled beside it."""
        if not parse_runtime(run.cell.runtime).needs_gpu:
            return ()
        return assign_gpus(self.run_gpus, self.config.gpus_per_run)

    def execute(self, run: PlannedRun) -> RunRecord:
        t0 = time.monotonic()
        runtime = parse_runtime(run.cell.runtime)
        run_dir = self.results.run_dir(run.run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        record = self.new_record(run)
        try:
            artifact = self._artifact_for(run)
        except ExportFailed as exc:
            record.fail("export", str(exc), exc.log_tail)
            record.energy = Energy.unavailable("the run did not start")
            record.wall_seconds = time.monotonic() - t0
            return record
        # int8 runs everywhere, slowly without VNNI: its record says which it was
        host_cpu = (cpu_precision_fast(INT8, self.measurement.capabilities.cpu_flags)
                    if isinstance(artifact, QuantizedArtifact) else None)
        record.artifact = ArtifactFacts.of(to_dict(artifact), host_cpu) if artifact else None
        if runtime.reference_framework is not None:
            reference = self._reference_for(run)
            record.reference_outputs = str(reference) if isinstance(reference, Path) else None

        request = build_request(self.config, run, run_dir, artifact)
        record.provider_options = request.provider_options
        request_path = run_dir / "request.json"
        write_json_atomic(request_path, to_dict(request))
        Path(request.result_path).unlink(missing_ok=True)  # a stale result must never pass for this run's

        series: SampleSeries | None = None
        sampler = Sampler(self.measurement.sensors, interval_s=self.config.sampler.interval_ms / 1e3) \
            if self.measurement.sensors else None
        if sampler:
            sampler.start()
        try:
            outcome = self.launcher.launch(runtime.environment, ["run", "--request", str(request_path)], workdir=run_dir,
                                           timeout_s=self.config.timeout_seconds, env_vars=record.env_vars,
                                           log_path=run_dir / "runner.log", **run_mounts(request),
                                           gpus=self.gpus_for(run) if runtime.needs_gpu else None)
        finally:
            if sampler:
                series = sampler.stop()
        try:
            self._account(record, run, outcome, series, request, artifact)
        except Exception as exc:
            if disk_full(exc):
                raise  # not the run's fault: the guard stops the sweep, the run is measured again on resume
            self._accounting_failed(record, run, outcome, series, request, exc)
        record.wall_seconds = time.monotonic() - t0
        return record

    def _account(self, record: RunRecord, run: PlannedRun, outcome: LaunchOutcome, series: SampleSeries | None,
                 request: RunRequest, artifact: Artifact | None) -> None:
        """Everything after the runner returned: its result, energy, fidelity, samples. May raise: see execute."""
        if series is not None:  # first, so that the samples outlive any failure below
            self._keep_samples(record, run, series)
        result, problem = None, None
        if not outcome.start_error and not outcome.timed_out:
            try:
                result = read_json(RunResult, request.result_path)
            except ProtocolError as exc:
                problem = f"no readable result ({exc})"
        record.failure = classify_outcome(outcome, result, problem)
        record.result = to_dict(result) if result else None
        record.launch = launch_facts(outcome, result)
        window = None
        if result and result.status == "ok" and result.window_start_ns and result.window_end_ns:
            window = (result.window_start_ns, result.window_end_ns)
        record.energy = accounting.account_energy(series, window, self.idle_w, self.measurement.statuses,
                                                     self.gpus_for(run))
        if request.outputs_path is not None and window is not None:
            record.fidelity = self._fidelity(run, Path(request.outputs_path))
        record.status = FAILED if record.failure else OK
        json.dumps(record.to_journal(), allow_nan=False)  # a record the journal cannot hold fails here, as accounting

    def _keep_samples(self, record: RunRecord, run: PlannedRun, series: SampleSeries) -> None:
        samples_path = self.results.samples_dir / f"{run.run_id}.parquet"
        samples_path.parent.mkdir(parents=True, exist_ok=True)
        series.write_parquet(samples_path)
        record.samples_path = str(samples_path.relative_to(self.results.root))

    def _accounting_failed(self, record: RunRecord, run: PlannedRun, outcome: LaunchOutcome,
                           series: SampleSeries | None, request: RunRequest, exc: Exception) -> None:
        """greenrt failed after the runner returned: keep what the run produced, record why, let the sweep go on.

        The result, the samples and the traceback stay under runs/<id>/ and in the record, so `greenrt report`
        can account the run again once the cause is fixed (orchestrator/execution/reaccount.py).
        """
        trace = traceback.format_exc()
        if record.result is None:
            try:
                record.result = to_dict(read_json(RunResult, request.result_path))
            except ProtocolError:
                pass
        if record.samples_path is None and series is not None:
            try:
                self._keep_samples(record, run, series)
            except Exception as again:  # the samples themselves are what failed: say so, keep the rest
                trace += f"\nthe samples could not be written either: {type(again).__name__}: {again}\n"
        (self.results.run_dir(run.run_id) / ACCOUNTING_ERROR_FILE).write_text(trace)
        record.launch = record.launch or launch_facts(outcome, None)
        record.energy = Energy.unavailable(f"accounting failed: {type(exc).__name__}: {exc}")
        record.fidelity = None
        if record.failure and record.failure.kind != ACCOUNTING:  # the runner's own failure comes first
            record.failure.message += f" (and greenrt's accounting failed: {type(exc).__name__}: {exc})"
            record.status = FAILED
            return
        record.failure = _failure(ACCOUNTING, f"greenrt failed after the runner returned: {type(exc).__name__}: "
                                                 f"{exc} (result and samples kept; `greenrt report` accounts it "
                                                 f"again; traceback in runs/{run.run_id}/{ACCOUNTING_ERROR_FILE})",
                                     trace[-4000:])
        record.status = FAILED
        logger.info(f"accounting of {run.run_id} failed ({type(exc).__name__}: {exc}); the run is recorded with its "
                 "result and samples")

    def _fidelity(self, run: PlannedRun, outputs: Path) -> dict[str, Any]:
        reference = self._reference_for(run)
        if isinstance(reference, str):
            return {"status": "unavailable", "reason": reference}
        report = compare_output_files(reference, outputs, run.cell.precision)
        outputs.unlink(missing_ok=True)  # tens of MB per run; the record keeps its digest and the comparison
        return report

    def cooldown(self, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
        settings = self.config.cooldown
        if settings.mode == "fixed":
            facts = fixed_wait(settings.seconds, sleep)
        else:
            gpu_sensors = [s for s in self.measurement.sensors if "gpu" in s.channels().values()]
            channels = [c for s in gpu_sensors for c, domain in s.channels().items() if domain == "gpu"]
            nvml = next((s.reason for s in self.measurement.statuses if s.name == "nvml"), "no NVML sensor")
            problem = adaptive_unavailable(channels, nvml, self.baseline)
            if problem is None:
                facts = wait_until_idle(gpu_sensors, idle_reference(self.baseline, channels), settings, clock, sleep)
                if facts["outcome"] == "limit":
                    logger.info(f"cooldown: {settings.max_seconds:g} s limit reached before idle: {facts['detail']}")
            else:
                if not self._fallback_announced:
                    logger.info(f"cooldown: adaptive cannot watch the GPUs, so each cooldown waits the fixed minimum "
                             f"of {settings.seconds:g} s: {problem}")
                    self._fallback_announced = True
                facts = fixed_wait(settings.seconds, sleep, fallback=problem)
        self.last_cooldown = facts
        return facts
