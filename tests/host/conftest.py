from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import HealthCheck, settings

# The helpers are the package testkit/ (pyproject's pytest `pythonpath` puts tests/host on the import path).
from testkit.powercap import PowercapTree, make_powercap_tree

# Property tests: derandomized (the same examples every run, so `make test` is reproducible), and the failing example
# printed with the blob that replays it.
settings.register_profile("greenrt", derandomize=True, print_blob=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("greenrt")


@pytest.fixture
def powercap_tree(tmp_path: Path) -> PowercapTree:
    """Two packages; dram under package 0 only; a core subzone per package and an MMIO zone, both to be ignored."""
    return make_powercap_tree(tmp_path / "powercap", packages=2, dram=(0,))


class _Lines(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.INFO)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def logged_lines() -> Iterator[list[str]]:
    """The lines greenrt's rooms log (the `orchestrator` loggers, INFO and up) while the test runs, in order."""
    lines: list[str] = []
    handler, rooms = _Lines(lines), logging.getLogger("orchestrator")
    level = rooms.level
    rooms.addHandler(handler)
    rooms.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        rooms.removeHandler(handler)
        rooms.setLevel(level)
