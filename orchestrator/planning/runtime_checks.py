"""What a sweep config sets per runtime, checked against the runtimes table (runners/runtimes_table.py): the provider
options each adapter accepts (ONNX Runtime's session.* entries among them), environment variables, and the ONNX opset
every exporter of the sweep writes. Pure: each function returns every mistake, one full line each.
"""
from __future__ import annotations

from orchestrator.planning.config_errors import shown_key, shown_value
from orchestrator.planning.runtimes import parse_runtime
from runners.runtimes_table import (EXPORTER_OPSETS, ONNX_FROM, SESSION_CONFIG_PREFIX, option_refusal,
                                    session_entry_refusal, session_entry_value_refusal)


def runtimes_named(section: str, value: dict, runtimes: list[str] | None) -> list[str]:
    if runtimes is None:  # the runtimes have mistakes of their own, listed already
        return []
    return [f"{section}: runtime {runtime!r} is not in runtimes ({', '.join(runtimes)})"
            for runtime in value if runtime not in runtimes]


def environment_mistakes(value: dict[str, dict[str, str]], runtimes: list[str] | None) -> list[str]:
    lines = runtimes_named("environment", value, runtimes)
    for runtime, variables in value.items():
        for name, text in variables.items():
            where = f"environment.{shown_key(runtime)}.{shown_key(name)}"
            if not name or "=" in name or "\0" in name:
                lines.append(f"{where}: not an environment variable's name; valid: a non-empty name without "
                             f"'=' or NUL")
            elif "\0" in text:
                lines.append(f"{where} = {shown_value(text)}: holds a NUL character, which no environment variable "
                             f"can; valid: any other text")
    return lines


def provider_option_mistakes(value: dict[str, dict], runtimes: list[str] | None) -> list[str]:
    lines = runtimes_named("provider_options", value, runtimes)
    if runtimes is None:
        return lines
    for runtime, options in value.items():
        if runtime not in runtimes:
            continue
        rt = parse_runtime(runtime)
        for key, option in options.items():
            if key.startswith(SESSION_CONFIG_PREFIX) and rt.framework != "onnxruntime":
                continue  # the session.* check below says what such a key is, and where it is valid
            refusal = option_refusal(rt.framework, rt.model_format, rt.provider, key, option)
            if refusal:
                lines.append(f"provider_options.{runtime}.{shown_key(key)} = {shown_value(option)}: {refusal}")
    return lines + _session_config_mistakes(runtimes, value)


def _session_config_mistakes(runtimes: list[str], provider_options: dict) -> list[str]:
    """`session.*` provider options are ONNX Runtime session config entries: onnxruntime runtimes only."""
    sweep = {r: (parse_runtime(r).framework, parse_runtime(r).provider) for r in runtimes}
    lines = []
    for runtime, options in provider_options.items():
        if runtime not in runtimes:
            continue
        framework, provider = sweep[runtime]
        for key, value in options.items():
            where = f"provider_options.{runtime}.{shown_key(key)}"
            refused = session_entry_refusal(key, framework, provider, sweep)
            wrong = None if refused else session_entry_value_refusal(key, value)
            if refused:
                lines.append(f"{where}: {refused}")
            elif wrong:
                lines.append(f"{where}: {shown_value(value)} {wrong}")
    return lines


def opset_mistakes(opset: int, runtimes: list[str] | None) -> list[str]:
    """Whether every ONNX exporter of the sweep writes `opset` (every exporter's, while the runtimes are unknown)."""
    used = {r.source_framework for r in map(parse_runtime, runtimes or [])
            if r.source_framework is not None and r.model_format.startswith(ONNX_FROM)}
    sources = sorted(used or EXPORTER_OPSETS)
    valid = sorted(set.intersection(*(set(EXPORTER_OPSETS.get(s, ())) for s in sources)))
    if opset in valid:
        return []
    spans = "; ".join(f"{s}: {_span(EXPORTER_OPSETS.get(s, ()))}" for s in sources)
    return [f"opset = {opset}: not written by every ONNX exporter of this sweep ({spans}); valid: "
            f"{_span(valid) if valid else 'no opset in common: leave opset out'}"]


def _span(values) -> str:
    values = sorted(values)
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}-{values[-1]}"
    return ", ".join(map(str, values)) or "none"
