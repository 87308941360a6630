"""One run: its request, its runner launched and sampled for its whole life, its accounting, one complete record.

`RunExecutor.execute` is the only place a measured run's record is made and filled (`interrupted` makes the record
of a run a signal stopped): the sweep loop and the guard journal it as it is.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from models.fidelity import compare_outputs
from orchestrator.execution.launchers.base import Launcher, LaunchOutcome, tail
from orchestrator.execution.launchers.local import OWNER_ENV
from orchestrator.execution.measurement_protocol import MeasurementProtocol
from orchestrator.execution.preparation import Missing, Preparation, build_request, run_mounts
from orchestrator.execution.quantized import INT8, QuantizedArtifact
from orchestrator.measurement import accounting
from orchestrator.measurement.interference import InterferenceObserver
from orchestrator.measurement.interference_policy import observer_for
from orchestrator.measurement.phase_energy import account_generation
from orchestrator.measurement.probe import Measurement
from orchestrator.measurement.sampler import Sampler, SampleSeries
from orchestrator.planning.config import SweepConfig
from orchestrator.planning.gpus import GpuDescription, assign_gpus
from orchestrator.planning.planner import PlannedRun
from orchestrator.planning.runtimes import parse_runtime
from orchestrator.results.interference_payload import Interference
from orchestrator.results.payloads import ArtifactFacts, Energy, Fidelity, Launch
from orchestrator.results.record import FAILED, INTERRUPTED, OK, Failure, RunRecord
from orchestrator.results.store import ResultsDir, disk_full
from runners.protocol import ProtocolError, RunRequest, RunResult, read_json, to_dict, write_json_atomic
from runners.runtimes_table import cpu_precision_fast

logger = logging.getLogger(__name__)

ACCOUNTING = "accounting"  # failure kind: the runner finished, greenrt failed afterwards (the result is kept)
ACCOUNTING_ERROR_FILE = "accounting-error.txt"


def launch_facts(outcome: LaunchOutcome, result: RunResult | None) -> Launch:
    """How the runner was started, and what starting it cost: outside the measured window, but worth knowing."""
    facts = {"seconds": outcome.seconds, "exit_code": outcome.exit_code, **outcome.details}
    if result and outcome.started_ns and result.process_start_ns:
        facts["startup_s"] = (result.process_start_ns - outcome.started_ns) / 1e9
    if result and outcome.started_ns and result.first_inference_ns:
        facts["start_to_first_inference_s"] = (result.first_inference_ns - outcome.started_ns) / 1e9
    return Launch.model_validate(facts)


def compare_output_files(reference: Path, outputs: Path, precision: str = "fp32") -> Fidelity:
    """The fidelity of a converted model's saved outputs against its source's (an int8 run's by the quantized
    criterion: models.fidelity.criterion_for)."""
    try:
        with np.load(reference) as ref, np.load(outputs) as out:
            return Fidelity.compared({"status": "ok", **compare_outputs(dict(ref), dict(out), precision=precision)})
    except (OSError, ValueError) as exc:
        return Fidelity.unavailable(f"outputs not comparable: {exc}")


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


class RunExecutor:
    """Executes planned runs one at a time, each into one complete record (the sweep loop journals it)."""

    def __init__(self, config: SweepConfig, results: ResultsDir, launcher: Launcher, measurement: Measurement,
                 preparation: Preparation, protocol: MeasurementProtocol,
                 run_gpus: tuple[GpuDescription, ...] | None = None) -> None:
        self.config = config
        self.results = results
        self.launcher = launcher
        self.measurement = measurement
        self.preparation = preparation
        self.protocol = protocol
        # The GPUs a GPU runtime's run is given (--gpus); CPU runtimes are given none.
        self.run_gpus = measurement.gpus if run_gpus is None else run_gpus
        self._unobserved = False  # the host's activity could not be looked at (said once)

    def gpus_for(self, run: PlannedRun) -> tuple[GpuDescription, ...]:
        """The run's own GPUs: the first `gpus_per_run` of --gpus that a run can be given (no MIG); none for a CPU
        runtime. Only these are visible to its runner and charged to it; the other GPUs are sampled beside it."""
        if not parse_runtime(run.cell.runtime).needs_gpu:
            return ()
        return assign_gpus(self.run_gpus, self.config.gpus_per_run)

    def _new_record(self, run: PlannedRun) -> RunRecord:
        """A run's record before anything is known of its outcome."""
        runtime = parse_runtime(run.cell.runtime)
        return RunRecord(
            run_id=run.run_id, index=run.index, repetition=run.repetition, model=run.cell.model,
            batch_size=run.cell.batch_size, runtime=runtime.name, framework=runtime.framework,
            model_format=runtime.model_format, provider=runtime.provider, precision=run.cell.precision,
            started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), launcher=self.launcher.name,
            environment=runtime.environment, env_vars=self.config.environment.get(runtime.name, {}),
            gpus=[g.to_dict() for g in self.gpus_for(run)])

    def interrupted(self, run: PlannedRun, signal_name: str, wall_seconds: float) -> RunRecord:
        """The record of a run a signal stopped: it is measured again when the sweep resumes."""
        record = self._new_record(run)
        record.fail(INTERRUPTED, f"{signal_name} stopped the sweep during this run; it is measured again when the "
                                 "sweep resumes", tail(self.results.run_dir(run.run_id) / "runner.log"))
        record.status, record.wall_seconds = INTERRUPTED, wall_seconds
        record.energy = Energy.unavailable("the run was interrupted")
        return record

    def execute(self, run: PlannedRun) -> RunRecord:
        """The run's complete record: its outcome, energy, fidelity and the protocol it was measured under."""
        t0 = time.monotonic()
        record = self._measure(run)
        record.protocol = self.protocol.facts()
        record.prepared = self.preparation.took_time()  # the first run after a preparation keeps its time
        record.wall_seconds = time.monotonic() - t0
        return record

    def _measure(self, run: PlannedRun) -> RunRecord:
        runtime = parse_runtime(run.cell.runtime)
        run_dir = self.results.run_dir(run.run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        record = self._new_record(run)
        # The client's runner (built, in its image), its inputs file and the model it loads (all made by the
        # preparation, cached): a missing one fails the run with its own kind, before anything is launched.
        client, inputs = self.preparation.client_missing(run), self.preparation.inputs_for(run)
        artifact = self.preparation.artifact_for(run)
        for kind, missing in (("start", client), ("inputs", inputs), ("export", artifact)):
            if isinstance(missing, Missing):
                record.fail(kind, missing.reason, missing.log_tail)
                record.energy = Energy.unavailable("the run did not start")
                return record
        # int8 runs everywhere, slowly without VNNI: its record says which it was
        host_cpu = (cpu_precision_fast(INT8, self.measurement.capabilities.cpu_flags)
                    if isinstance(artifact, QuantizedArtifact) else None)
        record.artifact = ArtifactFacts.of(to_dict(artifact), host_cpu) if artifact else None
        if runtime.reference_framework is not None:
            reference = self.preparation.reference_for(run)
            record.reference_outputs = str(reference) if isinstance(reference, Path) else None

        request = build_request(self.config, run, run_dir, artifact, inputs_path=inputs)
        record.provider_options = request.provider_options
        request_path = run_dir / "request.json"
        write_json_atomic(request_path, to_dict(request))
        Path(request.result_path).unlink(missing_ok=True)  # a stale result must never pass for this run's

        series: SampleSeries | None = None
        sampler = Sampler(self.measurement.sensors, interval_s=self.config.sampler.interval_ms / 1e3) \
            if self.measurement.sensors else None
        observer = self._observer(run)
        if sampler:
            sampler.start()
        try:
            outcome = self.launcher.launch(runtime.environment, ["run", "--request", str(request_path)], workdir=run_dir,
                                           timeout_s=self.config.timeout_seconds, env_vars=record.env_vars,
                                           log_path=run_dir / "runner.log", **run_mounts(request),
                                           gpus=self.gpus_for(run) if runtime.needs_gpu else None,
                                           client=runtime.client)
        finally:
            if sampler:
                series = sampler.stop()
            observer = self._stopped(observer)
        self._account_or_fail(record, run, outcome, series, request, observer)
        return record

    def _account_or_fail(self, record: RunRecord, run: PlannedRun, outcome: LaunchOutcome,
                         series: SampleSeries | None, request: RunRequest,
                         observer: InterferenceObserver | None = None) -> None:
        """The record's accounting, or the accounting failure with its traceback (the run's result kept)."""
        try:
            self._account(record, run, outcome, series, request, observer)
        except Exception as exc:
            if disk_full(exc):
                raise  # not the run's fault: the guard stops the sweep, the run is measured again on resume
            self._accounting_failed(record, run, outcome, series, request, exc)

    def _observer(self, run: PlannedRun) -> InterferenceObserver | None:
        """What else uses the host while the runner runs ([interference]); None, said once in the log, where the
        host cannot be looked at (the record then has no interference: not observed, never quiet)."""
        gpus = [g.index for g in self.gpus_for(run)]
        try:
            # The runner and what it starts carry greenrt's owner marker (local launcher); a container's processes
            # are found by their cgroup, which names the container (its environment may be another uid's to read).
            observer = observer_for(self.config.interference, gpu_indices=gpus,
                                    owner_marker=f"{OWNER_ENV}={os.getpid()}",
                                    watch_cgroups=self.launcher.name == "docker")
            observer.exclude_tree(os.getpid())  # whatever greenrt itself starts during the run is the run's doing
            return observer.start()
        except Exception as exc:  # noqa: BLE001 - the run is measured all the same; it is just not observed
            if not self._unobserved:
                logger.warning(f"the host's activity cannot be observed during runs ({type(exc).__name__}: {exc}); "
                               "runs are recorded without an interference verdict")
            self._unobserved = True
            return None

    def _stopped(self, observer: InterferenceObserver | None) -> InterferenceObserver | None:
        if observer is None:
            return None
        try:
            observer.stop()
            return observer
        except Exception as exc:  # noqa: BLE001 - as in _observer: not observed, the run's figures stand
            logger.warning(f"the host's activity could not be summed up for this run ({type(exc).__name__}: {exc})")
            return None

    def _interference(self, observer: InterferenceObserver | None, outcome: LaunchOutcome,
                      window: tuple[int, int] | None) -> Interference | None:
        """The observer's payload over the runner's measured window (its whole life where it measured none)."""
        if observer is None:
            return None
        container = outcome.details.get("container_id")
        if container and observer.watch_cgroups:
            observer.exclude_cgroup(container)
        try:
            return observer.result(window)
        except Exception as exc:  # noqa: BLE001 - as in _observer: not observed, the run's figures stand
            logger.warning(f"the host's activity could not be summed up for this run ({type(exc).__name__}: {exc})")
            return None

    def _account(self, record: RunRecord, run: PlannedRun, outcome: LaunchOutcome, series: SampleSeries | None,
                 request: RunRequest, observer: InterferenceObserver | None = None) -> None:
        """Everything after the runner returned: its result, energy, fidelity, samples. May raise: see _measure."""
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
        record.interference = self._interference(observer, outcome, window)
        record.energy = accounting.account_energy(series, window, self.protocol.idle_w, self.measurement.statuses,
                                                  self.gpus_for(run))
        # A generative run's TTFT, TPOT and energy by phase; stamps it cannot read fail the accounting, as above.
        record.generation = account_generation(record.result if window else None, series, window,
                                               self.protocol.idle_w, record.energy)
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
        record.generation = None
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

    def _fidelity(self, run: PlannedRun, outputs: Path) -> Fidelity:
        reference = self.preparation.reference_for(run)
        if isinstance(reference, Missing):
            return Fidelity.unavailable(reference.reason)
        fidelity = compare_output_files(reference, outputs, run.cell.precision)
        outputs.unlink(missing_ok=True)  # tens of MB per run; the record keeps its digest and the comparison
        return fidelity
