"""How close `greenrt plan`'s time estimate comes to what `make sweep` then takes, twice: from a fresh clone (every
environment, export and reference output still to make) and again with all of that built.

A fresh clone of this checkout's HEAD in a temporary folder, with its own empty cache ($GREENRT_CACHE inside it):
`make setup` (greenrt's own venv; not part of the estimate), then `greenrt plan --json` (the estimate), then
`make sweep` timed from its start to its exit; then the estimate again, from the config alone and with
`--history` of the first sweep, and a second `make sweep` into another folder. pip's own download cache is the
machine's, as a user's second clone would find it. Run it alone: a busy host distorts every figure
(`make bench-plan`; about 25 minutes for configs/quick.toml on a 2-core VM).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 0.25


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n"
                         f"{done.stderr[-3000:]}")
    return done, took


def _estimate(clone: Path, env: dict[str, str], config: str, *history: str) -> dict:
    extra = [arg for folder in history for arg in ("--history", folder)]
    done, _ = _run([str(clone / ".venv/bin/greenrt"), "plan", "--config", config, "--json", *extra], clone, env)
    return json.loads(done.stdout)["time_estimate"]


def _sweep(clone: Path, env: dict[str, str], config: str, out: str) -> float:
    return _run(["make", "sweep", f"CONFIG={config}", f"OUT={out}"], clone, env)[1]


def measure(config: str, keep: Path | None) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="greenrt-plan-accuracy-")) if keep is None else keep
    clone = folder / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {**os.environ, "GREENRT_CACHE": str(clone / ".cache")}
    _run(["make", "setup"], clone, env)
    fresh = _estimate(clone, env, config)
    fresh_s = _sweep(clone, env, config, "results/first")
    built = _estimate(clone, env, config)
    with_history = _estimate(clone, env, config, "results/first")
    built_s = _sweep(clone, env, config, "results/second")
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True,
                              text=True).stdout.strip()
    return {"config": config, "revision": revision, "cpu_count": os.cpu_count(), "tolerance": TOLERANCE,
            "cases": [{"case": "fresh clone, environments included", "estimate": fresh, "measured_s": fresh_s},
                      {"case": "environments and caches built", "estimate": built, "measured_s": built_s},
                      {"case": "environments built, --history of the first sweep", "estimate": with_history,
                       "measured_s": built_s}]}


def section(report: dict) -> list[str]:
    """BENCHMARKS.md's lines for this measurement (bench/write_report.py)."""
    lines = [f"`greenrt plan --config {report['config']}` against the `make sweep` that follows it, in a fresh clone "
             f"of {report['revision']} with its own empty cache ({report['cpu_count']} CPUs; bench/plan_accuracy.py). "
             f"Goal: within ±{report['tolerance']:.0%}. The estimate's guessed parts are said in `greenrt plan`'s "
             "own lines; the per-part split of each sweep is its report's \"where the time went\".", "",
             "| case | estimate | measured (`make sweep`) | estimate / measured | within the goal |",
             "|---|---|---|---|---|"]
    for case in report["cases"]:
        low, high = case["estimate"]["low_s"], case["estimate"]["high_s"]
        ratio = low / case["measured_s"]
        shown = f"{low:.0f} s" if low == high else f"{low:.0f} to {high:.0f} s"
        lines.append(f"| {case['case']} | {shown} | {case['measured_s']:.0f} s | {ratio:.2f} | "
                     f"{'yes' if abs(ratio - 1) <= report['tolerance'] else 'no'} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/quick.toml")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it (default: a "
                                                                "temporary folder, left for inspection)")
    args = parser.parse_args()
    report = measure(args.config, args.keep)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print("\n".join(section(report)))


if __name__ == "__main__":
    sys.exit(main())
