"""Sweep configuration: a TOML file validated with pydantic into one clear line per mistake, every mistake listed."""
from __future__ import annotations

import functools
import hashlib
import json
import math
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (BaseModel, ConfigDict, Field, PlainValidator, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from models.registry import MODELS, UnknownModelError, get_model
from orchestrator.errors import UserError
from orchestrator.paths import environment_names
from orchestrator.planning.runtimes import NATIVE_FRAMEWORKS, UnknownRuntimeError, parse_runtime
from runners.adapters.onnxruntime_session import DISABLE_CPU_FALLBACK, SESSION_CONFIG_PREFIX
from runners.protocol import Weights
from runners.runtimes_table import EXPORTER_OPSETS, ONNX_FROM, option_refusal

Precision = Literal["fp32", "fp16", "tf32", "int8"]  # tf32: fp32 data, TF32 math on GPUs (runners/math_policy.py)
PositiveInt = Annotated[int, Field(ge=1)]
# A week: longer waits and time limits are mistakes (and past what time.sleep and subprocess time-outs accept).
MAX_SECONDS = 7 * 24 * 3600.0
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS)]
PositiveSeconds = Annotated[float, Field(gt=0, le=MAX_SECONDS)]
MAX_THREADS = 4096
MAX_SEED = 2**63 - 1  # TOML's own integer range; numpy's generators take any non-negative seed


# The lists of names a sweep config gives, each with what raises one clear line for a name it does not know.
_NAME_CHECKS = {"models": get_model, "runtimes": parse_runtime}


class Mistakes(ValueError):
    """Every mistake a validator found, one full line each ("key = value: what is wrong; valid: ..."), so that a
    config is refused with all of its mistakes at once rather than the first one and a count."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


def _raise_if(lines: list[str]) -> None:
    if lines:
        raise Mistakes(lines)


def _option_value(value: object) -> str | int | float | bool:
    # One check instead of a union, so that a wrong value is one line, not one per member of the union.
    if isinstance(value, (str, bool, int)) or (isinstance(value, float) and math.isfinite(value)):
        return value
    raise ValueError("not a string, an integer, a finite number or a boolean")


OptionValue = Annotated[str | int | float | bool, PlainValidator(_option_value)]


class _Section(BaseModel):
    # strict: TOML is typed, so "64" for a batch size or true for a count is a mistake, not something to coerce.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Warmup(_Section):
    iterations: int = Field(5, ge=0)
    seconds: Seconds = 0.0


class Measure(_Section):
    min_iterations: int = Field(10, ge=1)
    min_seconds: Seconds = 0.0
    max_seconds: PositiveSeconds | None = None

    @model_validator(mode="after")
    def _window_fits(self) -> Measure:
        if self.max_seconds is not None and self.max_seconds < self.min_seconds:
            raise Mistakes([f"measure.max_seconds = {self.max_seconds:g}: below measure.min_seconds = "
                            f"{self.min_seconds:g}; valid: at least measure.min_seconds"])
        return self


class Cooldown(_Section):
    # fixed: wait `seconds`. adaptive: wait at least `seconds`, then until every GPU is back within the margins of
    # its idle temperature and power, or until `max_seconds`.
    mode: Literal["fixed", "adaptive"] = "fixed"
    seconds: Seconds = 0.0
    max_seconds: PositiveSeconds = 300.0
    temperature_margin_c: float = Field(3.0, ge=0, le=100)
    # Power counts as idle within whichever is larger: this many watts, or this fraction of the idle power.
    power_margin_w: float = Field(10.0, ge=0, le=10_000)
    power_margin_fraction: float = Field(0.1, ge=0, le=10)


class SamplerSettings(_Section):
    interval_ms: float = Field(50.0, ge=1, le=10_000)


class Baseline(_Section):
    # 0 skips the idle baseline; dynamic energy is then reported as unavailable, not as raw energy.
    seconds: Seconds = 10.0
    # Re-measure idle between runs once this many minutes have passed since the last baseline (0: never).
    recheck_minutes: float = Field(0.0, ge=0, le=MAX_SECONDS / 60)


class ReportSettings(_Section):
    # The user's own grid figures turn energy into carbon and cost; unset means not shown, never a default mix.
    grid_intensity_g_per_kwh: float | None = Field(None, gt=0, allow_inf_nan=False)
    pue: float | None = Field(None, ge=1, allow_inf_nan=False)  # facility / IT energy: at least 1
    price_per_kwh: float | None = Field(None, gt=0, allow_inf_nan=False)


class SweepConfig(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    description: str = ""
    # The user's own models, [user_models.<name>] tables (orchestrator/planning/user_models.py): validated before
    # `models`, which may then name them; each becomes a registry entry (models.user_models) with its file's facts.
    user_models: dict[str, dict] = {}
    models: list[str] = Field(min_length=1)
    batch_sizes: list[PositiveInt] = Field(min_length=1)
    runtimes: list[str] = Field(min_length=1)
    precisions: list[Precision] = ["fp32"]
    repetitions: int = Field(1, ge=1, le=1000)
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
    # Extra environment variables per runtime (allocator, thread counts): set explicitly and recorded.
    environment: dict[str, dict[str, str]] = {}
    # Options handed to a runtime's adapter, e.g. an execution provider's settings, or MXNet's fused CPU backend
    # ({backend = "MKLDNN"}); greenrt's defaults measure each framework as shipped. What each adapter accepts is
    # declared in runners/runtimes_table.py (ACCEPTED_OPTIONS) and checked here.
    provider_options: dict[str, dict[str, OptionValue]] = {}
    # Use an existing interpreter for an environment instead of building its venv (HPC modules, a lent GPU box).
    interpreters: dict[str, str] = {}
    # Pretrained weights, per framework and model, each in that framework's own format (see docs/configs.md); a model
    # without an entry gets seeded random weights. ONNX runtimes export from their source framework's weights.
    weights: dict[str, dict[str, str]] = {}

    @field_validator("user_models")
    @classmethod
    def _user_models(cls, value: dict) -> dict:
        from models.user_models import ensure_registered
        from orchestrator.planning.user_models import user_model_entries

        entries, lines = user_model_entries(value)
        _raise_if(lines)
        for entry in entries.values():
            ensure_registered(entry)
        return entries

    # Each validator lists every mistake of its key. Keys validated earlier are in info.data when they are valid, so
    # a check that needs the runtimes is made once they are known, and never hides the other keys' mistakes.
    @field_validator("models", "batch_sizes", "runtimes", "precisions")
    @classmethod
    def _known_and_unique(cls, value: list, info: ValidationInfo) -> list:
        lines = []
        check = _NAME_CHECKS.get(info.field_name)
        for name in value:
            if info.field_name == "models" and "user_models" not in info.data:
                continue  # the user models have mistakes of their own, listed already
            if check is not None:
                try:
                    check(name)
                except (UnknownModelError, UnknownRuntimeError) as exc:
                    lines.append(f"{info.field_name}: {exc}")
        lines += _duplicates(value, info.field_name)
        _raise_if(lines)
        return value

    @field_validator("opset")
    @classmethod
    def _opset_exported(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is None:
            return value
        sources = _onnx_sources(info.data.get("runtimes"))
        valid = sorted(set.intersection(*(set(EXPORTER_OPSETS.get(s, ())) for s in sources)))
        if value not in valid:
            spans = "; ".join(f"{s}: {_span(EXPORTER_OPSETS.get(s, ()))}" for s in sources)
            raise Mistakes([f"opset = {value}: not written by every ONNX exporter of this sweep ({spans}); valid: "
                            f"{_span(valid) if valid else 'no opset in common: leave opset out'}"])
        return value

    @field_validator("model_options")
    @classmethod
    def _model_options_known(cls, value: dict) -> dict:
        lines = []
        for model, options in value.items():
            try:
                get_model(model).resolve_options(options)
            except UnknownModelError as exc:
                lines.append(f"model_options.{_key(model)}: {exc}")
        _raise_if(lines)
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
        _raise_if(_protocol_mistakes(info.data.get("cooldown"), value))
        return value

    @model_validator(mode="after")
    def _protocol_with_defaults(self) -> SweepConfig:
        # The same cross-check as _protocol, for a config that leaves [baseline] out (defaults are not validated).
        _raise_if(_protocol_mistakes(self.cooldown, self.baseline))
        return self

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: dict, info: ValidationInfo) -> dict:
        lines = _runtimes_named("environment", value, info.data.get("runtimes"))
        for runtime, variables in value.items():
            for name, text in variables.items():
                where = f"environment.{_key(runtime)}.{_key(name)}"
                if not name or "=" in name or "\0" in name:
                    lines.append(f"{where}: not an environment variable's name; valid: a non-empty name without "
                                 f"'=' or NUL")
                elif "\0" in text:
                    lines.append(f"{where} = {_show(text)}: holds a NUL character, which no environment variable "
                                 f"can; valid: any other text")
        _raise_if(lines)
        return value

    @field_validator("provider_options")
    @classmethod
    def _provider_options(cls, value: dict, info: ValidationInfo) -> dict:
        runtimes = info.data.get("runtimes")
        lines = _runtimes_named("provider_options", value, runtimes)
        if runtimes is not None:
            for runtime, options in value.items():
                if runtime not in runtimes:
                    continue
                rt = parse_runtime(runtime)
                for key, option in options.items():
                    if key.startswith(SESSION_CONFIG_PREFIX) and rt.framework != "onnxruntime":
                        continue  # the session.* check below says what such a key is, and where it is valid
                    refusal = option_refusal(rt.framework, rt.model_format, rt.provider, key, option)
                    if refusal:
                        lines.append(f"provider_options.{runtime}.{_key(key)} = {_show(option)}: {refusal}")
            lines += _session_config_mistakes(runtimes, value)
        _raise_if(lines)
        return value

    @field_validator("interpreters")
    @classmethod
    def _interpreters_run(cls, value: dict) -> dict:
        lines = []
        environments = environment_names()
        for environment, python in value.items():
            where = f"interpreters.{_key(environment)}"
            if environment not in environments:
                lines.append(f"{where}: unknown environment; valid: {', '.join(environments)}")
                continue
            refusal = interpreter_refusal(python)
            if refusal:
                lines.append(f"{where} = {_show(python)}: {refusal}; valid: a Python 3 interpreter with the "
                             f"packages of images/{environment}/requirements.txt")
        _raise_if(lines)
        return value

    @field_validator("weights")
    @classmethod
    def _weights_exist(cls, value: dict) -> dict:
        lines = []
        for framework, per_model in value.items():
            if framework not in NATIVE_FRAMEWORKS:
                lines.append(f"weights.{_key(framework)}: unknown framework; valid: {', '.join(NATIVE_FRAMEWORKS)}")
                continue
            for model, path in per_model.items():
                where = f"weights.{framework}.{_key(model)}"
                if model not in MODELS:
                    lines.append(f"{where}: unknown model {model!r}; valid: {', '.join(MODELS)}")
                elif not _is_file(path):
                    lines.append(f"{where} = {_show(path)}: no such file; valid: a weights file in {framework}'s "
                                 f"own format")
        _raise_if(lines)
        return value

    def weights_for(self, framework: str, model: str) -> Weights:
        path = self.weights.get(framework, {}).get(model)
        return Weights(kind="file", path=str(Path(path).resolve())) if path else Weights(kind="random", seed=self.seed)

    def user_model(self, model: str) -> dict | None:
        """The entry of a user model (RunRequest.user_model); None for a built-in model."""
        return self.user_models.get(model)

    def options_for(self, model: str) -> dict[str, int]:
        return get_model(model).resolve_options(self.model_options.get(model))

    def digest(self) -> str:
        """Identity of the sweep: the same digest means the same planned runs and budgets."""
        payload = _without_later_defaults(self.model_dump(exclude={"description", "interpreters", "report",
                                                                  "prepare_timeout_seconds"}))
        if not payload.get("user_models"):  # added later: a config without user models keeps its digest
            payload.pop("user_models", None)
        if payload.get("gpus_per_run") == 1:  # added later, likewise: the default keeps older sweeps' digests
            payload.pop("gpus_per_run", None)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


# Keys added after sweeps had been recorded: left out of the digest while at their defaults, so that a results
# directory written before them still resumes with the config that wrote it.
_ADDED_LATER = {
    "cooldown": ("mode", "max_seconds", "temperature_margin_c", "power_margin_w", "power_margin_fraction"),
    "baseline": ("recheck_minutes",),
}


def _without_later_defaults(payload: dict) -> dict:
    sections = {"cooldown": Cooldown, "baseline": Baseline}
    for section, keys in _ADDED_LATER.items():
        fields = sections[section].model_fields
        payload[section] = {k: v for k, v in payload[section].items() if k not in keys or v != fields[k].default}
    return payload


def _onnx_sources(runtimes: list[str] | None) -> list[str]:
    """The source frameworks this sweep exports ONNX models from (every exporter's, while runtimes are unknown)."""
    used = {r.source_framework for r in map(parse_runtime, runtimes or [])
            if r.source_framework is not None and r.model_format.startswith(ONNX_FROM)}
    return sorted(used or EXPORTER_OPSETS)


def _protocol_mistakes(cooldown: Cooldown | None, baseline: Baseline) -> list[str]:
    lines = []
    if cooldown is not None and cooldown.mode == "adaptive":
        if baseline.seconds <= 0:
            lines.append("cooldown.mode = 'adaptive' waits for the idle baseline: it needs baseline.seconds > 0")
        if cooldown.max_seconds < cooldown.seconds:
            lines.append(f"cooldown.max_seconds ({cooldown.max_seconds:g}) is below the minimum "
                         f"cooldown.seconds ({cooldown.seconds:g})")
    if baseline.recheck_minutes > 0 and baseline.seconds <= 0:
        lines.append("baseline.recheck_minutes re-measures the idle baseline: it needs baseline.seconds > 0")
    return lines


def _runtimes_named(section: str, value: dict, runtimes: list[str] | None) -> list[str]:
    if runtimes is None:  # the runtimes have mistakes of their own, listed already
        return []
    return [f"{section}: runtime {runtime!r} is not in runtimes ({', '.join(runtimes)})"
            for runtime in value if runtime not in runtimes]


def _session_config_mistakes(runtimes: list[str], provider_options: dict) -> list[str]:
    """`session.*` provider options are ONNX Runtime session config entries: onnxruntime runtimes only."""
    lines = []
    onnx = [r for r in runtimes if parse_runtime(r).framework == "onnxruntime"]
    for runtime, options in provider_options.items():
        if runtime not in runtimes:
            continue
        for key, value in options.items():
            if not key.startswith(SESSION_CONFIG_PREFIX):
                continue
            where = f"provider_options.{runtime}.{_key(key)}"
            if parse_runtime(runtime).framework != "onnxruntime":
                lines.append(f"{where}: session.* keys are ONNX Runtime session config entries; valid only for "
                             f"onnxruntime runtimes ({', '.join(onnx) or 'none in runtimes'})")
            elif key == DISABLE_CPU_FALLBACK:
                if parse_runtime(runtime).provider == "cpu":
                    gpu = [r for r in onnx if parse_runtime(r).provider != "cpu"]
                    lines.append(f"{where}: refuses nodes on the CPU provider, which is all a cpu runtime runs on; "
                                 f"valid for cuda/tensorrt runtimes ({', '.join(gpu) or 'none in runtimes'})")
                elif str(int(value) if isinstance(value, bool) else value) not in ("0", "1"):
                    lines.append(f"{where}: {_show(value)} is not one of \"1\" (refuse CPU fallback), \"0\"")
    return lines


def _duplicates(values: list, field: str) -> list[str]:
    seen, lines = set(), []
    for value in values:
        if value in seen:
            lines.append(f"{field}: {_show(value)} is listed twice")
        seen.add(value)
    return lines


def _span(values) -> str:
    values = sorted(values)
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}-{values[-1]}"
    return ", ".join(map(str, values)) or "none"


def _is_file(path: str) -> bool:
    try:
        return Path(path).is_file()
    except (OSError, ValueError):  # a NUL character, a name too long for the filesystem
        return False


@functools.lru_cache(maxsize=64)
def interpreter_refusal(value: str) -> str | None:
    """Why `value` cannot run greenrt's runner (not found, not executable, does not start); None when it runs."""
    if not value or "\0" in value:
        return "not a path or a command name"
    try:
        found = shutil.which(value)
    except (OSError, ValueError):
        found = None
    if not found:
        return "not found or not executable"
    try:
        done = subprocess.run([found, "-c", "import sys; print(sys.version_info[0])"], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"does not run ({type(exc).__name__}: {exc})"
    if done.returncode != 0 or done.stdout.strip() != "3":
        said = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return f"does not run as a Python 3 interpreter (exit {done.returncode}: {said})"
    return None


_PLAIN_KEY = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./+")


def _key(part: object) -> str:
    """A key as a line names it: as written when plain, quoted (escapes shown) otherwise."""
    text = str(part)
    return text if text and set(text) <= _PLAIN_KEY else repr(text)


def _show(value: object, limit: int = 60) -> str:
    """A value as a line shows it: its repr, shortened, so that a long or odd value never breaks the line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _one_line(text: str) -> str:
    # Whatever a message carries (a key with a newline, a path with a control character), it stays on one line.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _describe(error: dict, model_fields: dict) -> list[str]:
    original = (error.get("ctx") or {}).get("error")
    if isinstance(original, Mistakes):
        return list(original.lines)
    location = ".".join(_key(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        valid = _fields_at(error["loc"][:-1], model_fields)
        return [f"{location}: unknown key; valid keys here: {', '.join(valid)}"]
    if error["type"] == "missing":
        return [f"{location}: required key missing; valid: {_REQUIRED.get(str(error['loc'][-1]), 'a value')}"]
    message = error["msg"].removeprefix("Value error, ")
    shown = f", not {_show(error['input'])}" if "input" in error else ""
    return [f"{location}: {message}{shown}" if location else message + shown]


# What each required key takes, for the line that says it is missing.
_REQUIRED = {
    "name": "letters, digits, '_', '.', '-' (up to 64, starting with a letter or digit), e.g. name = \"quick\"",
    "models": f"a list of {', '.join(MODELS)}",
    "batch_sizes": "a list of positive integers, e.g. [1, 64]",
    "runtimes": "a list of runtimes, e.g. [\"torch/native/cpu\"] (`greenrt doctor` lists them)",
}


def _fields_at(loc: tuple, model_fields: dict) -> list[str]:
    fields = model_fields
    for part in loc:
        info = fields.get(part) if isinstance(part, str) else None
        annotation = getattr(info, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = annotation.model_fields
        else:
            return sorted(fields)
    return sorted(fields)


def parse_config(data: dict, source: str = "config") -> SweepConfig:
    """The validated config, or a UserError with one line per mistake ("<source>: <key> = <value>: ...")."""
    try:
        return SweepConfig.model_validate(data)
    except ValidationError as exc:
        lines = [line for error in exc.errors() for line in _describe(error, SweepConfig.model_fields)]
        raise UserError("\n".join(_one_line(f"{source}: {line}") for line in dict.fromkeys(lines))) from None


def load_config(path: str | Path) -> SweepConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a TOML config file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(_one_line(f"{path}: not valid TOML ({exc})")) from None
    return parse_config(data, source=str(path))


__all__ = ["SweepConfig", "load_config", "parse_config", "interpreter_refusal", "MODELS"]
