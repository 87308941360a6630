"""Where the host tests' data and the folders put first on a child process's PYTHONPATH lie, computed in one place."""
from __future__ import annotations

from pathlib import Path

HOST_TESTS = Path(__file__).resolve().parents[1]
REPO = HOST_TESTS.parents[1]
BENCH = REPO / "bench"
DOCS = REPO / "docs"
FIXTURES = HOST_TESTS / "fixtures"
ORT_LOGS = HOST_TESTS / "ort_logs"
# Folders a child process gets first on its PYTHONPATH: each stands in for something this host lacks.
SIMULATED_NVIDIA = HOST_TESTS / "simulated_nvidia"  # pynvml answering for simulated GPUs
GPU_STANDIN = HOST_TESTS / "gpu_standin"  # a CUDA device for torch where there is none
ORCHESTRATOR_FAULTS = HOST_TESTS / "orchestrator_faults"  # faults injected into the orchestrator
FAULT_SITE = HOST_TESTS / "fault_site"  # faults injected into the runners
