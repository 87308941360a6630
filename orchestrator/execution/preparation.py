"""What a run needs before it is measured: its environment (and its client's runner), its converted model (and int8
copy), the inputs file of a client in another language, the reference outputs its fidelity is judged against, and
its request.

All of it is made once, before the baseline and the first measured run (`Preparation.prepare`), and cached: a run
asks again when its turn comes and gets the thing, or `Missing` with the reason it is not there, which fails only
the runs that need it.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from orchestrator.execution.artifacts import Artifact, ArtifactCache, ExportFailed, artifact_key
from orchestrator.execution.inputs_cache import InputsCache, InputsUnavailable
from orchestrator.execution.launchers.base import Launcher
from orchestrator.execution.llm_artifacts import (GenerativeArtifact, ensure_checkpoint, ensure_checkpoint_view,
                                                  ensure_conversion, user_checkpoint)
from orchestrator.execution.quantized import INT8, ensure_quantized
from orchestrator.execution.run_caches import jit_cache, tensorrt_caches
from orchestrator.planning.config import SweepConfig
from orchestrator.planning.planner import PlannedRun
from orchestrator.planning.runtimes import Runtime, parse_runtime
from orchestrator.provisioning.environments import EnvironmentBuildError
from orchestrator.provisioning.images import ImageBuildError
from orchestrator.results.payloads import Prepared
from runners.protocol import Budget, RunRequest, Weights, to_dict, write_json_atomic
from runners.runtimes_table import CHECKPOINT_FRAMEWORK

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Missing:
    """Why a thing a run needs (its converted model, its reference outputs) is not there, and the log that says so."""

    reason: str
    log_tail: str = ""


def build_request(config: SweepConfig, run: PlannedRun, run_dir: Path, artifact: Artifact | None = None,
                  reference_outputs: Path | None = None, inputs_path: Path | None = None) -> RunRequest:
    """The request of `run`'s measured run, in run_dir; or, given reference_outputs, of its reference run (the
    reference framework's native CPU run of the same model, batch, weights and inputs, once, with the smallest
    budget) that writes those outputs, in run_dir = the references' cache folder. A generative run's artifact is
    the folder its runtime loads (for its reference run: the checkpoint), and its model options carry the prompt and
    new tokens (prompt_tokens, new_tokens). A runner in another language is named by the id with its suffix and
    reads `inputs_path`; the Python runner is named by the id without one (@python only picks its environment)."""
    cell = run.cell
    runtime = parse_runtime(cell.runtime)
    loaded = parse_runtime(runtime.reference_runtime) if reference_outputs is not None else runtime
    # The same model, weights and inputs for both: a reference runtime's framework is the measured one's source.
    shared: dict[str, Any] = dict(
        model=cell.model, batch_size=cell.batch_size, input_seed=config.seed,
        weights=config.weights_for(loaded.source_framework or loaded.framework, cell.model),
        model_options=config.options_for(cell.model), user_model=config.user_model(cell.model),
        artifact_path=artifact.path if artifact else user_model_file(config, cell.model, loaded))
    if reference_outputs is not None:
        stem = reference_outputs.stem
        return RunRequest(run_id=stem, runtime=loaded.name, result_path=str(run_dir / f"{stem}.json"),
                          budget=Budget(warmup_iterations=0, min_iterations=1), outputs_path=str(reference_outputs),
                          **shared)
    return RunRequest(
        run_id=run.run_id, runtime=runtime.base_name if runtime.python_client else runtime.name,
        precision=cell.precision, result_path=str(run_dir / "result.json"),
        inputs_path=str(inputs_path) if inputs_path is not None else None,
        budget=Budget(
            warmup_iterations=config.warmup.iterations,
            warmup_seconds=config.warmup.seconds,
            min_iterations=config.measure.min_iterations,
            min_seconds=config.measure.min_seconds,
            max_seconds=config.measure.max_seconds,
        ),
        # A converted or compiled model's outputs are kept until they are compared with its reference's (fidelity).
        outputs_path=str(run_dir / "outputs.npz") if runtime.reference_framework else None,
        threads=config.threads,
        provider_options={
            **(tensorrt_caches(run_dir.parent.parent, cell, runtime.source_framework or runtime.model_format,
                               config.options_for(cell.model)) if runtime.provider == "tensorrt" else {}),
            **config.provider_options.get(cell.runtime, {}),
        },
        # CUDA's JIT cache outlives the run (containers have a read-only root and a tmpfs /tmp): PTX-only kernels
        # (TensorFlow's compute_90 on Hopper) are compiled once per sweep, not in every run's load and warm-up.
        cuda_jit_cache=jit_cache(run_dir.parent.parent) if runtime.needs_gpu else None,
        **shared,
    )


def user_model_file(config: SweepConfig, model: str, runtime: Runtime) -> str | None:
    """A user's ONNX file, which an onnx-format runtime loads as it is (no export)."""
    entry = config.user_model(model)
    return entry.path if entry is not None and runtime.model_format == "onnx" else None


def reference_path(folder: Path, batch_size: int, seed: int) -> Path:
    """Where a reference framework's outputs for one model (its folder), batch and input seed are cached."""
    return folder / f"reference-bs{batch_size}-seed{seed}.npz"


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
    if request.artifact_path:  # a model file and its external-data file beside it; a generative model's folder
        artifact = Path(request.artifact_path)
        readonly.append(artifact if artifact.is_dir() else artifact.parent)
    if request.inputs_path:  # the inputs file's index and the .bin files beside it
        readonly.append(Path(request.inputs_path).parent)
    return {"writable": writable, "readonly": readonly}


class Preparation:
    """The environments, converted models (fp32 and int8) and reference outputs of a sweep's runs, each made once."""

    def __init__(self, config: SweepConfig, launcher: Launcher, artifacts: ArtifactCache,
                 inputs: InputsCache | None = None) -> None:
        self.config = config
        self.launcher = launcher
        self.artifacts = artifacts
        self.inputs = inputs  # None: made on first use, beside the artifact cache
        self._artifacts: dict[tuple[str, ...], Artifact | Missing] = {}
        self._clients: dict[tuple[str, str], Missing | None] = {}
        self._inputs: dict[tuple[str, int], Path | Missing] = {}
        self._references: dict[tuple[str, str], Path | Missing] = {}
        self._unrecorded: Prepared | None = None  # what the next record keeps of the preparation (took_time)

    def took_time(self) -> Prepared | None:
        """When the last preparation began and how long it took, once: for the record of the next run measured."""
        prepared, self._unrecorded = self._unrecorded, None
        return prepared

    def prepare(self, runs: list[PlannedRun]) -> None:
        """Environments and converted models, all before the baseline and the first measured run.

        A failure here fails only the runs that need the thing that failed: they are recorded with the reason when
        their turn comes, and the rest of the sweep goes on.
        """
        began, t0 = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.monotonic()
        self._prepare(runs)
        self._unrecorded = Prepared(started_at=began, seconds=round(time.monotonic() - t0, 3))

    def _prepare(self, runs: list[PlannedRun]) -> None:
        for environment in sorted({parse_runtime(r.cell.runtime).environment for r in runs}):
            try:
                logger.info(f"environment {environment}: {self.launcher.prepare(environment)}")
            except (EnvironmentBuildError, ImageBuildError) as exc:
                logger.info(f"environment {environment}: FAILED: {exc}")
        for run in runs:
            missing = self.client_missing(run) or self.inputs_for(run)  # the runner built, its inputs written
            if isinstance(missing, Missing):
                logger.info(f"FAILED: {missing.reason}")
                continue
            artifact = self.artifact_for(run)  # exported (and cached) now, before anything is measured
            if isinstance(artifact, Missing):
                logger.info(f"FAILED: {artifact.reason}")
                continue
            if parse_runtime(run.cell.runtime).reference_framework is not None:
                self.reference_for(run)

    def client_missing(self, run: PlannedRun) -> Missing | None:
        """Why the runner of the run's client cannot run (the C++ runner not built and failing to build, an image
        without it), asked of the launcher once per environment and client; None where it can."""
        runtime = parse_runtime(run.cell.runtime)
        if runtime.client is None:
            return None
        key = (runtime.environment, runtime.client)
        if key not in self._clients:
            try:
                logger.info(f"client {runtime.client} in {runtime.environment}: "
                            f"{self.launcher.prepare_client(*key)}")
                self._clients[key] = None
            except (EnvironmentBuildError, ImageBuildError) as exc:
                self._clients[key] = Missing(f"the {runtime.client} client's runner cannot run: {exc}")
        return self._clients[key]

    def inputs_for(self, run: PlannedRun) -> Path | Missing | None:
        """The inputs file a runner in another language reads (written once per model, batch, seed and options),
        why there is none, or None for the Python runner, which makes its own inputs."""
        if parse_runtime(run.cell.runtime).python_client:
            return None
        key = (run.cell.model, run.cell.batch_size)
        if self.inputs is None:
            self.inputs = InputsCache(self.artifacts.root.parent / "inputs")
        if key not in self._inputs:
            try:
                self._inputs[key] = self.inputs.ensure(run.cell.model, run.cell.batch_size, self.config.seed,
                                                       self.config.options_for(run.cell.model))
            except InputsUnavailable as exc:
                self._inputs[key] = Missing(f"no inputs file: {exc}")
        return self._inputs[key]

    def artifact_for(self, run: PlannedRun) -> Artifact | Missing | None:
        """The converted model the run loads (its int8 copy for an int8 cell), why there is none, or None where the
        runtime loads no converted model."""
        runtime = parse_runtime(run.cell.runtime)
        source, model = runtime.source_framework, run.cell.model
        if source is None:
            return None
        if runtime.generative:
            return self.generative_artifact(runtime, model, run.cell.precision)
        key = (runtime.model_format, model)  # onnx-from-tensorflow and tflite-from-tensorflow differ
        if key not in self._artifacts:
            logger.info(f"{runtime.target_format} artifact: {model} from {source}")
            self._artifacts[key] = self._made(lambda: self.artifacts.ensure(
                runtime, model, self.config.options_for(model), self.config.weights_for(source, model),
                self.config.opset, user_model=self.config.user_model(model)))
        fp32 = self._artifacts[key]
        if run.cell.precision != INT8 or isinstance(fp32, Missing):
            return fp32
        qkey = (*key, INT8)  # an INT8 model quantized from the fp32 one, cached like it
        if qkey not in self._artifacts:
            logger.info(f"INT8 artifact: {model} from {source}'s ONNX")
            self._artifacts[qkey] = self._made(lambda: ensure_quantized(self.artifacts, fp32, source, model,
                                                                        self.config.options_for(model)))
        return self._artifacts[qkey]

    def checkpoint_for(self, model: str) -> GenerativeArtifact | Missing:
        """The Hugging Face checkpoint folder of a generative model (a user's folder as is; a built-in one written
        in the torch environment), or why there is none."""
        key = ("hf-checkpoint", model)
        if key not in self._artifacts:
            user = self.config.user_model(model)
            if user is not None:
                self._artifacts[key] = user_checkpoint(user)
            else:
                logger.info(f"hf-checkpoint artifact: {model}")
                spec = self.config.model_spec(model)
                assert spec.llm_config is not None, f"{model} is not a generative model"
                self._artifacts[key] = self._made(lambda: ensure_checkpoint(
                    self.artifacts, model, spec.llm_config, self.config.weights_for(CHECKPOINT_FRAMEWORK, model)))
        return self._artifacts[key]

    def generative_artifact(self, runtime: Runtime, model: str, precision: str) -> GenerativeArtifact | Missing:
        """What a generative runtime loads at `precision`: the checkpoint itself, or its conversion of it (made in
        the runtime's own environment, cached); Missing with the reason, which fails only the runs needing it."""
        checkpoint = self.checkpoint_for(model)
        if runtime.conversion is None or isinstance(checkpoint, Missing):
            return checkpoint
        user = self.config.user_model(model)
        if user is not None:  # converters read a view of the user's folder: tokenizer files where it has none
            view_key = ("hf-checkpoint-view", model)
            if view_key not in self._artifacts:
                self._artifacts[view_key] = self._made(lambda: ensure_checkpoint_view(self.artifacts, user))
            checkpoint = self._artifacts[view_key]
            if isinstance(checkpoint, Missing):
                return checkpoint
        key = (*runtime.conversion, runtime.environment, model, precision)
        if key not in self._artifacts:
            logger.info(f"{runtime.conversion[1]} artifact: {model} at {precision} in {runtime.environment}")
            self._artifacts[key] = self._made(lambda: ensure_conversion(
                self.artifacts, runtime, model, checkpoint, precision, self.config.options_for(model),
                self.config.user_model(model)))
        return self._artifacts[key]

    @staticmethod
    def _made(make: Callable[[], Artifact]) -> Artifact | Missing:
        try:
            return make()
        except ExportFailed as exc:
            return Missing(str(exc), exc.log_tail)

    def reference_folder(self, framework: str, model: str) -> Path:
        """The cache folder of `framework`'s native outputs for `model`: keyed like a converted model (framework
        and its versions, model options, weights), so that every runtime compared with it shares one run."""
        key = artifact_key(framework, model, self.config.options_for(model), self.config.weights_for(framework, model),
                           None, self.artifacts.source_versions(framework), user_model=self.config.user_model(model))
        return self.artifacts.root.parent / "references" / f"{framework}-{model}-{key}"

    def reference_for(self, run: PlannedRun) -> Path | Missing:
        """The reference framework's outputs for this run's model, batch and inputs, or why there are none.

        A native CPU run of the reference framework (a converted model's source, a compiler's own framework) with
        the same seeded weights and inputs, cached; each converted or compiled run's outputs are compared with it.
        """
        runtime = parse_runtime(run.cell.runtime)
        source = runtime.reference_framework
        assert source is not None, f"{run.cell.runtime} has no reference framework"
        # A generative reference (transformers' generate, CPU, fp32) loads the same checkpoint as the measured run.
        checkpoint = self.checkpoint_for(run.cell.model) if runtime.generative else None
        if isinstance(checkpoint, Missing):
            return Missing(f"no {source} reference: {checkpoint.reason}", checkpoint.log_tail)
        try:
            folder = self.reference_folder(source, run.cell.model)
        except ExportFailed as exc:
            return Missing(f"no {source} reference: {exc}", exc.log_tail)
        path = reference_path(folder, run.cell.batch_size, self.config.seed)
        if path.exists():
            return path
        key = (str(folder), path.stem)
        if key not in self._references:
            folder.mkdir(parents=True, exist_ok=True)
            logger.info(f"reference outputs: {run.cell.model} bs{run.cell.batch_size} in {source}")
            request = build_request(self.config, run, folder, checkpoint, reference_outputs=path)
            request_path = folder / f"{path.stem}.request.json"
            write_json_atomic(request_path, to_dict(request))
            environment = parse_runtime(request.runtime).environment
            outcome = self.launcher.launch(environment, ["run", "--request", str(request_path)], workdir=folder,
                                           timeout_s=self.config.prepare_timeout_seconds, env_vars={},
                                           log_path=folder / f"{path.stem}.log",
                                           readonly=run_mounts(request)["readonly"])
            self._references[key] = path if path.exists() else Missing(
                f"the {source} reference run failed ({outcome.start_error or 'exit ' + str(outcome.exit_code)}): "
                + (outcome.log_tail.splitlines() or [""])[-1][:300], outcome.log_tail)
        return self._references[key]
