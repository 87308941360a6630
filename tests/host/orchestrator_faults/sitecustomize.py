"""Test-only faults inside greenrt itself (the orchestrator, not a runner); never on a normal path.

tests/host/nvidia/test_nvidia_host_e2e.py puts this folder on a greenrt subprocess's PYTHONPATH with
GREENRT_TEST_ORCH_FAULT naming the fault:
  accounting   orchestrator.measurement.accounting.account_energy raises RuntimeError (greenrt failing after a runner returned)

The patch is applied when orchestrator.measurement.accounting is first imported (an import hook), so that
`from orchestrator.measurement.accounting import account_energy` elsewhere binds the faulty function, and so that other Python
processes started with this PYTHONPATH (pip, runners in other interpreters) import nothing of greenrt's.
"""
import importlib.abc
import os
import sys

_FAULT = os.environ.get("GREENRT_TEST_ORCH_FAULT")
_TARGET = "orchestrator.measurement.accounting"


def _failing_account_energy(*args, **kwargs):
    raise RuntimeError("fault-injection: account_energy fails on purpose (GREENRT_TEST_ORCH_FAULT=accounting)")


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != _TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            spec = finder.find_spec(fullname, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                break
        else:
            return None
        exec_module = spec.loader.exec_module

        def patched(module):
            exec_module(module)
            module.account_energy = _failing_account_energy

        spec.loader.exec_module = patched
        return spec


if _FAULT == "accounting":
    sys.meta_path.insert(0, _PatchOnImport())
elif _FAULT:
    raise SystemExit(f"orchestrator_faults: unknown GREENRT_TEST_ORCH_FAULT {_FAULT!r}")
