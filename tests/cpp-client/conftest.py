"""Tests that run INSIDE the torch environment: `$(greenrt env python torch) -m pytest tests/cpp-client`
(make test-cpp-client). The C++ runner (runners/cpp/) is built into this environment's bin/ by runners/cpp/build.sh
(cmake's own cache: a no-op when nothing changed); mobilenet_v2 is exported once per session to TorchScript and
AOTInductor (the AOTI compile takes half a minute or more), and both clients run the same files on the same inputs."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cpp_client_helpers import MODEL, ROOT, RUNNER, SUFFIX
from runners.protocol import ExportRequest


@pytest.fixture(scope="session")
def runner() -> Path:
    """The C++ runner, built (or brought up to date) from runners/cpp/ against this environment's torch."""
    done = subprocess.run(["sh", str(ROOT / "runners" / "cpp" / "build.sh"), sys.executable], capture_output=True,
                          text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert RUNNER.is_file()
    return RUNNER


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> dict[str, Path]:
    """mobilenet_v2 exported once to each format: {"torchscript": .pt, "aoti": .pt2}."""
    from models.torch_artifacts import export_aoti, export_torchscript

    folder = tmp_path_factory.mktemp("artifacts")
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(folder / "inductor-cache"))  # ~300 MB: not in ~/.cache
    out = {}
    for target, export in (("torchscript", export_torchscript), ("aoti", export_aoti)):
        path = folder / f"{MODEL}{SUFFIX[target]}"
        result = export(ExportRequest(framework="torch", model=MODEL, output_path=str(path), target=target,
                                      result_path=str(path.with_suffix(".json"))))
        assert result.status == "ok", result.error
        out[target] = path
    return out


@pytest.fixture(scope="session")
def inputs_index(tmp_path_factory) -> Path:
    """mobilenet_v2's seeded inputs at batch 1, as the Python runner makes them (runners/inputs_file.py)."""
    from runners.inputs_file import write_model_inputs

    return write_model_inputs(tmp_path_factory.mktemp("inputs"), MODEL, 1, 0)
