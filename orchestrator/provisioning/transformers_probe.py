"""What the transformers of the environment that builds a user's `hf` model knows: its model types, the base model
class (AutoModel's, which models/user_torch.py builds) of each, and for the types a config names that class's forward
inputs and output fields.

Asked of that environment's interpreter in a subprocess (the host's venv need not have transformers), the way
interpreters.py asks an interpreter for its framework. Listing the types imports transformers and torch, and a type's
class imports its modeling module: seconds each, so the answer is cached under the cache folder per interpreter and
transformers version (which a cheap metadata probe reads) and paid once, not on every command.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from orchestrator import paths
from orchestrator.provisioning.environments import EnvironmentManager

HF_ENVIRONMENT = "torch"  # where a transformers architecture is built, run and exported (planning.user_models)

_MARK = "GREENRT-PROBE "
_VERSION = ("import importlib.metadata as m\ntry:\n    print(m.version('transformers'))\n"
            "except m.PackageNotFoundError:\n    print('')")
# The probe: standard library and transformers only; offline, no model built, no weights read.
_PROBE = r'''
import dataclasses, inspect, json, os, sys, typing
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
import importlib.metadata as md
from transformers.models.auto import configuration_auto as ca, modeling_auto as ma
names = ma.MODEL_MAPPING_NAMES
first = lambda v: v if isinstance(v, str) or v is None else list(v)[0]
said = {"version": md.version("transformers"),
        "model_types": {t: first(names.get(t)) for t in ca.CONFIG_MAPPING_NAMES}, "details": {}}
for t in sys.argv[1:]:
    if names.get(t) is None:
        continue
    try:
        cls = ma.MODEL_MAPPING[ca.CONFIG_MAPPING[t]]
        cls = cls[0] if isinstance(cls, (tuple, list)) else cls
    except Exception as exc:
        said["details"][t] = {"problem": f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"}
        continue
    params = inspect.signature(cls.forward).parameters
    inputs = [n for n, p in params.items() if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    try:
        returned = typing.get_type_hints(cls.forward).get("return")
    except Exception:
        returned = inspect.signature(cls.forward).return_annotation
    outputs = next(([f.name for f in dataclasses.fields(c)] for c in (typing.get_args(returned) or (returned,))
                    if isinstance(c, type) and dataclasses.is_dataclass(c)), None)
    said["details"][t] = {"model_class": cls.__name__, "inputs": inputs, "outputs": outputs}
print("GREENRT-PROBE " + json.dumps(said))
'''


@dataclass(frozen=True)
class HfClass:
    """The base model class transformers builds for one model type, or why it cannot be imported there."""

    model_class: str | None = None
    inputs: tuple[str, ...] = ()  # forward's named parameters
    outputs: tuple[str, ...] | None = None  # the fields of the ModelOutput it returns; None: not declared
    problem: str | None = None  # the import's own words


@dataclass(frozen=True)
class TransformersFacts:
    version: str
    model_types: dict[str, str | None]  # every model type AutoConfig knows -> its AutoModel class (None: none)
    classes: dict[str, HfClass]  # the types asked about that have a class


class ProbeError(RuntimeError):
    """The interpreter could not answer (no transformers, does not start, the probe failed): one line."""


def _run(python: str, code: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        return subprocess.run([python, "-c", code, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, env=env)
    except (OSError, ValueError, subprocess.SubprocessError) as exc:  # ValueError: a NUL in an argument
        raise ProbeError(f"{python} does not run ({type(exc).__name__}: {exc})") from None


@functools.lru_cache(maxsize=16)
def transformers_version(python: str) -> str:
    """The transformers version `python` imports (metadata only: milliseconds); ProbeError without one."""
    done = _run(python, _VERSION, timeout=60)
    version = done.stdout.strip().splitlines()[-1:] if done.returncode == 0 else None
    if version is None:
        raise ProbeError(f"{python} does not run ({(done.stderr.strip().splitlines() or ['no output'])[-1][:200]})")
    if not version or not version[0]:
        raise ProbeError(f"{python} has no transformers module")
    return version[0]


def _cache_file(python: str, version: str) -> Path:
    key = hashlib.sha256(f"{os.path.realpath(python)}\0{version}".encode()).hexdigest()[:16]
    return paths.cache_dir() / "probes" / f"transformers-{key}.json"


def _read(path: Path) -> dict:
    try:
        return _shaped(path.read_text())
    except OSError:  # absent or unreadable: asked again
        return {}


def _keep(path: Path, said: dict) -> None:
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(said))
        os.replace(partial, path)  # whole or not at all: two commands at once each write a complete file
    except OSError:  # a read-only cache: asked again next time, never a reason to stop
        partial.unlink(missing_ok=True)


def _shaped(text: str) -> dict:
    """The probe's answer, or {} where the text is not one (a damaged cache file is asked again)."""
    try:
        said = json.loads(text)
    except ValueError:
        return {}
    shape = {"version": str, "model_types": dict, "details": dict}
    return said if isinstance(said, dict) and all(isinstance(said.get(k), t) for k, t in shape.items()) else {}


def transformers_facts(python: str, model_types: tuple[str, ...], timeout: float = 300) -> TransformersFacts:
    """What `python`'s transformers says of every model type and of these ones' classes; cached per interpreter and
    version. ProbeError (one line) where it cannot answer."""
    version = transformers_version(python)
    cache = _cache_file(python, version)
    said = _read(cache)
    known = said.get("model_types", {})
    # Only names a model type can have go on the probe's command line (any other is unknown to every version).
    wanted = [t for t in model_types if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", t)
              and t not in said.get("details", {}) and (not said or known.get(t))]
    if not said or wanted:
        done = _run(python, _PROBE, *wanted, timeout=timeout)
        line = next((s for s in reversed(done.stdout.splitlines()) if s.startswith(_MARK)), None)
        if done.returncode != 0 or line is None:
            error = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
            raise ProbeError(f"transformers {version} in {python} could not be asked (exit {done.returncode}: "
                             f"{error})")
        fresh = _shaped(line[len(_MARK):])
        if not fresh:
            raise ProbeError(f"transformers {version} in {python} answered what greenrt cannot read")
        said = {**fresh, "details": {**said.get("details", {}), **fresh["details"]}}
        _keep(cache, said)
    classes = {t: HfClass(d.get("model_class"), tuple(d.get("inputs") or ()),
                          tuple(d["outputs"]) if d.get("outputs") is not None else None, d.get("problem"))
               for t, d in said["details"].items() if isinstance(d, dict)}
    return TransformersFacts(said["version"], said["model_types"], classes)


def hf_interpreter(interpreters: Mapping[str, str], python: str | None = None) -> tuple[str | None, str]:
    """(the interpreter that will build hf models, what it is): the config's interpreters.torch, else `python`
    (--python), else the torch venv once built; (None, why) while there is none. The Docker image installs the
    venv's pinned versions."""
    state = EnvironmentManager(dict(interpreters), python).state(HF_ENVIRONMENT)
    if state.state == "interpreter":
        return str(state.python), (f"interpreters.{HF_ENVIRONMENT}" if HF_ENVIRONMENT in interpreters
                                   else "--python")
    if state.state == "ready":
        return str(state.python), f"the {HF_ENVIRONMENT} environment"
    why = "is not built yet" if state.state == "absent" else "is built again (its requirements changed)"
    return None, f"the {HF_ENVIRONMENT} environment {why}: greenrt builds it on first use, once the sweep has begun"
