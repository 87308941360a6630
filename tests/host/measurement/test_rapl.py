from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from testkit.powercap import PowercapTree, make_powercap_tree

from orchestrator.measurement.energy import window_energy
from orchestrator.measurement.sampler import SampleSeries
from orchestrator.measurement.sensors.base import SensorReadError
from orchestrator.measurement.sensors.rapl import (
    POWERCAP_ROOT_ENV,
    RaplSensor,
    probe_rapl,
    resolve_powercap_root,
)

S = 1_000_000_000


def test_discovers_packages_and_dram_and_ignores_mmio_core_psys(powercap_tree: PowercapTree) -> None:
    # A psys zone (platform energy, common on laptops as intel-rapl:1) overlaps package + DRAM: never summed.
    make_extra = powercap_tree.root / "intel-rapl" / "intel-rapl:2"
    make_extra.mkdir()
    (make_extra / "name").write_text("psys\n")
    (make_extra / "energy_uj").write_text("0\n")
    (powercap_tree.root / "intel-rapl:2").symlink_to(Path("intel-rapl") / "intel-rapl:2")

    sensor, status = probe_rapl(powercap_tree.root)

    assert status.available and sensor is not None
    assert sensor.channels() == {"package-0": "cpu", "dram-0": "dram", "package-1": "cpu"}
    assert status.channels == sensor.channels()
    ignored = status.details["ignored_zones"]
    assert set(ignored) == {"intel-rapl-mmio:0", "intel-rapl:0:1", "intel-rapl:1:1", "intel-rapl:2"}
    assert "double count" in ignored["intel-rapl-mmio:0"]
    # One reading per channel, in channel order: the sampler relies on that to label rows.
    assert [r.channel for r in sensor.read()] == ["package-0", "dram-0", "package-1"]


def test_discovery_without_top_level_links_finds_the_same_zones(tmp_path: Path) -> None:
    # A tree copied without symlinks (e.g. a container bind mount of /sys/devices/virtual/powercap) nests only.
    tree = make_powercap_tree(tmp_path / "pc", packages=2, dram=True)
    for entry in tree.root.iterdir():
        if entry.is_symlink():
            entry.unlink()
    sensor, status = probe_rapl(tree.root)
    assert sensor is not None
    assert sensor.channels() == {"package-0": "cpu", "dram-0": "dram", "package-1": "cpu", "dram-1": "dram"}


def test_amd_style_tree_packages_only(tmp_path: Path) -> None:
    # AMD Zen: package-N zones under intel-rapl, no dram, no core subzones.
    tree = make_powercap_tree(tmp_path / "pc", packages=1, dram=False, core=False, mmio=False)
    sensor, status = probe_rapl(tree.root)
    assert sensor is not None and sensor.channels() == {"package-0": "cpu"}


def test_microjoules_become_joules_since_first_read(powercap_tree: PowercapTree) -> None:
    powercap_tree.set("package-0", 7_000_000)
    powercap_tree.set("dram-0", 1_000)
    sensor = RaplSensor(powercap_tree.root)
    first = {r.channel: r.energy_j for r in sensor.read()}
    assert first == {"package-0": 0.0, "dram-0": 0.0, "package-1": 0.0}

    powercap_tree.advance("package-0", 2_500_000)  # 2.5 J
    powercap_tree.advance("dram-0", 125_000)  # 0.125 J
    second = {r.channel: r.energy_j for r in sensor.read()}
    assert second == {"package-0": 2.5, "dram-0": 0.125, "package-1": 0.0}


def test_wrap_around_mid_window_is_unwrapped(tmp_path: Path) -> None:
    tree = make_powercap_tree(tmp_path / "pc", packages=1, dram=False, max_range_uj=1_000_000)
    tree.set("package-0", 900_000)
    sensor = RaplSensor(tree.root)
    series = SampleSeries(channels=sensor.channels())
    for t in (0, 1 * S, 2 * S):
        for r in sensor.read():
            series.append(t, r, "cpu")
        tree.advance("package-0", 300_000)  # 900000 -> 200000 (wrapped) -> 500000

    # Raw counter: 900000, 200000, 500000 uJ. Unwrapped: +0.3 J, +0.3 J -> 0.0, 0.3, 0.6 J.
    # Window [0, 2 s] = 0.6 - 0.0 = 0.6 J (the raw difference would be -0.4 J).
    assert series.wrapped == [False, True, False]
    result = window_energy(series, 0, 2 * S)["package-0"]
    assert result.status == "ok" and result.method == "counter"
    assert result.energy_j == pytest.approx(0.6)
    assert "wrap" in result.reason


def test_unknown_max_range_flags_backwards_and_invalidates_window(tmp_path: Path) -> None:
    tree = make_powercap_tree(tmp_path / "pc", packages=1, dram=False, max_range_uj=None)
    tree.set("package-0", 900_000)
    sensor, status = probe_rapl(tree.root)
    assert sensor is not None and "max_energy_range_uj unknown" in status.reason
    series = SampleSeries(channels=sensor.channels())
    for t, raw in ((0, 900_000), (1 * S, 200_000), (2 * S, 500_000)):
        tree.set("package-0", raw)
        for r in sensor.read():
            series.append(t, r, "cpu")

    assert series.backwards == [False, True, False]
    # The offset is not touched: 0.0, -0.7, -0.4 J; the fall is flagged rather than guessed.
    assert series.energy_j == pytest.approx([0.0, -0.7, -0.4])
    result = window_energy(series, 0, 2 * S)["package-0"]
    assert result.status == "invalid" and result.energy_j is None
    assert "backwards" in result.reason
    # After the fall, a window that does not contain it is fine: 0.3 J between 1 s and 2 s.
    later = window_energy(series, 1 * S, 2 * S)["package-0"]
    assert later.status == "ok" and later.energy_j == pytest.approx(0.3)


def test_root_resolution_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(POWERCAP_ROOT_ENV, raising=False)
    assert resolve_powercap_root(None) == Path("/sys/class/powercap")
    monkeypatch.setenv(POWERCAP_ROOT_ENV, "/from/env")
    assert resolve_powercap_root(None) == Path("/from/env")
    assert resolve_powercap_root("/from/cli") == Path("/from/cli")


def test_missing_root_is_unavailable_with_reason(tmp_path: Path) -> None:
    root = tmp_path / "absent"
    sensor, status = probe_rapl(root)
    assert sensor is None and not status.available
    assert status.reason == f"no powercap tree at {root} (no RAPL driver, a VM, or not Linux)"


def test_tree_without_rapl_zones_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "pc" / "intel-rapl-mmio:0").mkdir(parents=True)
    sensor, status = probe_rapl(tmp_path / "pc")
    assert sensor is None and not status.available
    assert "no RAPL package zones" in status.reason


def test_root_only_energy_uj_gives_the_cve_reason(
    powercap_tree: PowercapTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tests may run as root, where chmod 000 changes nothing: deny at the open() the kernel would refuse.
    denied = os.path.realpath(powercap_tree.energy_path("package-1"))
    real_open = os.open

    def guarded_open(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        if os.path.realpath(path) == denied:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)
    sensor, status = probe_rapl(powercap_tree.root)
    assert sensor is None and not status.available
    assert status.reason == (
        f"{powercap_tree.root / 'intel-rapl:1' / 'energy_uj'} is readable by root only since Linux 5.10 "
        "(CVE-2020-8694): run as root or grant read access"
    )


def test_read_failure_raises_sensor_read_error(powercap_tree: PowercapTree) -> None:
    sensor = RaplSensor(powercap_tree.root)
    sensor.read()
    powercap_tree.energy_path("dram-0").write_text("garbage\n")
    with pytest.raises(SensorReadError, match="dram"):
        sensor.read()


def test_pyrapl_verdict_explains_itself_quietly() -> None:
    # A fresh interpreter: pyRAPL's import-time warnings only show on first import.
    code = "from orchestrator.measurement.sensors.rapl import pyrapl_verdict; import logging; " \
           "print(pyrapl_verdict()); print(len(logging.getLogger().handlers))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    verdict, handlers = done.stdout.strip().splitlines()
    assert "pymongo" not in done.stderr and "pandas" not in done.stderr
    assert handlers == "0"  # no logging handler left installed for the whole process
    if Path("/sys/class/powercap/intel-rapl").is_dir():
        assert verdict == "pyRAPL: ok" or verdict.startswith("pyRAPL: unavailable: ")
    else:
        assert verdict.startswith("pyRAPL: unavailable: PyRAPLCantRecordEnergyConsumption")
        assert "does not exist" in verdict


def test_a_fifo_as_a_zones_energy_uj_is_refused_not_waited_on(tmp_path: Path) -> None:
    # Opened blocking, a FIFO with no writer hangs the probe forever; it must say the zone cannot be read instead.
    tree = make_powercap_tree(tmp_path / "pc", packages=1, dram=False, core=False, mmio=False)
    energy = tree.zones["intel-rapl:0"] / "energy_uj"
    energy.unlink()
    os.mkfifo(energy)
    sensor, status = probe_rapl(tree.root)
    assert sensor is None and not status.available
    assert "not a regular file" in status.reason and "energy_uj" in status.reason
