"""Write BENCHMARKS.md from the JSON figures that `make bench` leaves in bench/out/.

    python bench/write_report.py bench/out BENCHMARKS.md [scale]

With `scale`, only the Scale section is rewritten (from bench/out/scale.json and scale-before.json), in place;
with `adaptive`, only the adaptive repetitions section (from bench/out/adaptive.json); with `client-overhead`, only
the client languages' loop overhead (from bench/out/client-overhead.json), added once and rewritten in place.
"""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from adaptive_simulation import section as adaptive_section  # noqa: E402
from client_overhead_report import section as client_overhead_section  # noqa: E402
from gpu_check_report import section as gpu_check_section  # noqa: E402
from plan_accuracy import section as plan_accuracy_section  # noqa: E402
from vendor_tools_report import section as vendor_tools_section  # noqa: E402


def overhead_section(report: dict) -> list[str]:
    lines = [f"### {report['runtime']}", "",
             f"Versions: {', '.join(f'{k} {v}' for k, v in sorted(report['versions'].items()))}; "
             f"threads: {report['threads'] or 'framework default'}.", "",
             "| model | batch | bare mean ms | runner mean ms | runner median ms | runner/bare (means) | "
             "runner median/bare mean | rounds x inferences | loop cost / inference |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in report["cells"]:
        lines.append(f"| {c['model']} | {c['batch_size']} | {c['bare_mean_ms']:.3f} | {c['runner_mean_ms']:.3f} | "
                     f"{c['runner_median_ms']:.3f} | {c['ratio_mean']:.3f} | {c['ratio']:.3f} | "
                     f"{c['rounds']} x {c['iterations_per_round']} | {c['loop_overhead_fraction']:.2e} |")
    cost = report["loop_cost"]
    worst = max(c["ratio_mean"] for c in report["cells"])
    lines += ["", f"Loop cost, measured on a no-op inference ({cost['iterations']} iterations, best of "
              f"{cost['repeats']}): runner {cost['runner_ns_per_iteration']:.0f} ns, bare "
              f"{cost['bare_ns_per_iteration']:.0f} ns, so the runner adds {cost['overhead_ns_per_iteration']:.0f} ns "
              f"per inference: a runner/bare ratio of at most "
              f"{1 + max(c['loop_overhead_fraction'] for c in report['cells']):.5f} in these cells (target <= "
              f"{report['target_ratio']}). The measured ratios of means scatter around 1 (worst {worst:.3f}) with the "
              "VM's drift between rounds, not with the loop."]
    return lines


def sampler_section(report: dict) -> list[str]:
    lines = [report["note"] + ".", "",
             "| interval | sampler thread, % of one core | whole process, % of one core | CPU per poll | polls | "
             "gap median / p99 / max ms | read errors |",
             "|---|---|---|---|---|---|---|"]
    for r in report["runs"]:
        lines.append(f"| {r['interval_s'] * 1e3:g} ms | {r['sampler_thread_cpu_percent_of_one_core']:.2f} | "
                     f"{r['process_cpu_percent_of_one_core']:.2f} | {r['cpu_us_per_poll']:.0f} us | {r['polls']} | "
                     f"{r['gap_ms_median']:.1f} / {r['gap_ms_p99']:.1f} / {r['gap_ms_max']:.1f} | {r['read_errors']} |")
    return lines


def startup_section(report: dict) -> list[str]:
    lines = ["Per cell, launches alternate between the launchers "
             f"({report['launches']} each); seconds from the start of the launch. Docker: {report['docker']}.", "",
             "| runtime | model | launcher | to runner process (median, min-max) | to first inference (median, "
             "min-max) | whole launch (median) | first inference before the window |",
             "|---|---|---|---|---|---|---|"]
    for cell in report["cells"]:
        for name, figures in cell["launchers"].items():
            up, first = figures["startup"], figures["start_to_first_inference"]
            lines.append(f"| {cell['runtime']} | {cell['model']} | {name} | {up['median_s']:.3f} "
                         f"({up['min_s']:.3f}-{up['max_s']:.3f}) | {first['median_s']:.3f} ({first['min_s']:.3f}-"
                         f"{first['max_s']:.3f}) | {figures['launch_total']['median_s']:.2f} | "
                         f"{'every launch' if figures['all_outside_window'] else 'NOT always'} |")
    return lines


SCALE_COMMANDS = ("report", "resume", "status", "merge")


def scale_section(after: dict, before: dict | None) -> list[str]:
    """report / resume / status / merge per size, medians of the repeats, side by side with the code before (--src)."""
    lines = [f"Synthetic results directories of real-shaped records and sample files (bench/scale.py: copies of a tiny "
             f"real sweep's records onto every run of a quick-like plan; merge over {after['shards']} shards at most, "
             f"fewer where the plan has fewer repetitions). Each command in its own subprocess; the median of the "
             f"repeats (their number per row) and the largest peak RSS of the child. Resume and status keep an index "
             f"of the journal lines they validated (runs.jsonl.index): their first repeat starts without one (the "
             f"'first' column: every line validated, the index written) and their median is of the repeats after it "
             f"(the index in place, only the lines appended since validated: none here). Targets (issue 16): report "
             "20,000 runs < 15 s and 1 GiB, 200,000 runs < 120 s and 4 GiB; resume (deciding what is left) at 200,000 "
             "< 5 s; merge of 64 shards at 200,000 < 60 s.", "",
             "| command | runs | before: median s | before: peak MiB | now: first s | now: median s | now: peak MiB "
             "| repeats | target |",
             "|---|---|---|---|---|---|---|---|---|"]
    measured = [c for c in SCALE_COMMANDS if any(c in f for f in after["sizes"].values())]
    for command in measured:
        for runs, figures in sorted(after["sizes"].items(), key=lambda kv: int(kv[0])):
            if command not in figures:
                continue
            old = ((before or {}).get("sizes", {}).get(runs) or {}).get(command)
            target = after["targets"].get(command, {}).get(str(int(runs) // 1000 * 1000)) or after["targets"].get(
                command, {}).get(int(runs) // 1000 * 1000)
            goal = (f"< {target[0]} s" + (f", < {target[1]} GiB" if target[1] else "")) if target else "-"
            now = figures[command]
            lines.append(f"| {command} | {runs} | {old['wall_s_median'] if old else '-'} | "
                         f"{old['peak_rss_mib_max'] if old else '-'} | {now.get('first_wall_s', '-')} | "
                         f"{now['wall_s_median']} | {now['peak_rss_mib_max']} | {figures.get('repeats', after['repeats'])} "
                         f"| {goal} |")
    growth = ", ".join(f"{c} {k}" for c, k in (after.get("growth_exponent") or {}).items() if k is not None)
    lines += ["", f"Growth from the smallest to the largest size, as the exponent k of time ~ runs^k (1: linear): "
              f"{growth or 'one size only'}."]
    missing = [c for c in SCALE_COMMANDS if c not in measured]
    if missing:
        lines += ["", f"Not measured in this run: {', '.join(missing)} (`bench/scale.py --commands`); this page's "
                      "history holds their last figures."]
    if before:
        lines += ["", f"Before: {before.get('label', '--src')} (`bench/scale.py --src`, run one after the other with the 'now' columns "
                      f"on the same machine, sizes {', '.join(map(str, before['sizes']))}); now: "
                      f"{after.get('label', 'this checkout')}."]
    loads = [load for run in (before, after) if run for load in _loads(run)]
    if loads or after.get("note"):
        lines += ["", " ".join(filter(None, [after.get("note"), (
            f"The host's 1-minute load average at the start of the commands: {min(loads):.1f} to {max(loads):.1f} "
            f"on {after.get('cpu_count')} CPUs." if loads else "")]))]
    return lines


def _loads(run: dict) -> list[float]:
    return [load for figures in run["sizes"].values() for c in SCALE_COMMANDS if c in figures
            for load in figures[c].get("load_1m", [])]


PLAN_ACCURACY_HEADING = "## The time estimate against the sweep it estimates"


def replace_section(text: str, heading: str, body: list[str]) -> str:
    """text with the section that starts with `heading` (up to the next '## ') replaced by heading and body."""
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[:start] + "\n".join([heading, "", *body]) + ("\n" + text[end:] if end >= 0 else "\n")


SCALE_HEADING = "## Scale: report, resume, status and merge from 2,000 to 200,000 runs"
ADAPTIVE_HEADING = "## Adaptive repetitions against a fixed design (simulation)"
CLIENT_OVERHEAD_HEADING = "## Client languages: each runner against a bare loop in its own language"


def _scale_figures(folder: Path) -> tuple[dict, dict | None]:
    before = json.loads((folder / "scale-before.json").read_text()) if (folder / "scale-before.json").exists() else None
    return json.loads((folder / "scale.json").read_text()), before


def time_share_section(r: dict) -> list[str]:
    """bench/time_share.py: the share of a repeat sweep's wall time spent measuring."""
    parts, wall = r["parts"], r["command_wall_s"]
    rows = [(name, parts.get(name)) for name in ("preparation", "idle baseline", "load", "warm-up", "window",
                                                   "cooldown", "other")]
    rows += [("greenrt's start-up (probe), tables and report", wall - parts["wall time"]),
             ("the `greenrt sweep` command", wall)]
    load = f", load average {r['load_average']:.1f}" if r.get("load_average") is not None else ""
    lines = [f"A repeat sweep (artifacts cached) of {r['runs']} runs of {r['runtime']}, {r['model']} batch "
             f"{r['batch_size']}, with the study's proportions scaled by {r['scale']:g}: windows of at least "
             f"{r['window_s']:g} s (study {r['study']['window_s']:g} s), warm-up {r['warmup_s']:g} s "
             f"({r['study']['warmup_s']:g} s), cooldowns of {r['cooldown_s']:g} s ({r['study']['cooldown_s']:g} s), an "
             f"idle baseline of {r['baseline_s']:g} s (the study's {r['study']['baseline_s']:g} s per hour, as a "
             f"share of this sweep's budgeted time); {r['cpu_count']} CPUs shared with other work{load}, synthetic "
             f"RAPL (bench/time_share.py). Parts as the report's \"where the time went\" gives them.", "",
             "| part | seconds | share of the command's wall time |", "|---|---|---|"]
    for name, seconds in rows:
        lines.append(f"| {name} | {'-' if seconds is None else f'{seconds:.1f}'} | "
                     f"{'-' if seconds is None else f'{seconds / wall:.1%}'} |")
    goal, share = r["goal"], r["share_in_windows_and_cooldowns_of_command"]
    lines += ["", f"Inside measured windows and required cooldowns: **{share:.1%}** of the command (its tables and "
              f"report included; {r['share_in_windows_and_cooldowns_of_sweep']:.1%} of the sweep's own wall time, "
              f"from its preparation to its last run's end); goal >= {goal:.0%}: "
              f"{'met' if share >= goal else 'not met'}. With these proportions the config's own budgets allow at "
              f"most {r['ceiling_of_the_config']:.0%} (a run's warm-up is neither window nor cooldown); windows, "
              f"warm-ups, cooldowns and the baseline together took {r['share_in_config_budgets_of_command']:.1%}, "
              f"the rest is greenrt's own: runner start-up and load, accounting, the probe, the tables and report. "
              f"`greenrt plan` estimated {r['estimate_low_s']:.0f} s"
              + (f" to {r['estimate_high_s']:.0f} s" if r["estimate_high_s"] > r["estimate_low_s"] + 1 else "")
              + " before the sweep, from the config alone."]
    if "projected_study_share" in r:
        lines += ["", f"Projected to the study itself (540 runs of 30 s windows, 10 s warm-ups, 10 s cooldowns, a "
                      f"120 s baseline every hour) with this sweep's overhead per run ({r['overhead_per_run_s']:.1f} s "
                      f"of load and the rest) and its one-off costs ({r['once_s']:.0f} s): "
                      f"{r['projected_study_share']:.1%} inside windows and cooldowns (a projection from these "
                      f"figures, not a measurement)."]
    return lines


def _put_section(target: str, heading: str, body: list[str]) -> None:
    """Rewrite one section of `target` in place, or append it where the page has none yet; the rest is kept."""
    text = Path(target).read_text()
    text = (replace_section(text, heading, body) if heading in text
            else text.rstrip("\n") + "\n\n" + "\n".join([heading, "", *body, ""]))
    Path(target).write_text(text)


def main(out_dir: str, target: str, only: str | None = None) -> None:
    folder = Path(out_dir)
    if only == "scale":  # rewrite the Scale section alone, from bench/out/scale*.json; the rest stays as it is
        text = Path(target).read_text()
        heading = next(line for line in text.splitlines() if line.startswith("## Scale"))
        Path(target).write_text(replace_section(text, heading, scale_section(*_scale_figures(folder))).replace(
            heading, SCALE_HEADING, 1))
        print(f"wrote the Scale section of {target}")
        return
    if only == "plan-accuracy":  # `make bench-plan` (25 minutes alone on the host): its section, the rest kept
        _put_section(target, PLAN_ACCURACY_HEADING,
                     plan_accuracy_section(json.loads((folder / "plan-accuracy.json").read_text())))
        print(f"wrote the plan accuracy section of {target}")
        return
    if only == "adaptive":  # rewrite the adaptive simulation's section alone, from bench/out/adaptive.json
        text = Path(target).read_text()
        body = adaptive_section(json.loads((folder / "adaptive.json").read_text()))
        while body and not body[-1]:  # one blank line before the next section, as replace_section puts it
            body.pop()
        Path(target).write_text(replace_section(text, ADAPTIVE_HEADING, body))
        print(f"wrote the adaptive repetitions section of {target}")
        return
    if only == "client-overhead":  # bench/client_overhead.py, run alone on the host: its section, the rest kept
        figures = folder / "client-overhead.json"
        if not figures.is_file():
            raise SystemExit(f"write_report.py: no {figures}; `python bench/client_overhead.py --out {figures} ...` "
                             "writes it (the Makefile's bench target shows the arguments)")
        _put_section(target, CLIENT_OVERHEAD_HEADING, client_overhead_section(json.loads(figures.read_text())))
        print(f"wrote the client languages' overhead section of {target}")
        return
    if only is not None:
        raise SystemExit(f"write_report.py: unknown section {only!r}; valid: scale, plan-accuracy, adaptive, "
                         "client-overhead (or none: the whole page)")
    sampler = json.loads((folder / "sampler.json").read_text())
    overheads = [json.loads(p.read_text()) for p in sorted(folder.glob("overhead-*.json"))]
    text = [
        "# Benchmarks of the harness itself",
        "",
        f"Written by `make bench` on {datetime.now(timezone.utc):%Y-%m-%d} ({sampler['host']}, "
        f"{sampler['cpu_count']} CPUs, Python {sampler['python']}). Figures are measured, never edited by hand.",
        "",
        "## Runner overhead: the shared measured loop against a bare loop",
        "",
        "Per cell, one adapter is loaded and the inputs prepared once; then rounds alternate the runner's loop",
        "(`runners.loop.measure`: clock reads and a list append per inference) with a bare",
        "`for _ in range(n): run(); synchronize()` timed as a whole, on the same inputs. The like-for-like figure is",
        "the ratio of the two means; round-to-round drift of a shared VM is larger than the loop's own cost, so",
        "single cells at batch 64 (few inferences) scatter around 1 in both directions. The last column is the",
        "drift-free figure: what the loop adds per inference (timed on a no-op) over the cell's bare latency.",
        "",
    ]
    for report in overheads:
        text += overhead_section(report) + [""]
    if (folder / "client-overhead.json").exists():
        text += [CLIENT_OVERHEAD_HEADING, "",
                 *client_overhead_section(json.loads((folder / "client-overhead.json").read_text())), ""]
    text += ["## Sampler cost", "", *sampler_section(sampler), ""]
    if (folder / "sampler-8gpu.json").exists():
        text += ["### 8 simulated GPUs and 4 RAPL zones (target: under 1 % of a core at 50 ms)", "",
                 *sampler_section(json.loads((folder / "sampler-8gpu.json").read_text())), ""]
    if (folder / "scale.json").exists():
        text += [SCALE_HEADING, "", *scale_section(*_scale_figures(folder)), ""]
    if (folder / "startup.json").exists():
        text += ["## Start-up cost per launcher (outside the measured window)", "",
                 *startup_section(json.loads((folder / "startup.json").read_text())), ""]
    if (folder / "vendor-tools.json").exists():
        before, fix = (folder / f"vendor-tools-{name}.json" for name in ("before", "fix"))
        text += ["## Each runner against its runtime's own benchmark tool", "",
                 *vendor_tools_section(json.loads((folder / "vendor-tools.json").read_text()),
                                       *(json.loads(f.read_text()) if f.exists() else None for f in (before, fix))), ""]
    if (folder / "adaptive.json").exists():
        text += [ADAPTIVE_HEADING, "",
                 *adaptive_section(json.loads((folder / "adaptive.json").read_text())), ""]
    if (folder / "time-share.json").exists():
        text += ["## Time spent measuring: a repeat sweep with the study's proportions", "",
                 *time_share_section(json.loads((folder / "time-share.json").read_text())), ""]
    if (folder / "plan-accuracy.json").exists():  # `make bench-plan`
        text += [PLAN_ACCURACY_HEADING, "",
                 *plan_accuracy_section(json.loads((folder / "plan-accuracy.json").read_text())), ""]
    if (folder / "gpu-check.json").exists():  # `make gpu-check` on an NVIDIA host (bench/gpu_check.py)
        text += [*gpu_check_section(json.loads((folder / "gpu-check.json").read_text())), ""]
    Path(target).write_text("\n".join(text))
    print(f"wrote {target}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
