"""CPU package and DRAM energy from the Linux powercap sysfs tree (Intel RAPL, and AMD Zen under the same names).

greenrt reads `energy_uj` itself instead of going through pyRAPL, because pyRAPL
- looks only at /sys/class/powercap/intel-rapl and cannot be pointed at another root (a container's bind mount,
  or the synthetic trees the tests and benchmarks build);
- returns raw counters and does not unwrap them across our windows: a package counter wraps every few minutes
  to hours under load, and a measurement window that straddles a wrap would come out hugely negative;
- raises `PyRAPLCantRecordEnergyConsumption` with an EMPTY message when it finds nothing, which tells a user
  nothing. `pyrapl_verdict()` translates it for the host report.

Which zones count:
- `intel-rapl:N` whose `name` starts with `package` -> channel `package-N`, domain "cpu";
- `intel-rapl:N:M` whose `name` is `dram` -> channel `dram-N`, domain "dram".
- Ignored, so that nothing is counted twice: `intel-rapl-mmio:*` (the same package energy through another
  interface), `core`/`uncore` subzones (already inside the package), and `psys` (the whole platform, overlapping
  package and DRAM).
"""
from __future__ import annotations

import contextlib
import logging
import errno
import os
import stat
import re
from dataclasses import dataclass
from pathlib import Path

from .base import Reading, Sensor, SensorReadError, SensorStatus

DEFAULT_POWERCAP_ROOT = Path("/sys/class/powercap")
POWERCAP_ROOT_ENV = "GREENRT_POWERCAP_ROOT"

_PACKAGE_ZONE = re.compile(r"^intel-rapl:(\d+)$")
_SUB_ZONE = re.compile(r"^intel-rapl:(\d+):(\d+)$")


def resolve_powercap_root(cli_value: str | None) -> Path:
    """The command line wins, then $GREENRT_POWERCAP_ROOT, then the kernel's own tree."""
    if cli_value:
        return Path(cli_value)
    env = os.environ.get(POWERCAP_ROOT_ENV)
    if env:
        return Path(env)
    return DEFAULT_POWERCAP_ROOT


@dataclass(frozen=True)
class RaplZone:
    channel: str  # "package-0", "dram-0"
    domain: str  # "cpu" | "dram"
    zone: str  # sysfs zone name, "intel-rapl:0:0"
    path: Path  # the zone's directory
    max_range_uj: int | None  # None: max_energy_range_uj missing or unreadable, so a wrap cannot be told apart

    @property
    def energy_path(self) -> Path:
        return self.path / "energy_uj"


def _read_bytes(path: Path, size: int) -> bytes:
    # os.open/os.read: one syscall each, no buffered file object, and a fresh open sees a file replaced atomically.
    # O_NONBLOCK and the S_ISREG check: a FIFO placed as a zone's file is refused instead of hanging the probe.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a pipe or a device): refused, never read")
        return os.read(fd, size)
    finally:
        os.close(fd)


def _read_text(path: Path) -> str:
    return _read_bytes(path, 64).decode("ascii", "replace").strip()


def _read_optional_int(path: Path) -> int | None:
    try:
        value = int(_read_text(path))
    except (OSError, ValueError):
        return None
    return value if value > 0 else None


def _zone_dirs(root: Path) -> dict[str, Path]:
    """Zone name -> directory. The kernel lists every zone at the top level (as links) and nests subzones inside
    their package; a tree copied without links may have only one of the two, so look at both and keep each once."""
    found: dict[str, Path] = {}
    bases = [root, root / "intel-rapl"]
    for base in bases:
        if not base.is_dir():
            continue
        for entry in sorted(base.iterdir()):
            if _PACKAGE_ZONE.match(entry.name):
                found.setdefault(entry.name, entry)
                for sub in sorted(entry.iterdir()) if entry.is_dir() else ():
                    if _SUB_ZONE.match(sub.name):
                        found.setdefault(sub.name, sub)
            elif _SUB_ZONE.match(entry.name):
                found.setdefault(entry.name, entry)
    return found


def discover_zones(root: Path) -> tuple[list[RaplZone], dict[str, str]]:
    """The zones greenrt reads, and the zones it skips with why (for host.json)."""
    zones: list[RaplZone] = []
    ignored: dict[str, str] = {}
    dirs = _zone_dirs(root)
    package_suffix: dict[str, str] = {}  # "0" (zone index) -> "0" (package number from its name)

    def sort_key(name: str) -> tuple[int, ...]:
        return tuple(int(x) for x in name.split(":")[1:])

    for zone in sorted(dirs, key=sort_key):
        path = dirs[zone]
        try:
            name = _read_text(path / "name")
        except OSError as exc:
            ignored[zone] = f"name unreadable: {exc.strerror or exc}"
            continue
        pkg = _PACKAGE_ZONE.match(zone)
        if pkg:
            if not name.startswith("package"):
                ignored[zone] = f"{name} (overlaps package and DRAM zones)"
                continue
            suffix = name.removeprefix("package-") or pkg.group(1)
            package_suffix[pkg.group(1)] = suffix
            zones.append(RaplZone(f"package-{suffix}", "cpu", zone, path, _read_optional_int(path / "max_energy_range_uj")))
            continue
        sub = _SUB_ZONE.match(zone)
        assert sub is not None
        if name != "dram":
            ignored[zone] = f"{name} (included in its package)"
            continue
        parent = sub.group(1)
        if parent not in package_suffix:
            ignored[zone] = "dram under a zone that is not a package"
            continue
        zones.append(RaplZone(f"dram-{package_suffix[parent]}", "dram", zone, path, _read_optional_int(path / "max_energy_range_uj")))

    if root.is_dir():
        for entry in sorted(root.iterdir()):
            if entry.name.startswith("intel-rapl-mmio:"):
                ignored[entry.name] = "MMIO interface to the package zone already read through intel-rapl (would double count)"
    return zones, ignored


class RaplSensor(Sensor):
    """Cumulative joules per zone since the first read, unwrapped with max_energy_range_uj.

    Reads must come from one thread at a time (the sampler's): the unwrap state is per sensor, not per caller.
    """

    name = "rapl"

    def __init__(self, root: Path, zones: list[RaplZone] | None = None) -> None:
        self.root = Path(root)
        self.zones = zones if zones is not None else discover_zones(self.root)[0]
        self._channels = {z.channel: z.domain for z in self.zones}
        self._paths = [str(z.energy_path) for z in self.zones]
        self._ranges = [z.max_range_uj for z in self.zones]
        self._first: list[int | None] = [None] * len(self.zones)
        self._prev: list[int] = [0] * len(self.zones)
        self._offset: list[int] = [0] * len(self.zones)

    def channels(self) -> dict[str, str]:
        return dict(self._channels)

    def read_raw(self) -> list[int]:
        """energy_uj of every zone, as the kernel gives it."""
        raw = []
        for i, path in enumerate(self._paths):
            try:
                raw.append(int(_read_bytes(path, 32)))
            except (OSError, ValueError) as exc:
                raise SensorReadError(f"{self.zones[i].channel}: {path}: {exc}") from exc
        return raw

    def read(self) -> list[Reading]:
        raw = self.read_raw()  # all zones first, so a failure leaves the unwrap state untouched
        readings = []
        for i, zone in enumerate(self.zones):
            value = raw[i]
            wrapped = backwards = False
            if self._first[i] is None:
                self._first[i] = value
            elif value < self._prev[i]:
                if self._ranges[i] is not None:
                    self._offset[i] += self._ranges[i]
                    wrapped = True
                else:
                    # No range to unwrap with: report it, and let the window analysis refuse the window.
                    backwards = True
            self._prev[i] = value
            energy_uj = value - self._first[i] + self._offset[i]
            readings.append(Reading(zone.channel, energy_uj / 1e6, wrapped=wrapped, backwards=backwards))
        return readings


def _no_powercap_reason(root: Path) -> str:
    return f"no powercap tree at {root} (no RAPL driver, a VM, or not Linux)"


def _permission_reason(path: Path | str) -> str:
    return (
        f"{path} is readable by root only since Linux 5.10 (CVE-2020-8694): run as root or grant read access"
    )


def probe_rapl(root: Path) -> tuple[RaplSensor | None, SensorStatus]:
    root = Path(root)
    if not root.is_dir():
        return None, SensorStatus("rapl", False, _no_powercap_reason(root), details={"root": str(root)})
    zones, ignored = discover_zones(root)
    details: dict[str, object] = {"root": str(root), "ignored_zones": ignored}
    if not zones:
        reason = f"no RAPL package zones (intel-rapl:N named package-N) under {root}"
        return None, SensorStatus("rapl", False, reason, details=details)
    for zone in zones:
        try:
            int(_read_text(zone.energy_path))
        except PermissionError:
            return None, SensorStatus("rapl", False, _permission_reason(zone.energy_path), details=details)
        except (OSError, ValueError) as exc:
            reason = f"{zone.energy_path} cannot be read: {exc}"
            return None, SensorStatus("rapl", False, reason, details=details)
    sensor = RaplSensor(root, zones)
    details["zones"] = {z.channel: str(z.path) for z in zones}
    details["max_energy_range_uj"] = {z.channel: z.max_range_uj for z in zones}
    unknown = [z.channel for z in zones if z.max_range_uj is None]
    reason = f"{len(zones)} RAPL zone(s) under {root}: {', '.join(z.channel for z in zones)}"
    if unknown:
        reason += f"; max_energy_range_uj unknown for {', '.join(unknown)} (a wrap-around would invalidate a window)"
    return sensor, SensorStatus("rapl", True, reason, channels=sensor.channels(), details=details)


@contextlib.contextmanager
def _quiet_root_logger():
    # pyRAPL.outputs calls logging.warning() at import when pymongo/pandas are missing. That prints, and, with no
    # handler on the root logger, also installs one for the whole process (logging.basicConfig). A NullHandler
    # present for the duration stops both.
    root = logging.getLogger()
    guard = logging.NullHandler()
    root.addHandler(guard)
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)
        root.removeHandler(guard)


def pyrapl_verdict() -> str:
    """Whether pyRAPL itself could measure on this host, said in words (for the host report)."""
    try:
        with _quiet_root_logger():
            import pyRAPL
    except ImportError as exc:
        return f"pyRAPL: unavailable: not installed ({exc})"
    pyrapl_dir = DEFAULT_POWERCAP_ROOT / "intel-rapl"
    try:
        pyRAPL.setup()
    except pyRAPL.PyRAPLCantRecordEnergyConsumption:
        where = "" if pyrapl_dir.is_dir() else f"; {pyrapl_dir} does not exist"
        return (
            "pyRAPL: unavailable: PyRAPLCantRecordEnergyConsumption (raised with an empty message), meaning it "
            f"opened no package or DRAM zone under {pyrapl_dir}, the only place it looks, or the number of package "
            f"zones there differs from the CPU sockets in /proc/cpuinfo{where}"
        )
    except PermissionError as exc:
        return f"pyRAPL: unavailable: {_permission_reason(exc.filename or pyrapl_dir)}"
    except Exception as exc:  # pyRAPL's other failures: say which, never swallow
        return f"pyRAPL: unavailable: {type(exc).__name__}: {exc or 'no message'}"
    return "pyRAPL: ok"
