"""Sweep configuration: a TOML file validated with pydantic into one clear line per mistake."""
from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from models.registry import MODELS, UnknownModelError, get_model
from orchestrator.errors import UserError
from orchestrator.planning.runtimes import NATIVE_FRAMEWORKS, UnknownRuntimeError, parse_runtime
from runners.adapters.onnxruntime_session import DISABLE_CPU_FALLBACK, SESSION_CONFIG_PREFIX
from runners.protocol import Weights

Precision = Literal["fp32", "fp16"]
PositiveInt = Annotated[int, Field(ge=1)]


# The lists of names a sweep config gives, each with what raises one clear line for a name it does not know.
_NAME_CHECKS = {"models": get_model, "runtimes": parse_runtime}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Warmup(_Section):
    iterations: int = Field(5, ge=0)
    seconds: float = Field(0.0, ge=0)


class Measure(_Section):
    min_iterations: int = Field(10, ge=1)
    min_seconds: float = Field(0.0, ge=0)
    max_seconds: float | None = Field(None, gt=0)


class Cooldown(_Section):
    # fixed: wait `seconds`. adaptive: wait at least `seconds`, then until every GPU is back within the margins of
    # its idle temperature and power, or until `max_seconds`.
    mode: Literal["fixed", "adaptive"] = "fixed"
    seconds: float = Field(0.0, ge=0)
    max_seconds: float = Field(300.0, gt=0)
    temperature_margin_c: float = Field(3.0, ge=0)
    # Power counts as idle within whichever is larger: this many watts, or this fraction of the idle power.
    power_margin_w: float = Field(10.0, ge=0)
    power_margin_fraction: float = Field(0.1, ge=0)


class SamplerSettings(_Section):
    interval_ms: float = Field(50.0, ge=1, le=10_000)


class Baseline(_Section):
    # 0 skips the idle baseline; dynamic energy is then reported as unavailable, not as raw energy.
    seconds: float = Field(10.0, ge=0)
    # Re-measure idle between runs once this many minutes have passed since the last baseline (0: never).
    recheck_minutes: float = Field(0.0, ge=0)


class SweepConfig(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    description: str = ""
    models: list[str] = Field(min_length=1)
    batch_sizes: list[PositiveInt] = Field(min_length=1)
    runtimes: list[str] = Field(min_length=1)
    precisions: list[Precision] = ["fp32"]
    repetitions: int = Field(1, ge=1, le=1000)
    seed: int = 0
    threads: int | None = Field(None, ge=1)
    opset: int | None = Field(None, ge=7)
    timeout_seconds: float = Field(1800.0, gt=0)
    model_options: dict[str, dict[str, int]] = {}
    warmup: Warmup = Warmup()
    measure: Measure = Measure()
    cooldown: Cooldown = Cooldown()
    sampler: SamplerSettings = SamplerSettings()
    baseline: Baseline = Baseline()
    # Extra environment variables per runtime (allocator, thread counts): set explicitly and recorded.
    environment: dict[str, dict[str, str]] = {}
    # Options handed to a runtime's adapter, e.g. an execution provider's settings, or MXNet's fused CPU backend
    # ({backend = "MKLDNN"}); greenrt's defaults measure each framework as shipped.
    provider_options: dict[str, dict[str, str | int | float | bool]] = {}
    # Use an existing interpreter for an environment instead of building its venv (HPC modules, a lent GPU box).
    interpreters: dict[str, str] = {}
    # Pretrained weights, per framework and model, each in that framework's own format (see the README); a model
    # without an entry gets seeded random weights. ONNX runtimes export from their source framework's weights.
    weights: dict[str, dict[str, str]] = {}

    @field_validator("models", "batch_sizes", "runtimes", "precisions")
    @classmethod
    def _known_and_unique(cls, value: list, info) -> list:
        check = _NAME_CHECKS.get(info.field_name)
        if check is not None:
            for name in value:
                check(name)
        return _unique(value, info.field_name)

    @model_validator(mode="after")
    def _cross_checks(self) -> SweepConfig:
        for model, options in self.model_options.items():
            get_model(model).resolve_options(options)
        for framework, per_model in self.weights.items():
            if framework not in NATIVE_FRAMEWORKS:
                raise ValueError(f"weights: unknown framework {framework!r}; valid: {', '.join(NATIVE_FRAMEWORKS)}")
            for model, path in per_model.items():
                get_model(model)
                if not Path(path).is_file():
                    raise ValueError(f"weights.{framework}.{model}: no such file {path}")
        _check_protocol(self)
        for section in ("environment", "provider_options"):
            for runtime in getattr(self, section):
                if runtime not in self.runtimes:
                    raise ValueError(f"{section}: runtime {runtime!r} is not in runtimes ({', '.join(self.runtimes)})")
        _check_session_config(self)
        return self

    def weights_for(self, framework: str, model: str) -> Weights:
        path = self.weights.get(framework, {}).get(model)
        return Weights(kind="file", path=str(Path(path).resolve())) if path else Weights(kind="random", seed=self.seed)

    def options_for(self, model: str) -> dict[str, int]:
        return get_model(model).resolve_options(self.model_options.get(model))

    def digest(self) -> str:
        """Identity of the sweep: the same digest means the same planned runs and budgets."""
        payload = _without_later_defaults(self.model_dump(exclude={"description", "interpreters"}))
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


def _check_protocol(config: SweepConfig) -> None:
    cooldown, baseline = config.cooldown, config.baseline
    if cooldown.mode == "adaptive":
        if baseline.seconds <= 0:
            raise ValueError("cooldown.mode = 'adaptive' waits for the idle baseline: it needs baseline.seconds > 0")
        if cooldown.max_seconds < cooldown.seconds:
            raise ValueError(f"cooldown.max_seconds ({cooldown.max_seconds:g}) is below the minimum "
                             f"cooldown.seconds ({cooldown.seconds:g})")
    if baseline.recheck_minutes > 0 and baseline.seconds <= 0:
        raise ValueError("baseline.recheck_minutes re-measures the idle baseline: it needs baseline.seconds > 0")


def _check_session_config(config: SweepConfig) -> None:
    """`session.*` provider options are ONNX Runtime session config entries: onnxruntime runtimes only."""
    onnx = [r for r in config.runtimes if parse_runtime(r).framework == "onnxruntime"]
    for runtime, options in config.provider_options.items():
        for key, value in options.items():
            if not key.startswith(SESSION_CONFIG_PREFIX):
                continue
            where = f"provider_options.{runtime}.{key}"
            if parse_runtime(runtime).framework != "onnxruntime":
                raise ValueError(f"{where}: session.* keys are ONNX Runtime session config entries; valid only for "
                                 f"onnxruntime runtimes ({', '.join(onnx) or 'none in runtimes'})")
            if key == DISABLE_CPU_FALLBACK:
                if parse_runtime(runtime).provider == "cpu":
                    gpu = [r for r in onnx if parse_runtime(r).provider != "cpu"]
                    raise ValueError(f"{where}: refuses nodes on the CPU provider, which is all a cpu runtime runs on; "
                                     f"valid for cuda/tensorrt runtimes ({', '.join(gpu) or 'none in runtimes'})")
                if str(int(value) if isinstance(value, bool) else value) not in ("0", "1"):
                    raise ValueError(f"{where}: {value!r} is not one of \"1\" (refuse CPU fallback), \"0\"")


def _unique(values: list, field: str) -> list:
    seen = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{field}: {value!r} is listed twice")
        seen.add(value)
    return values


def _describe(error: dict, model_fields: dict) -> str:
    location = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        parent = error["loc"][:-1]
        valid = _fields_at(parent, model_fields)
        return f"{location}: unknown key; valid keys here: {', '.join(valid)}"
    message = error["msg"].removeprefix("Value error, ")
    return f"{location}: {message}" if location else message


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
    try:
        return SweepConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise UserError(f"{source}: {_describe(first, SweepConfig.model_fields)}{more}") from None
    except (UnknownModelError, UnknownRuntimeError) as exc:
        raise UserError(f"{source}: {exc}") from None


def load_config(path: str | Path) -> SweepConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a TOML config file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    return parse_config(data, source=str(path))


__all__ = ["SweepConfig", "load_config", "parse_config", "MODELS"]
