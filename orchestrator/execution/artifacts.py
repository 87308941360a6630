"""Converted models (ONNX, TFLite), exported in the SOURCE framework's environment and cached across runs and sweeps.

The cache key covers everything that changes the file: target format, source framework and its version, model and
its options, weights (seed, or the file's digest) and opset (ONNX only).  The file is named by its format
(model.onnx, model.tflite) in a folder <source>-<model>[-<format>]-<key>; ONNX keys and folders read as before
the target format existed, so caches built then stay valid.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

from orchestrator import paths
from orchestrator.execution.launchers.base import Launcher
from orchestrator.planning.config import SweepConfig
from orchestrator.planning.runtimes import Runtime
from runners.protocol import (ExportRequest, ExportResult, ProtocolError, UserModel, Weights, read_json, to_dict,
                              write_json_atomic)


# The target format -> how messages name it (the file is model.<target>, or FILE_NAMES').
FORMAT_NAMES = {"onnx": "ONNX", "tflite": "TFLite", "torchscript": "TorchScript", "aoti": "AOTInductor"}
# Files whose loaders want their own suffix: libtorch's AOTI package loader takes a .pt2 only.
FILE_NAMES = {"torchscript": "model.pt", "aoti": "model.pt2"}
# AOTInductor's compile cache (~300 MB) goes to this folder of the export's staging folder, dropped before the
# export is published: the compiled package is self-contained, and the cache would otherwise land in $HOME.
SCRATCH = "scratch"


class ExportFailed(RuntimeError):
    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


@dataclass(frozen=True)
class Artifact:
    path: str
    key: str
    opset: int | None
    exporter: str | None
    versions: dict[str, str]
    export_seconds: float | None


@contextmanager
def _export_lock(folder: Path) -> Iterator[None]:
    """One export of an artifact at a time across processes sharing the cache: they would share its staging folder.

    POSIX record locks (lockf), not flock: they also hold across nodes on NFS, where shards share the cache.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(folder.name + ".lock"), "a") as fh:
        fcntl.lockf(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(fh, fcntl.LOCK_UN)


def weights_identity(weights: Weights) -> str:
    if weights.kind == "random":
        return f"random:{weights.seed}"
    digest = hashlib.sha256()
    with open(weights.path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return f"file:{digest.hexdigest()}"


def artifact_key(source: str, model: str, options: dict, weights: Weights, opset: int | None, source_versions: dict,
                 target: str = "onnx", user_model: UserModel | None = None) -> str:
    identity = {"source": source, "model": model, "options": options, "weights": weights_identity(weights),
                "opset": opset, "versions": source_versions}
    if target != "onnx":  # an ONNX artifact's key is what it was before other formats: its cache stays valid
        identity["target"] = target
    if user_model is not None:  # a user's model: its file's sha256, inputs and outputs are part of what it is
        identity["user_model"] = to_dict(user_model)
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


class ArtifactCache:
    def __init__(self, launcher: Launcher, root: Path | None = None, timeout_s: float = 3600) -> None:
        self.launcher = launcher
        self.root = root or paths.cache_dir() / "artifacts"
        self.timeout_s = timeout_s
        self._versions: dict[str, dict[str, str]] = {}

    @classmethod
    def for_sweep(cls, launcher: Launcher, config: SweepConfig) -> ArtifactCache:
        """The cache a sweep prepares its models in: each preparation step bounded by prepare_timeout_seconds."""
        return cls(launcher, timeout_s=config.prepare_timeout_seconds)

    def source_versions(self, environment: str) -> dict[str, str]:
        if environment not in self._versions:
            with tempfile.TemporaryDirectory() as tmp:
                log = Path(tmp) / "versions.log"
                outcome = self.launcher.launch(environment, ["versions"], workdir=Path(tmp), timeout_s=300,
                                               env_vars={}, log_path=log)
                if outcome.exit_code != 0:
                    raise ExportFailed(f"cannot read package versions in environment {environment}: "
                                       f"{outcome.start_error or 'runner exited ' + str(outcome.exit_code)}", outcome.log_tail)
                text = log.read_text()
                try:  # the JSON object is the last thing printed; anything before it is the interpreter's noise
                    self._versions[environment] = json.loads(text[text.index("{"):])
                except ValueError:
                    raise ExportFailed(f"environment {environment} printed no package versions", outcome.log_tail) from None
        return self._versions[environment]

    def ensure(self, runtime: Runtime, model: str, options: dict, weights: Weights, opset: int | None,
               user_model: UserModel | None = None) -> Artifact:
        source, target = runtime.source_framework, runtime.target_format
        assert source is not None and target is not None, f"{runtime.name} loads no converted model"
        opset = opset if target == "onnx" else None  # an ONNX opset means nothing to another format
        key = artifact_key(source, model, options, weights, opset, self.source_versions(source), target, user_model)
        folder = self.root / (f"{source}-{model}-{key}" if target == "onnx" else f"{source}-{model}-{target}-{key}")
        export_json = folder / "export.json"
        if not export_json.exists():
            with _export_lock(folder):
                if not export_json.exists():  # another process (a shard on another node) may have exported it meanwhile
                    self._export(source, model, options, weights, opset, folder, target, user_model)
        result: ExportResult = read_json(ExportResult, export_json)
        return Artifact(result.output_path, key, result.opset, result.exporter, result.versions, result.seconds)

    def _export(self, source: str, model: str, options: dict, weights: Weights, opset: int | None, folder: Path,
                target: str = "onnx", user_model: UserModel | None = None) -> None:
        staging = staging_folder(folder)
        file_name = FILE_NAMES.get(target, f"model.{target}")
        request = ExportRequest(framework=source, model=model, output_path=str(staging / file_name),
                                result_path=str(staging / "export.json"), opset=opset, weights=weights,
                                model_options=options, target=target, user_model=user_model)
        readonly = ([Path(weights.path)] if weights.kind == "file" and weights.path else []) \
            + [Path(p) for p in [user_model and user_model.path] if p]
        # ONNX external-data references are relative, so the model survives the folder's rename.
        env_vars = {"TORCHINDUCTOR_CACHE_DIR": str(staging / SCRATCH / "inductor")} if target == "aoti" else {}
        publish(self, source, "export", request, ExportResult, folder, readonly,
                f"{FORMAT_NAMES.get(target, target)} export of {model} from {source}", env_vars)


def staging_folder(folder: Path) -> Path:
    """Where a derived model is written before it is published as `folder`, emptied of a killed attempt's leftovers
    (the caller holds _export_lock), so that a half-written model is never taken from the cache."""
    staging = folder.with_name(folder.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def publish(cache: ArtifactCache, environment: str, command: str, request: Any, result_cls: type, folder: Path,
            readonly: list[Path], what: str, env_vars: dict[str, str] | None = None) -> None:
    """Run `python -m runners <command>` on `request` (its paths in staging_folder(folder)) in `environment`, and
    rename the staging folder to `folder` once its result says ok; ExportFailed naming `what` otherwise. The
    staging folder's SCRATCH folder (a compiler's cache) is not published."""
    staging = Path(request.result_path).parent
    write_json_atomic(staging / "request.json", to_dict(request))
    outcome = cache.launcher.launch(environment, [command, "--request", str(staging / "request.json")],
                                    workdir=staging, timeout_s=cache.timeout_s, env_vars=env_vars or {},
                                    log_path=staging / f"{command}.log", readonly=readonly)
    shutil.rmtree(staging / SCRATCH, ignore_errors=True)
    result_path = Path(request.result_path)
    try:
        result = read_json(result_cls, result_path)
    except ProtocolError as exc:
        why = outcome.start_error or ("timed out" if outcome.timed_out else f"exit code {outcome.exit_code}")
        raise ExportFailed(f"{what} failed ({why}; {exc})", outcome.log_tail) from None
    if result.status != "ok":
        raise ExportFailed(f"{what} failed: {result.error.message if result.error else 'unknown error'}",
                           outcome.log_tail)
    published = folder / Path(request.output_path).relative_to(staging)
    write_json_atomic(result_path, to_dict(replace(result, output_path=str(published))))
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
