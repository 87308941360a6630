"""A synthetic Linux powercap tree, laid out like /sys/class/powercap, for tests and benchmarks without RAPL.

    tree = make_powercap_tree(tmp_path / "powercap", packages=2, dram=True)
    tree.set("package-0", 1_000_000)   # zone id ("intel-rapl:0") or channel name ("package-0", "dram-0")
    tree.advance("dram-0", 250_000)    # wraps at max_range_uj like the kernel's counter

Layout: real directories nested as the kernel nests them (intel-rapl/intel-rapl:0/intel-rapl:0:0), plus the
top-level links the kernel puts beside them, plus decoys greenrt must ignore: a `core` subzone and an
`intel-rapl-mmio:0` zone that repeats package-0.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

# The value seen on many Intel server packages (2^32 units of 61 uJ); tests pass small ranges to force wraps.
DEFAULT_MAX_RANGE_UJ = 262_143_328_850


@dataclass
class PowercapTree:
    root: Path
    max_range_uj: int | None
    zones: dict[str, Path] = field(default_factory=dict)  # zone id -> directory, decoys included
    aliases: dict[str, str] = field(default_factory=dict)  # channel name -> zone id, for the zones greenrt reads
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _zone(self, zone: str) -> Path:
        return self.zones[self.aliases.get(zone, zone)]

    def get(self, zone: str) -> int:
        return int((self._zone(zone) / "energy_uj").read_text())

    def set(self, zone: str, uj: int) -> None:
        path = self._zone(zone) / "energy_uj"
        # Written aside then renamed: a concurrent reader sees the old or the new value, never an empty file.
        tmp = path.with_name(f".energy_uj.{threading.get_ident()}")
        tmp.write_text(f"{int(uj)}\n")
        os.replace(tmp, path)

    def advance(self, zone: str, uj: int) -> None:
        """Add uj to the counter, wrapping modulo max_range_uj (greenrt unwraps by adding max_range_uj)."""
        with self._lock:
            value = self.get(zone) + int(uj)
            if self.max_range_uj is not None:
                value %= self.max_range_uj
            self.set(zone, value)

    def energy_path(self, zone: str) -> Path:
        return self._zone(zone) / "energy_uj"


def _write_zone(path: Path, name: str, energy_uj: int, max_range_uj: int | None) -> None:
    path.mkdir(parents=True)
    (path / "name").write_text(f"{name}\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "enabled").write_text("1\n")
    if max_range_uj is not None:
        (path / "max_energy_range_uj").write_text(f"{max_range_uj}\n")


def make_powercap_tree(
    root: Path,
    packages: int = 2,
    dram: bool | Iterable[int] = True,
    max_range_uj: int | None = DEFAULT_MAX_RANGE_UJ,
    *,
    core: bool = True,
    mmio: bool = True,
    start_uj: int = 0,
) -> PowercapTree:
    """packages: intel-rapl:N named package-N. dram: True for a dram subzone (intel-rapl:N:0) under every package,
    or the package numbers that have one. max_range_uj=None leaves out max_energy_range_uj. core: add a `core`
    subzone (intel-rapl:N:1) to each package. mmio: add intel-rapl-mmio:0 (named package-0, as the kernel does)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with_dram = set(range(packages)) if dram is True else set() if dram is False else set(dram)
    tree = PowercapTree(root, max_range_uj)
    control = root / "intel-rapl"
    control.mkdir()
    (control / "enabled").write_text("1\n")

    def add(zone: str, real: Path, name: str, alias: str | None) -> None:
        _write_zone(real, name, start_uj, max_range_uj)
        (root / zone).symlink_to(real.relative_to(root))
        tree.zones[zone] = real
        if alias:
            tree.aliases[alias] = zone

    for n in range(packages):
        pkg = f"intel-rapl:{n}"
        add(pkg, control / pkg, f"package-{n}", f"package-{n}")
        if n in with_dram:
            add(f"{pkg}:0", control / pkg / f"{pkg}:0", "dram", f"dram-{n}")
        if core:
            add(f"{pkg}:1", control / pkg / f"{pkg}:1", "core", None)
    if mmio:
        (root / "intel-rapl-mmio").mkdir()
        add("intel-rapl-mmio:0", root / "intel-rapl-mmio" / "intel-rapl-mmio:0", "package-0", None)
    return tree


class ConstantDraw:
    """Advances a tree's counters as a host drawing constant power would ({zone: watts}), every 5 ms, while open
    (`with ConstantDraw(tree, {"package-0": 20.0}):`)."""

    def __init__(self, tree: PowercapTree, watts: dict[str, float]) -> None:
        self.tree, self.watts, self.stop = tree, dict(watts), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = time.monotonic()
        while not self.stop.wait(0.005):
            now = time.monotonic()
            for zone, watts in self.watts.items():
                self.tree.advance(zone, int(watts * (now - last) * 1e6))
            last = now

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
