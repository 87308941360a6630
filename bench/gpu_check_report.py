"""The markdown of `make gpu-check`'s results (bench/out/gpu-check.json): a section for BENCHMARKS.md.

Pure and standard-library only: bench/gpu_check.py writes bench/out/gpu-check.md with it on the GPU host, and
bench/write_report.py includes the same section in BENCHMARKS.md whenever gpu-check.json is in bench/out/.
"""
from __future__ import annotations

from typing import Any


def _f(value: Any, spec: str = ".3g", missing: str = "-") -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return missing
    return format(value, spec)


def _period(stats: dict[str, Any] | None, what: dict[str, Any] | None = None) -> str:
    if not stats:
        return "no change seen" if what else "-"
    return f"{_f(stats.get('median'), '.1f')} ({_f(stats.get('min'), '.1f')}-{_f(stats.get('max'), '.1f')})"


def _table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    """A markdown table: the header, its rule, and a line per row (each cell as str() writes it)."""
    return [_row(columns), "|" + "---|" * len(columns), *map(_row, rows)]


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(map(str, cells)) + " |"


def _gpu_lines(report: dict[str, Any]) -> list[str]:
    nvml = report.get("nvml") or {}
    rows = []
    for gpu in nvml.get("gpus") or []:
        counter = "works" if gpu.get("energy_counter") else f"no ({gpu.get('energy_counter_reason') or 'unsupported'})"
        memory = gpu.get("memory_total_mib")
        rows.append([gpu.get("index"), gpu.get("name"), gpu.get("uuid") or "-", counter,
                     f"{_f(gpu.get('power_limit_w'), '.0f')} ({_f(gpu.get('enforced_power_limit_w'), '.0f')})",
                     _f(memory / 1024 if isinstance(memory, (int, float)) else None, ".1f")])
    return _table(["NVML index", "GPU", "UUID", "energy counter", "power limit W (enforced)", "memory GiB"], rows)


def _update_lines(report: dict[str, Any]) -> list[str]:
    updates = report.get("updates") or {}
    if not updates:
        return []
    rows = []
    for name, entry in updates.items():
        if entry.get("error"):
            rows.append([name, entry.get("nvml_index", "-"), "-", "-", "-", entry["error"], "-"])
        else:
            rows.append([name, entry.get("nvml_index", "-"), entry.get("polls"),
                         _f(entry.get("poll_interval_ms_median"), ".3g"), entry.get("changes"),
                         _period(entry.get("update_period_ms"), entry), entry.get("load") or "-"])
    return _table(["reading", "GPU", "polls", "poll interval ms", "changes",
                   "interval between changes ms: median (min-max)", "load"], rows)


def _sweep_lines(report: dict[str, Any]) -> list[str]:
    sweep = report.get("sweep") or {}
    lines = []
    if sweep.get("error"):
        lines += [f"Sweep: **{sweep['error']}**", ""]
    cells = sweep.get("cells") or []
    if cells:
        lines += _table(["batch", "precision", "runs ok", "p50 ms", "GPU J/inference", "total J/inference",
                         "GPU dynamic J/inference", "GPU mean W", "samples/s", "window spanned (min)",
                         "counter / power integral"],
                        [[c["batch_size"], c["precision"], f"{c['ok']}/{c['runs']}", _f(c.get("latency_p50_ms"), ".3f"),
                          _f(c.get("gpu_j_per_inference"), ".4g"), _f(c.get("total_j_per_inference"), ".4g"),
                          _f(c.get("gpu_dynamic_j_per_inference"), ".4g"), _f(c.get("gpu_mean_power_w"), ".1f"),
                          _f(c.get("samples_per_s"), ".1f"), _f(c.get("spanned_fraction_min"), ".3f"),
                          _f(c.get("counter_power_ratio"), ".4f")] for c in cells])
    failed = [r for r in sweep.get("runs") or [] if r.get("status") != "ok"]
    for run in failed:
        lines.append(f"- run {run.get('run_id')} {run.get('status')}: {str(run.get('failure') or '')[:300]}")
    notes = sorted({r.get("energy_note") for r in sweep.get("runs") or [] if r.get("energy_note")})
    for note in notes[:5]:
        lines.append(f"- energy note: {note[:300]}")
    return lines


def _bare_lines(report: dict[str, Any]) -> list[str]:
    rows = report.get("overhead") or []
    if not rows:
        return []
    cells = []
    for r in rows:
        graph = r.get("graph_p50_ms")
        graph_text = _f(graph, ".3f") if graph is not None else (f"failed: {r['graph_error'][:80]}"
                                                                  if r.get("graph_error") else "-")
        cells.append([r["batch_size"], r["precision"], _f(r.get("bare_eager_p50_ms"), ".3f"), graph_text,
                      _f(r.get("orchestrator_p50_ms"), ".3f"), _f(r.get("ratio"), ".3f"), _f(r.get("added_ms"), "+.3f"),
                      _f(r.get("graph_speedup"), ".2f")])
    return _table(["batch", "precision", "bare eager p50 ms", "bare CUDA graph p50 ms", "orchestrator p50 ms",
                   "orchestrator / bare eager", "added ms per batch", "eager / graph"], cells)


def _part(report: dict[str, Any], key: str, title: str, items: str) -> tuple[dict[str, Any], list[str] | None]:
    """A check that may have been skipped or failed: (its entry, None) when it has `items` to show; else the lines
    that stand for it: why it was skipped or failed, or none at all when it has nothing to show."""
    part = report.get(key) or {}
    if part.get("skipped") or part.get("error"):
        return part, [f"{title}: {part.get('skipped') or part.get('error')}.", ""]
    return part, (None if part.get(items) else [])


def _tf32_lines(report: dict[str, Any]) -> list[str]:
    tf32, said = _part(report, "tf32", "TF32 policy effect", "ops")
    if said is not None:
        return said
    rows = []
    for op in tf32["ops"]:
        for mode, label in (("fp32", "fp32, TF32 off (greenrt)"), ("tf32", "TF32 allowed")):
            m = op["modes"].get(mode) or {}
            rows.append([op["op"], label, _f(m.get("median_ms"), ".3f"),
                         f"{_f(m.get('p10_ms'), '.3f')}-{_f(m.get('p90_ms'), '.3f')}", m.get("n", "-"),
                         _f(m.get("tflops"), ".1f"), _f(m.get("max_abs_error"), ".2e"), _f(m.get("max_rel_error"), ".2e"),
                         _f(m.get("rms_rel_error"), ".2e")])
    defaults = tf32.get("torch_defaults") or {}
    lines = ["TF32 policy effect (`greenrt`'s fp32 sets `allow_tf32 = False` for cuBLAS and cuDNN): each op timed both "
             f"ways in {tf32.get('rounds', '?')} alternating rounds with CUDA events, and compared with an fp64 result "
             "of the same inputs (max relative error = largest error / largest reference magnitude). This torch's "
             f"defaults: matmul TF32 {'on' if defaults.get('matmul_allow_tf32') else 'off'}, cuDNN TF32 "
             f"{'on' if defaults.get('cudnn_allow_tf32') else 'off'}, cudnn.benchmark "
             f"{'on' if defaults.get('cudnn_benchmark') else 'off'}.", ""]
    lines += _table(["op", "mode", "median ms", "p10-p90 ms", "n", "TFLOP/s", "max abs error", "max rel error",
                     "rms rel error"], rows)
    lines.append("")
    for op in tf32["ops"]:
        growth = op.get("max_rel_error_growth")
        error = f", its max relative error {_f(growth, '.3g')}x strict fp32's" if growth is not None else ""
        lines.append(f"- {op['op']} ({op['shape']}): TF32 {_f(op.get('speedup_tf32'), '.2f')}x the speed of strict "
                     f"fp32{error}; {op['verdict']}.")
    return lines + [""]


def _period_cell(p: dict[str, Any]) -> str:
    return f"{p.get('channel')}: {_f(p.get('period_ms'), '.1f')} ({p.get('source') or '-'})"


def _agreement_cell(p: dict[str, Any]) -> str:
    verdict = {True: "yes", False: "NO"}.get(p.get("agrees"), "not checked")
    if p.get("difference_ms") is None:
        return f"{verdict} ({p.get('reason')})" if p.get("reason") else verdict
    return f"{verdict}: {_f(p.get('difference_ms'), '+.1f')} (bound {_f(p.get('bound_ms'), '.1f')})"


def _edge_lines(report: dict[str, Any]) -> list[str]:
    edges = report.get("edges") or {}
    if not edges:
        return []
    low, high = (edges.get("period_range_ms") or [None, None])[:2]
    lines = ["Window-edge uncertainty, as greenrt's energy accounting recorded it for each run's own GPUs (counter "
             "period x power at each edge of the window; the period from the run's samples, or the sampling "
             "interval as its bound, or a default). Its period against NVML's energy counter polled fast on GPU "
             f"{edges.get('nvml_index', '?')}: a change every {_f(edges.get('period_ms'), '.1f')} ms (median; "
             f"{_f(low, '.1f')}-{_f(high, '.1f')}, each within {_f(edges.get('resolution_ms'), '.2g')} ms). The two "
             "agree when they differ by at most the fast poll's resolution plus the sampler's interval (each sees a "
             "counter step up to one of its own intervals late).", ""]
    rows = []
    for r in edges.get("runs") or []:
        periods = r.get("periods") or []
        rows.append([r.get("run_id"), r.get("batch_size"), r.get("precision"), _f(r.get("window_s"), ".2f"),
                     _f(r.get("window_energy_j"), ".1f"), _f(r.get("uncertainty_j"), ".2f"),
                     _f(r.get("percent"), ".2f"),
                     " / ".join(map(_period_cell, periods)) or "-",
                     " / ".join(_f(p.get("sampling_interval_ms"), ".1f") for p in periods) or "-",
                     " / ".join(map(_agreement_cell, periods)) or "-", r.get("reason") or ""])
    if rows:
        lines += _table(["run", "batch", "precision", "window s", "energy J", "edge uncertainty J", "% of energy",
                         "counter period ms (source)", "sampler ms", "fast-polled - accounting ms", "note"], rows)
    else:
        lines.append("(no measured windows to report)")
    return lines + [""]


def _attribution_lines(report: dict[str, Any]) -> list[str]:
    att, said = _part(report, "attribution", "One-GPU attribution", "gpus")
    if said is not None:
        return said
    rows = [[g.get("index"), g.get("name"), "yes" if g.get("loaded") else "", _f(g.get("idle_w"), ".1f"),
             _f(g.get("load_w"), ".1f"), _f(g.get("change_w"), "+.1f"),
             "-" if g.get("stays_idle") is None else ("yes" if g["stays_idle"] else "NO"), g.get("load_method") or "-"]
            for g in att["gpus"]]
    state = {True: "ok", False: "FAILED"}.get(att.get("ok"), "not checked")
    return [f"One-GPU attribution ({state}): every GPU's mean power over {_f(att.get('idle_s'), '.3g')} s idle, then over "
            f"{_f(att.get('load_s'), '.3g')} s of load on CUDA device 0 (NVML index {att.get('load_index')}, "
            f"{att.get('how_matched')}; {att.get('load') or 'load'}); tolerance {att.get('tolerance')}.", "",
            *_table(["NVML index", "GPU", "loaded", "idle W", "under load W", "change W", "stays idle", "method"], rows),
            "", f"Verdict: {att.get('verdict')}.", ""]


def section(report: dict[str, Any], heading: str = "##") -> list[str]:
    """Markdown lines of one gpu-check report (the dict bench/gpu_check.py writes)."""
    host = report.get("host") or {}
    nvml = report.get("nvml") or {}
    sweep = report.get("sweep") or {}
    versions = ", ".join(f"{k} {v}" for k, v in (host.get("versions") or {}).items() if v)
    lines = [f"{heading} GPU check (a real NVIDIA host)", "",
             f"Written by `make gpu-check` on {report.get('started_at', '?')} ({host.get('hostname', '?')}, "
             f"{host.get('cpus', '?')} CPUs; {versions or 'versions unknown'}; NVIDIA driver "
             f"{nvml.get('driver') or '?'}, NVML {nvml.get('nvml_version') or '?'}), in "
             f"{_f(report.get('wall_s'), '.0f')} s. Status: **{report.get('status', '?')}**. Figures are measured, "
             "never edited by hand.", ""]
    lines += _gpu_lines(report) + [""]
    updates = _update_lines(report)
    if updates:
        lines += ["How often NVML's readings change, polled as fast as Python calls NVML for about "
                  f"{_f((report.get('updates') or {}).get('energy_counter', {}).get('seconds'), '.1f')} s each "
                  "under a light CUDA load (each interval is known to about one poll interval):", "", *updates, ""]
    model = sweep.get("model", "resnet50")
    lines += [f"Through the orchestrator (`greenrt sweep --launcher local --python {sweep.get('python') or 'python3'}`, "
              f"config `{sweep.get('config') or 'configs/gpu-check.toml'}`): `{sweep.get('runtimes') or 'torch/native/cuda'}`, "
              f"{model}, medians "
              "over the repetitions. An inference is one sample (batch x iterations); the window spanned is the "
              "fraction of each run's measured window between its first and last GPU sample; the last column "
              "divides the counter difference over the window by the trapezoid integral of the sampled power over "
              "the same window.", ""]
    lines += _sweep_lines(report) + [""]
    lines += _edge_lines(report) + _tf32_lines(report) + _attribution_lines(report)
    bare = _bare_lines(report)
    if bare:
        lines += ["A bare loop in one process (the same model builder, inputs on the device, `torch.inference_mode`, "
                  "`torch.cuda.synchronize()` after each batch), eager and replaying one captured CUDA graph, against "
                  "the orchestrator's median latency for the same cell (the harness's overhead):", "", *bare, ""]
    for title, key in (("Problems (something did not work)", "problems"),
                       ("Warnings (it worked; a figure is outside what is expected)", "warnings")):
        items = report.get(key) or []
        if items:
            lines += [f"{title}:", "", *[f"- {item}" for item in items], ""]
    return lines


def render(report: dict[str, Any], heading: str = "##") -> str:
    return "\n".join(section(report, heading)).rstrip() + "\n"

