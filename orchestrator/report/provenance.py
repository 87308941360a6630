"""What a reader needs to reproduce the numbers: host, drivers, sensors, library versions, images, config, revision."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import polars as pl

from orchestrator.results.record import RunRecord
from runners.math_policy import POLICY, POLICY_TEXT, TF32
from runners.runtimes_table import GPU_PROVIDERS


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _when(stamp: Any) -> str:
    if not isinstance(stamp, (int, float)):
        return "an unrecorded time"
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def sweep_facts(host: dict[str, Any], plan: dict[str, Any], baseline: dict[str, Any] | None,
                records: list[RunRecord] = ()) -> pl.DataFrame:
    memory = host.get("memory_bytes")
    engine = host.get("container_engine") or {}
    facts = [
        ("config", f"{plan.get('config_name')} (digest {plan.get('config_digest')}, seed {plan.get('seed')})"),
        ("runs planned / cells skipped", f"{len(plan.get('runs', []))} / {len(plan.get('skipped', []))}"),
        *(("repetitions added", f"{e.get('from')} -> {e.get('to')} at {_when(e.get('at'))}: the added repetitions "
           "were measured after the earlier ones") for e in plan.get("extended") or ()),
        ("greenrt revision", host.get("greenrt_revision") or "unknown (not a git checkout)"),
        ("host", host.get("hostname")),
        ("cpu", f"{host.get('cpu_model')}, {host.get('logical_cpus')} logical CPUs, {host.get('machine')}"),
        ("memory", f"{memory / 2**30:.1f} GiB" if memory else None),
        ("os", host.get("os")),
        ("python (orchestrator)", host.get("python")),
        ("container engine", engine.get("version") or engine.get("reason")),
    ]
    for sensor in host.get("sensors", []):
        state = "readable" if sensor.get("available") else "not readable"
        detail = f"{state}: {sensor.get('reason')}"
        if sensor.get("details"):
            detail += f" {_compact(sensor['details'])}"  # NVML's driver version lives here
        facts.append((f"sensor {sensor.get('name')}", detail))
    facts.append(("GPU math policy", math_policy_line(records, plan)))
    facts += baseline_facts(baseline)
    facts += config_facts(plan)
    return pl.DataFrame({"what": [k for k, _ in facts], "value": [None if v is None else str(v) for _, v in facts]},
                        schema={"what": pl.String, "value": pl.String})


# Provider options a config may give that depart from the math policy (runners/adapters/ort_options.py).
POLICY_OPTIONS = ("use_tf32", "cudnn_conv_algo_search")


def math_policy_line(records: list[RunRecord], plan: dict[str, Any]) -> str:
    """Which math policy (runners/math_policy.py) the sweep's GPU runtimes reported, once: TF32 and autotuning
    decide what "fp32" means on a GPU.  `records` are the report's shown records (one or two per runtime), so the
    policy is told per runtime; the config's provider options that override it are named from the plan."""
    gpu = [r for r in records if r.provider in GPU_PROVIDERS and r.result]
    reported: dict[str, set[str]] = {}
    silent: set[str] = set()
    kept: set[str] = set()  # "runtime VARIABLE=value": the environment a run kept against the policy
    for record in gpu:
        math = ((record.result or {}).get("runtime_facts") or {}).get("math")
        if math:
            reported.setdefault(math.get("policy") or "unnamed", set()).add(record.runtime)
            kept |= {f"{record.runtime} {k}={v}" for k, v in (math.get("overridden_by_environment") or {}).items()}
        else:
            silent.add(record.runtime)
    silent -= {r for runtimes in reported.values() for r in runtimes}
    if not reported and not silent:
        return "no GPU run (TF32 and autotuning concern GPU runs only)"
    parts = [f"{name}{' (' + POLICY_TEXT + ')' if name == POLICY else ''}, reported by {len(runtimes)} GPU "
             f"runtime(s)" for name, runtimes in sorted(reported.items())]
    config = plan.get("config") or {}
    if TF32 in (config.get("precisions") or ()):
        parts.append("cells at precision tf32 allow TF32")
    overrides = [f"{runtime} {key}={options[key]}" for runtime, options in sorted((config.get("provider_options")
                 or {}).items()) if isinstance(options, dict) for key in POLICY_OPTIONS if key in options]
    if overrides:
        parts.append("overridden by the config's provider options: " + ", ".join(overrides))
    if kept:
        parts.append("overridden by the runner's environment: " + ", ".join(sorted(kept)))
    if silent:
        parts.append(f"not recorded by {', '.join(sorted(silent))} (an older greenrt: the runtime's own defaults)")
    return "; ".join(parts)


def _idle_line(entry: dict[str, Any]) -> str:
    idle = entry.get("idle_w") or {}
    temperature = entry.get("idle_temperature_c") or {}
    return ", ".join(f"{k} {v:.2f} W" + (f" {temperature[k]:.0f} °C" if k in temperature else "")
                     for k, v in idle.items()) or f"{entry.get('status')}: {entry.get('reason')}"


def baseline_facts(baseline: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The latest idle baseline, and the spread of every one measured when there were several (rechecks, resumes)."""
    latest = (baseline or {}).get("latest")
    if not latest:
        return []
    facts = [("idle baseline", _idle_line(latest))]
    history = [b for b in (baseline or {}).get("history", []) if b.get("status") == "ok"]
    if len(history) > 1:
        channels = sorted({c for b in history for c in b.get("idle_w") or {}})
        spread = []
        for channel in channels:
            values = [b["idle_w"][channel] for b in history if channel in (b.get("idle_w") or {})]
            spread.append(f"{channel} {min(values):.2f}-{max(values):.2f} W")
        facts.append((f"idle baselines ({len(history)} measured)",
                      f"{history[0].get('measured_at')} to {history[-1].get('measured_at')}: " + ", ".join(spread)))
    return facts


def config_facts(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """The resolved config, one row per top-level key, as the sweep ran it (defaults filled in)."""
    config = plan.get("config")
    if not config:
        return [("config (resolved)", "not recorded (plan.json written by an older greenrt)")]
    return [(f"config {key}", _compact(value)) for key, value in config.items()]


def runtime_versions(records: list[RunRecord]) -> pl.DataFrame:
    """Per runtime: the launcher, the image (when a container ran it), devices and library versions it reported."""
    seen: dict[str, dict[str, str]] = {}
    for record in records:
        result = record.result or {}
        runtime = record.runtime
        if runtime in seen or not result.get("versions"):
            continue
        artifact = record.artifact
        image = record.launch.image  # set by the Docker launcher
        seen[runtime] = {
            "runtime": runtime,
            "launcher": record.launcher or "",
            "image": _compact(image) if image else "none (local environment)",
            "environment": record.environment or "",
            "devices": "; ".join(result.get("devices") or []),
            "versions": ", ".join(f"{k} {v}" for k, v in sorted(result["versions"].items())
                                  if not k.endswith("_build")),
            "exporter": (artifact.exporter if artifact else None) or "",
            "opset": str((artifact.opset if artifact else None) or ""),
            "env_vars": _compact(record.env_vars) if record.env_vars else "",
        }
    columns = ["runtime", "launcher", "image", "environment", "devices", "versions", "exporter", "opset", "env_vars"]
    return pl.DataFrame([seen[k] for k in sorted(seen)], schema={c: pl.String for c in columns})


def user_model_facts(plan: dict[str, Any]) -> pl.DataFrame:
    """One row per user model of the sweep: its file (size, sha256), the library that loaded it, and its input spec
    as the runs saw it (the batch axis first); empty for a sweep of built-in models only."""
    entries = ((plan.get("config") or {}).get("user_models") or {}).values()
    rows = [{"model": e.get("name"), "format": e.get("format"), "file": e.get("path") or "-",
             "size_bytes": e.get("size"), "sha256": e.get("sha256") or "-", "loader": e.get("loader"),
             "inputs": "; ".join(f"{i['name']} {i['dtype']} [batch, {', '.join(map(str, i['shape']))}]".replace(", ]", "]")
                                 + (f" in [{i['range'][0]}, {i['range'][1]})" if i.get("range") else "")
                                 for i in e.get("inputs") or []),
             "outputs": ", ".join(e.get("outputs") or [])} for e in entries if isinstance(e, dict)]
    schema = {"model": pl.String, "format": pl.String, "file": pl.String, "size_bytes": pl.Int64, "sha256": pl.String,
              "loader": pl.String, "inputs": pl.String, "outputs": pl.String}
    return pl.DataFrame(rows, schema=schema)
