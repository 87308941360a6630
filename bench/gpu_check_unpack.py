"""Unpack the wheelhouse (.whl/) into one folder for PYTHONPATH, with the standard library alone: no pip needed.

The lent GPU machine's python3 has no pip. A wheel is a zip file whose root is what `pip install --target` would
write, so extracting it is the install; only `<name>.data/purelib` and `.data/platlib` need moving to the root
(scripts, headers and data are not needed to import). Native modules (polars' runtime, pydantic-core) cannot be
imported from inside a zip, which is why the wheels are extracted rather than put on sys.path as they are.
A wheel built for another interpreter or platform would extract fine and fail at import, so the tags are checked
first and the names are imported at the end: either problem is one line and exit 2.

    python3 bench/gpu_check_unpack.py WHEELS_DIR SITE_DIR [--check polars,pydantic,typer,rich]
"""
from __future__ import annotations

import argparse
import importlib
import platform
import shutil
import sys
import zipfile
from pathlib import Path


class Unusable(Exception):
    """A wheel this interpreter cannot use, or a name that does not import from the unpacked folder."""


def wheel_tags(filename: str) -> tuple[set[str], set[str], set[str]]:
    """(python tags, abi tags, platform tags) of a wheel's file name (PEP 427; each part may be dotted)."""
    parts = Path(filename).name.removesuffix(".whl").split("-")
    if len(parts) not in (5, 6):
        raise Unusable(f"{filename}: not a wheel file name (name-version[-build]-python-abi-platform.whl)")
    python, abi, plat = parts[-3:]
    return set(python.split(".")), set(abi.split(".")), set(plat.split("."))


def compatible(filename: str, version: tuple[int, int] | None = None, machine: str | None = None) -> str | None:
    """None when a CPython of `version` on Linux `machine` can import this wheel, else why not."""
    major, minor = version or sys.version_info[:2]
    machine = machine or platform.machine()
    pythons, abis, plats = wheel_tags(filename)
    exact = f"cp{major}{minor}"
    pure = {"py3", f"py{major}{minor}"} & pythons
    # abi3: built against CPython 3.N's stable ABI, importable by 3.N and later 3.x.
    stable = "abi3" in abis and any(t[:3] == f"cp{major}" and t[3:].isdigit() and int(t[3:]) <= minor
                                    for t in pythons)
    if not (("none" in abis and pure) or (exact in pythons and exact in abis) or stable):
        return f"built for {'.'.join(sorted(pythons))}-{'.'.join(sorted(abis))}, not CPython {major}.{minor}"
    if "any" not in plats and not any(p.startswith(("manylinux", "linux")) and p.endswith(f"_{machine}")
                                      for p in plats):
        return f"built for {'.'.join(sorted(plats))}, not Linux {machine}"
    return None


def unpack(wheel: Path, site: Path) -> int:
    """Extract one wheel into site as pip --target would lay it out; the number of files written."""
    written = 0
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            name = info.filename
            head, _, rest = name.partition("/")
            if head.endswith(".data"):
                scheme, _, inner = rest.partition("/")
                if scheme not in ("purelib", "platlib") or not inner:
                    continue  # scripts, headers, data: nothing an import needs
                name = inner
            if name.endswith("/"):
                continue
            target = site / name
            if ".." in Path(name).parts or Path(name).is_absolute():
                raise Unusable(f"{wheel.name}: unsafe path in the archive: {info.filename}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            written += 1
    return written


def unpack_all(wheels: Path, site: Path, check: list[str]) -> str:
    """Unpack every wheel of `wheels` into a fresh `site`, then import `check` from it: a one-line summary."""
    files = sorted(wheels.glob("*.whl"))
    if not files:
        raise Unusable(f"no wheels in {wheels}/")
    refused = [f"{f.name}: {why}" for f in files if (why := compatible(f.name))]
    if refused:
        raise Unusable(f"the wheelhouse {wheels} does not suit this python3 (Python {platform.python_version()}): "
                       + "; ".join(refused) + " (make gpu-wheels builds it for CPython 3.12; GPU_WHEELS_PYTHON=3.x "
                       "for another)")
    shutil.rmtree(site, ignore_errors=True)
    site.mkdir(parents=True)
    count = sum(unpack(f, site) for f in files)
    sys.path.insert(0, str(site))
    for name in check:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise Unusable(f"{name} does not import from {site} ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    return f"wheelhouse {wheels} unpacked into {site} ({len(files)} wheels, {count} files)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheels", type=Path)
    parser.add_argument("site", type=Path)
    parser.add_argument("--check", default="", help="comma-separated modules that must import afterwards")
    args = parser.parse_args(argv)
    try:
        print(f"gpu-check: {unpack_all(args.wheels, args.site, [n for n in args.check.split(',') if n])}")
    except (Unusable, OSError, zipfile.BadZipFile) as exc:
        print(f"gpu-check: cannot run on this host: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
