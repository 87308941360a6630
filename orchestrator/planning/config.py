"""Sweep configuration: a TOML file validated with pydantic into one clear line per mistake, every mistake listed.

The schema and its cross-checks. How a mistake is told: config_errors; the protocol's tables: config_sections; the
per-runtime settings against the runtimes table: runtime_checks; whether an interpreter runs: provisioning.interpreters.
A sweep's own models ([user_models]) travel in the config (user_model, model_spec): validating registers nothing.
"""
from __future__ import annotations

import hashlib
import json
import math
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PlainSerializer, PlainValidator, ValidationError, ValidationInfo, field_validator, model_validator

from models.registry import BUILT_IN_MODELS, ModelSpec, UnknownModelError, get_model
from models.user_models import spec_from_entry
from orchestrator.errors import UserError
from orchestrator.paths import environment_names
from orchestrator.safe_paths import read_bytes
from orchestrator.planning.config_errors import (Mistakes, config_refusal, describe, one_line, raise_if, shown_key,
                                                 shown_value)
from orchestrator.planning.config_sections import (MAX_REPETITIONS, AdaptiveRepetitions, Baseline, Cooldown,
                                                   InterferenceSettings, Measure, PositiveSeconds, ReportSettings,
                                                   SamplerSettings, Section, Warmup, protocol_mistakes,
                                                   without_later_defaults)
from orchestrator.planning.runtime_checks import environment_mistakes, opset_mistakes, provider_option_mistakes
from orchestrator.planning.runtimes import NATIVE_FRAMEWORKS, UnknownRuntimeError, parse_runtime
from orchestrator.planning.user_model_checks import hf_model_mistakes
from orchestrator.planning.user_models import user_model_entries
from orchestrator.provisioning.interpreters import interpreter_refusal
from runners.protocol import UserModel, Weights

# tf32: fp32 data, TF32 math on GPUs (runners/math_policy.py); int4: generative runtimes' 4-bit weights.
Precision = Literal["fp32", "fp16", "tf32", "int8", "int4"]
MAX_BATCH = 2**31 - 1  # a dimension every framework indexes (int32); what fits in memory is the planner's check
BatchSize = Annotated[int, Field(ge=1, le=MAX_BATCH)]
MAX_THREADS = 4096
MAX_SEED = 2**63 - 1  # TOML's own integer range; numpy's generators take any non-negative seed


def _option_value(value: object) -> str | int | float | bool:
    # One check instead of a union, so that a wrong value is one line, not one per member of the union.
    # An option set to nothing is a slip: leaving it out is how its default is asked for.
    if isinstance(value, str) and not value.strip():
        raise ValueError("an empty string is no value; leave the option out for its default")
    if isinstance(value, (str, bool, int)) or (isinstance(value, float) and math.isfinite(value)):
        return value
    raise ValueError("not a string, an integer, a finite number or a boolean")


OptionValue = Annotated[str | int | float | bool, PlainValidator(_option_value)]

_REPETITIONS_VALID = (f"valid: a count from 1 to {MAX_REPETITIONS}, or a table such as {{min = 2, max = 10, "
                      f"stop = \"verdict\"}} or {{min = 3, max = 10, stop = \"precision\", target = 0.02}}")
_ADAPTIVE_REQUIRED = {"min": f"a count of runs per cell from 2 to {MAX_REPETITIONS}, e.g. min = 2",
                      "max": f"a count of runs per cell from 3 to {MAX_REPETITIONS}, above min, e.g. max = 10",
                      "stop": "'precision' or 'verdict'"}


def _repetitions(value: object) -> int | AdaptiveRepetitions:
    # One check instead of a union, so that a mistake is one line naming both forms, not one per member.
    if isinstance(value, AdaptiveRepetitions):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= MAX_REPETITIONS:
            raise Mistakes([f"repetitions = {value}: out of range; {_REPETITIONS_VALID}"])
        return value
    if not isinstance(value, dict):
        raise Mistakes([f"repetitions = {shown_value(value)}: neither a count nor a table; {_REPETITIONS_VALID}"])
    unknown = [key for key in value if key not in AdaptiveRepetitions.model_fields]
    if unknown:  # another table than this one (a slip of the key or the section): one line, not one per key missing
        raise Mistakes([f"repetitions.{shown_key(key)}: unknown key; valid keys here: "
                        f"{', '.join(AdaptiveRepetitions.model_fields)} ({_REPETITIONS_VALID.removeprefix('valid: ')})"
                        for key in unknown[:1]])
    try:
        return AdaptiveRepetitions.model_validate(value)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            own = isinstance((error.get("ctx") or {}).get("error"), Mistakes)  # already whole lines
            lines += [line if own else f"repetitions.{line}"
                      for line in describe(error, AdaptiveRepetitions.model_fields, _ADAPTIVE_REQUIRED)]
        raise Mistakes(lines) from None


# A fixed count (every cell `repetitions` runs, as ever) or an adaptive table (config_sections.AdaptiveRepetitions).
Repetitions = Annotated[int | AdaptiveRepetitions, PlainValidator(_repetitions),
                        PlainSerializer(lambda v: v.model_dump() if isinstance(v, AdaptiveRepetitions) else v)]


def sweep_models(user_models: dict[str, dict]) -> dict[str, ModelSpec]:
    """The models a sweep may name: the built-in ones, then its own (user model entries, in the config's order)."""
    return {**BUILT_IN_MODELS, **{name: spec_from_entry(UserModel.from_entry(entry))
                                  for name, entry in user_models.items()}}


def model_option_mistakes(model_options: dict, models: dict[str, ModelSpec]) -> list[str]:
    """One line per [model_options] entry that names no model of the sweep or an option it does not have. Pure."""
    lines = []
    for model, options in model_options.items():
        try:
            get_model(model, models).resolve_options(options)
        except UnknownModelError as exc:
            lines.append(f"model_options.{shown_key(model)}: {exc}")
    return lines


def weights_mistakes(weights: dict, models: dict[str, ModelSpec]) -> list[str]:
    """One line per [weights] entry naming an unknown framework or model, or a file that is not there."""
    lines = []
    for framework, per_model in weights.items():
        if framework not in NATIVE_FRAMEWORKS:
            lines.append(f"weights.{shown_key(framework)}: unknown framework; valid: "
                         f"{', '.join(NATIVE_FRAMEWORKS)}")
            continue
        for model, path in per_model.items():
            where = f"weights.{framework}.{shown_key(model)}"
            if model not in models:
                lines.append(f"{where}: unknown model {model!r}; valid: {', '.join(models)}")
            elif not _is_file(path):
                lines.append(f"{where} = {shown_value(path)}: no such file; valid: a weights file in {framework}'s "
                             f"own format")
    return lines


class SweepConfig(Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    description: str = ""
    # The user's own models, [user_models.<name>] tables (orchestrator/planning/user_models.py): validated before
    # `models`, which may then name them; each becomes the entry (models.user_models) with its file's facts that the
    # config carries to the planner (model_spec) and each run's request (user_model).
    user_models: dict[str, dict] = {}
    models: list[str] = Field(min_length=1)
    batch_sizes: list[BatchSize] = Field(min_length=1)
    runtimes: list[str] = Field(min_length=1)
    precisions: list[Precision] = ["fp32"]
    repetitions: Repetitions = 1
    seed: int = Field(0, ge=0, le=MAX_SEED)
    threads: int | None = Field(None, ge=1, le=MAX_THREADS)
    # GPUs each GPU run is given (the first of --gpus, in NVML order): a single-device run is charged one GPU's
    # energy, not the node's; the others are sampled and kept beside it.
    gpus_per_run: int = Field(1, ge=1, le=64)
    opset: int | None = None
    timeout_seconds: PositiveSeconds = 1800.0  # per measured run
    # Per preparation step (a conversion, a quantization, the reference outputs): these load a framework and trace
    # the model, which can outlast a short run limit on a slow or busy host, and are not measured; their own limit
    # keeps a tight timeout_seconds from failing a run before it starts. Left out of the digest: no run changes.
    prepare_timeout_seconds: PositiveSeconds = 3600.0
    model_options: dict[str, dict[str, int]] = {}
    warmup: Warmup = Warmup()
    measure: Measure = Measure()
    cooldown: Cooldown = Cooldown()
    sampler: SamplerSettings = SamplerSettings()
    baseline: Baseline = Baseline()
    report: ReportSettings = ReportSettings()  # shown, not measured: left out of the digest
    # What a run measured on a busy host becomes: a policy, not what is measured; left out of the digest.
    interference: InterferenceSettings = InterferenceSettings()
    # Extra environment variables per runtime (allocator, thread counts): set explicitly and recorded.
    environment: dict[str, dict[str, str]] = {}
    # Options handed to a runtime's adapter, e.g. an execution provider's settings, or MXNet's fused CPU backend
    # ({backend = "MKLDNN"}); greenrt's defaults measure each framework as shipped. What each adapter accepts is
    # declared in runners/runtimes_table.py (ACCEPTED_OPTIONS) and checked by runtime_checks.
    provider_options: dict[str, dict[str, OptionValue]] = {}
    # Use an existing interpreter for an environment instead of building its venv (HPC modules, a lent GPU box).
    interpreters: dict[str, str] = {}
    # Pretrained weights, per framework and model, each in that framework's own format (see docs/configs.md); a model
    # without an entry gets seeded random weights. ONNX runtimes export from their source framework's weights.
    weights: dict[str, dict[str, str]] = {}

    @field_validator("user_models")
    @classmethod
    def _user_models(cls, value: dict) -> dict:
        entries, lines = user_model_entries(value)
        raise_if(lines)
        return entries

    # Each validator lists every mistake of its key. Keys validated earlier are in info.data when they are valid, so
    # a check that needs the runtimes is made once they are known, and never hides the other keys' mistakes.
    @field_validator("models", "batch_sizes", "runtimes", "precisions")
    @classmethod
    def _known_and_unique(cls, value: list, info: ValidationInfo) -> list:
        lines = []
        for name in value:
            if info.field_name == "models" and "user_models" not in info.data:
                continue  # the user models have mistakes of their own, listed already
            try:
                if info.field_name == "models":
                    get_model(name, sweep_models(info.data["user_models"]))
                elif info.field_name == "runtimes":
                    parse_runtime(name)
            except (UnknownModelError, UnknownRuntimeError) as exc:
                lines.append(f"{info.field_name}: {exc}")
        lines += _duplicates(value, info.field_name)
        raise_if(lines)
        return value

    @field_validator("opset")
    @classmethod
    def _opset_exported(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None:
            raise_if(opset_mistakes(value, info.data.get("runtimes")))
        return value

    @field_validator("model_options", "weights")
    @classmethod
    def _models_known(cls, value: dict, info: ValidationInfo) -> dict:
        mistakes = model_option_mistakes if info.field_name == "model_options" else weights_mistakes
        lines = mistakes(value, sweep_models(info.data.get("user_models", {})))
        if info.field_name == "model_options" and "models" in info.data:  # options for a model never run: a slip
            lines += [f"model_options.{shown_key(m)}: model {m!r} is not in models ({', '.join(info.data['models'])})"
                      for m in value if m not in info.data["models"] and not any(shown_key(m) in line for line in lines)]
        raise_if(lines)
        return value

    @field_validator("measure")
    @classmethod
    def _window_within_timeout(cls, value: Measure, info: ValidationInfo) -> Measure:
        timeout, warmup = info.data.get("timeout_seconds"), info.data.get("warmup")
        if timeout is not None and warmup is not None and warmup.seconds + value.min_seconds >= timeout:
            raise Mistakes([f"measure.min_seconds = {value.min_seconds:g}: with warmup.seconds = {warmup.seconds:g} "
                            f"no run can end within timeout_seconds = {timeout:g}; valid: warmup.seconds + "
                            f"measure.min_seconds below timeout_seconds"])
        return value

    @field_validator("baseline")
    @classmethod
    def _protocol(cls, value: Baseline, info: ValidationInfo) -> Baseline:
        raise_if(protocol_mistakes(info.data.get("cooldown"), value))
        return value

    @model_validator(mode="after")
    def _protocol_with_defaults(self) -> SweepConfig:
        # The same cross-check as _protocol, for a config that leaves [baseline] out (defaults are not validated).
        raise_if(protocol_mistakes(self.cooldown, self.baseline))
        return self

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: dict, info: ValidationInfo) -> dict:
        raise_if(environment_mistakes(value, info.data.get("runtimes")))
        return value

    @field_validator("provider_options")
    @classmethod
    def _provider_options(cls, value: dict, info: ValidationInfo) -> dict:
        raise_if(provider_option_mistakes(value, info.data.get("runtimes")))
        return value

    @field_validator("interpreters")
    @classmethod
    def _interpreters_run(cls, value: dict) -> dict:
        lines = []
        environments = environment_names()
        for environment, python in value.items():
            where = f"interpreters.{shown_key(environment)}"
            if environment not in environments:
                lines.append(f"{where}: unknown environment; valid: {', '.join(environments)}")
                continue
            refusal = interpreter_refusal(python, (environment,))
            if refusal:
                lines.append(f"{where} = {shown_value(python)}: {refusal}; valid: a Python 3 interpreter with the "
                             f"packages of images/{environment}/requirements.txt")
        raise_if(lines)
        return value

    @property
    def adaptive(self) -> AdaptiveRepetitions | None:
        """The adaptive repetitions table; None for a fixed count."""
        return self.repetitions if isinstance(self.repetitions, AdaptiveRepetitions) else None

    @property
    def adaptive_table(self) -> dict | None:
        """The adaptive repetitions as plan.json keeps them (a plain table); None for a fixed count."""
        return self.repetitions.model_dump() if isinstance(self.repetitions, AdaptiveRepetitions) else None

    @property
    def max_repetitions(self) -> int:
        """Repetitions the plan holds: the fixed count, or an adaptive sweep's max (rounds it may never reach)."""
        return self.repetitions.max if isinstance(self.repetitions, AdaptiveRepetitions) else self.repetitions

    @model_validator(mode="after")
    def _default_options_fit(self) -> SweepConfig:
        # A model's default options may not fit it (a user's checkpoint with short position embeddings and the
        # default prompt and new tokens): said here, once per model, not as a failure of every run.
        lines = []
        for model in self.models:
            if model not in self.model_options:  # given options were checked with their key
                try:
                    self.options_for(model)
                except UnknownModelError as exc:
                    lines.append(f"model_options.{shown_key(model)}: the defaults do not fit: {exc}; valid: smaller "
                                 f"values in [model_options.{shown_key(model)}]")
        raise_if(lines)
        return self

    @model_validator(mode="after")
    def _hf_models_known(self) -> SweepConfig:
        # After every key: the interpreter that builds hf models may be the config's own (interpreters.torch).
        raise_if(hf_model_mistakes(self.user_models, self.interpreters))
        return self

    def weights_for(self, framework: str, model: str) -> Weights:
        path = self.weights.get(framework, {}).get(model)
        return Weights(kind="file", path=str(Path(path).resolve())) if path else Weights(kind="random", seed=self.seed)

    def user_model(self, model: str) -> UserModel | None:
        """A user model of this sweep (RunRequest.user_model); None for a built-in model."""
        entry = self.user_models.get(model)
        return UserModel.from_entry(entry) if entry is not None else None

    def model_spec(self, model: str) -> ModelSpec:
        """The spec of a model this sweep names: a built-in one, or one of its own made from its entry."""
        return get_model(model, sweep_models(self.user_models))

    def options_for(self, model: str) -> dict[str, int]:
        return self.model_spec(model).resolve_options(self.model_options.get(model))

    def digest(self) -> str:
        """Identity of the sweep: the same digest means the same planned runs and budgets."""
        payload = without_later_defaults(self.model_dump(exclude={"description", "interpreters", "report",
                                                                  "prepare_timeout_seconds", "interference"}))
        if not payload.get("user_models"):  # added later: a config without user models keeps its digest
            payload.pop("user_models", None)
        if payload.get("gpus_per_run") == 1:  # added later, likewise: the default keeps older sweeps' digests
            payload.pop("gpus_per_run", None)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _duplicates(values: list, field: str) -> list[str]:
    seen, lines = set(), []
    for value in values:
        if value in seen:
            lines.append(f"{field}: {shown_value(value)} is listed twice")
        seen.add(value)
    return lines


def _is_file(path: str) -> bool:
    try:
        return Path(path).is_file()
    except (OSError, ValueError):  # a NUL character, a name too long for the filesystem
        return False


# What each required key takes, for the line that says it is missing.
_REQUIRED = {
    "name": "letters, digits, '_', '.', '-' (up to 64, starting with a letter or digit), e.g. name = \"quick\"",
    "models": f"a list of {', '.join(BUILT_IN_MODELS)}",
    "batch_sizes": "a list of positive integers, e.g. [1, 64]",
    "runtimes": "a list of runtimes, e.g. [\"torch/native/cpu\"] (`greenrt doctor` lists them)",
}


def parse_config(data: dict, source: str = "config") -> SweepConfig:
    """The validated config, or a UserError with one line per mistake ("<source>: <key> = <value>: ...")."""
    try:
        return SweepConfig.model_validate(data)
    except ValidationError as exc:
        raise config_refusal(exc, source, SweepConfig, _REQUIRED) from None


def load_config(path: str | Path) -> SweepConfig:
    # safe_paths: one line for a missing file, a folder, a FIFO or device (refused, never opened), a loop, ...
    raw = read_bytes(path, "config file")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(one_line(f"{path}: not valid TOML ({exc})")) from None
    except RecursionError:  # tomllib reads nested arrays and inline tables recursively
        raise UserError(f"{path}: nested too deeply to read; valid: a sweep config (TOML), whose tables and lists "
                        f"nest a few levels deep") from None
    return parse_config(data, source=str(path))


__all__ = ["SweepConfig", "load_config", "parse_config"]
