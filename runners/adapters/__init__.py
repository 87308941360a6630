"""Lazy registry of framework adapters, keyed by (framework, model format), read from runners.runtimes_table.

Importing this module imports no framework: a table entry names the adapter's module and class, which are imported
only when a request for that runtime is executed.  The adapter contract is runners.adapters.contract.
"""
from __future__ import annotations

import importlib

from runners.adapters.contract import Adapter
from runners.failures import UnsupportedError
from runners.runtimes_table import FAMILIES, Family, find


def supported_runtimes() -> list[str]:
    """Runtime patterns this runner knows, e.g. 'torch/native/{cpu,cuda}'."""
    return [family.pattern for family in FAMILIES]


def resolve(runtime: str) -> Family:
    """The table's entry for `runtime` (framework/format/provider); "unsupported" for a runtime it does not have."""
    parts = runtime.split("/")
    if len(parts) != 3:
        raise UnsupportedError(f"runtime {runtime!r} is not framework/format/provider; known: {', '.join(supported_runtimes())}")
    framework, model_format, provider = parts
    family = find(framework, model_format)
    if family is None:
        raise UnsupportedError(f"no adapter for runtime {runtime!r}; known: {', '.join(supported_runtimes())}")
    reason = family.provider_refusal(provider)
    if reason:
        raise UnsupportedError(reason)
    return family


def adapter_class(runtime: str) -> type[Adapter]:
    family = resolve(runtime)
    return getattr(importlib.import_module(family.module), family.cls)


def create_adapter(request) -> Adapter:
    """A new adapter for request.runtime (imports the adapter module, which still imports no framework)."""
    return adapter_class(request.runtime)()
