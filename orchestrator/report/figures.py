"""The report's figures (matplotlib, Agg): each saved as PNG and SVG; None where there is nothing honest to draw.

A missing value is never drawn as a bar of height zero: its slot is labelled "n/a" and the caller says why.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import matplotlib

matplotlib.use("Agg")  # no display on a measurement host; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from orchestrator.analysis.correlation import cell_points  # noqa: E402
from orchestrator.planning.config import Precision  # noqa: E402
from runners.clients import CLIENTS, PYTHON, language, split_client  # noqa: E402

DPI = 110


@dataclass(frozen=True)
class SavedFigure:
    png: Path
    svg: Path


_SHORT = {"tensorflow": "TF", "torch": "torch", "mxnet": "MXNet", "onnxruntime": "ORT", "openvino": "OV",
          "litert": "LiteRT", "onnxruntime-genai": "ORT GenAI", "openvino-genai": "OV GenAI", "ctranslate2": "CT2",
          "hf": "HF"}
_FRAMEWORK_ORDER = {"torch": 0, "tensorflow": 1, "mxnet": 2}
_PRECISION_ORDER = {p: i for i, p in enumerate(get_args(Precision))}  # the config's order: fp32 first


def _converted(model_format: str) -> tuple[str, str] | None:
    """(format, source) of a converted model's format such as onnx-from-torch or tflite-from-tensorflow."""
    kind, sep, source = model_format.partition("-from-")
    return (kind, source) if sep and source else None


def runtime_label(runtime: str) -> str:
    """Short and unique per runtime: 'ORT←torch', 'OV←torch', 'LiteRT←TF', 'torch inductor', 'TF [cuda]'; a client
    other than the plain id's Python says its language: 'ORT←torch (Node.js)', 'torch torchscript (C++)'."""
    base, client = split_client(runtime)
    framework, model_format, provider = (base.split("/") + ["", ""])[:3]
    converted = _converted(model_format)
    name = _SHORT.get(framework, framework)
    if converted:
        name = f"{name}←{_SHORT.get(converted[1], converted[1])}"
    elif model_format not in ("native", ""):
        name = f"{name} {model_format}"
    name = name if provider in ("cpu", "") else f"{name} [{provider}]"
    return name if client is None else f"{name} ({language(runtime)})"


_CLIENT_ORDER = {name: i for i, name in enumerate(CLIENTS)}


def runtime_order(runtime: str) -> tuple:
    """Native frameworks first (then their compilers), then converted models by runtime and source (docs/findings.md's
    columns); a runtime's clients beside it: the plain id, @python, then the others."""
    base, client = split_client(runtime)
    framework, model_format, provider = (base.split("/") + ["", ""])[:3]
    converted = _converted(model_format)
    source = converted[1] if converted else framework
    return (converted is not None, framework if converted else "", _FRAMEWORK_ORDER.get(source, 9),
            model_format != "native", provider, base, client is not None, client != PYTHON,
            _CLIENT_ORDER.get(client, len(_CLIENT_ORDER)) if client else -1, runtime)


def sorted_runtimes(runtimes) -> list[str]:
    return sorted(set(runtimes), key=runtime_order)


def runtime_colors(runtimes: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10" if len(set(runtimes)) <= 10 else "tab20")
    return {r: cmap(i % cmap.N) for i, r in enumerate(sorted_runtimes(runtimes))}


def short_number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _save(fig: plt.Figure, out_dir: Path, name: str) -> SavedFigure:
    out_dir.mkdir(parents=True, exist_ok=True)
    png, svg = out_dir / f"{name}.png", out_dir / f"{name}.svg"
    fig.savefig(png, dpi=DPI, bbox_inches="tight")
    fig.savefig(svg, bbox_inches="tight")
    plt.close(fig)
    return SavedFigure(png, svg)


def _facet_grid(frame: pl.DataFrame, ylabel: str) -> tuple[plt.Figure, list[tuple[plt.Axes, pl.DataFrame, list]]]:
    """A figure of one panel per model and precision (row) and batch size (column), the runtimes along each
    panel's x axis.

    Returns the figure and, for each panel that was measured, its axes (ticks, title and y label set), its rows of
    `frame`, and (x, runtime, row) for each runtime it has a row for. A panel that was not measured (that model at
    that batch size) is hidden. Precisions get rows of their own: one runtime at fp32 and at int8 is two cells, and
    a panel holding both would have two bars for one slot.
    """
    rows = sorted({(m, p) for m, p in zip(frame["model"].to_list(), frame["precision"].to_list())},
                  key=lambda mp: (mp[0], _PRECISION_ORDER.get(mp[1], len(_PRECISION_ORDER)), mp[1]))
    named = len({p for _, p in rows}) > 1  # a sweep of one precision keeps its titles as they were
    batches = sorted(frame["batch_size"].unique().to_list())
    runtimes = sorted_runtimes(frame["runtime"].to_list())
    fig, axes = plt.subplots(len(rows), len(batches), figsize=(3.2 + 2.6 * len(batches) * max(1, len(runtimes) / 6),
                                                               0.6 + 2.9 * len(rows)), squeeze=False)
    panels = []
    for i, (model, precision) in enumerate(rows):
        for j, batch in enumerate(batches):
            ax = axes[i][j]
            panel = frame.filter((pl.col("model") == model) & (pl.col("batch_size") == batch)
                                 & (pl.col("precision") == precision))
            if panel.is_empty():
                ax.set_visible(False)  # this model was not measured at this batch size and precision
                continue
            ax.set_xlim(-0.6, len(runtimes) - 0.4)
            ax.set_xticks(range(len(runtimes)), [runtime_label(r) for r in runtimes], rotation=40, ha="right",
                          fontsize=8)
            ax.set_title(f"{model}, batch {batch}" + (f", {precision}" if named else ""), fontsize=9)
            if j == 0:
                ax.set_ylabel(ylabel, fontsize=8)
            by_runtime = {r["runtime"]: r for r in panel.iter_rows(named=True)}
            # A runtime without a row is not a cell of this sweep: its slot stays empty.
            panels.append((ax, panel, [(x, runtime, by_runtime[runtime]) for x, runtime in enumerate(runtimes)
                                       if runtime in by_runtime]))
    return fig, panels


def facet_bars(stats: pl.DataFrame, metric: str, ylabel: str, title: str, out_dir: Path, name: str,
               colors: dict[str, tuple]) -> SavedFigure | None:
    """Bars of the per-cell median of `metric`, whiskers from Q1 to Q3, one panel per model (row) and batch size."""
    data = stats.filter(pl.col("metric") == metric)
    if data.is_empty() or data["median"].drop_nulls().is_empty():
        return None
    fig, panels = _facet_grid(data, ylabel)
    for ax, panel, cells in panels:
        top = max([row["q3"] or row["median"] or 0 for _, _, row in cells] or [0]) or 1.0
        for x, runtime, row in cells:
            if row["median"] is None:
                ax.text(x, top * 0.02, "n/a", ha="center", va="bottom", fontsize=8, color="0.4", rotation=90)
                continue
            ax.bar(x, row["median"], color=colors[runtime], width=0.75)
            if row["q1"] is not None:
                ax.errorbar(x, row["median"], yerr=[[row["median"] - row["q1"]], [row["q3"] - row["median"]]],
                            color="black", capsize=3, lw=1)
            ax.text(x, row["q3"] if row["q3"] is not None else row["median"], short_number(row["median"]),
                    ha="center", va="bottom", fontsize=7)
        if panel["median"].drop_nulls().is_empty():
            ax.text(0.5, 0.5, "no value in any run of this panel", transform=ax.transAxes, ha="center",
                    fontsize=9, color="0.3")
            ax.set_yticks([])
        ax.set_ylim(0, top * 1.15)
        ax.tick_params(axis="y", labelsize=7)
    single = data.filter(pl.col("median").is_not_null())["n"].max() == 1
    fig.suptitle(title + ("\none run per cell: no whiskers, and no test can separate runtimes" if single else ""),
                 fontsize=11)
    # Room above the panels for the title's lines (tight_layout alone lets the title run into a tall figure's top row).
    title_lines = 2 if single else 1
    fig.tight_layout(rect=(0, 0, 1, 1 - (0.1 + 0.2 * title_lines) / fig.get_figheight()))
    return _save(fig, out_dir, name)


def energy_split(runs: pl.DataFrame, out_dir: Path, colors: dict[str, tuple]) -> SavedFigure | None:
    """Stacked CPU / DRAM / GPU energy per inference (cell medians), one panel per model and batch size."""
    domains = [("cpu_j_per_inference", "CPU (RAPL package)", "#4c72b0"),
               ("dram_j_per_inference", "DRAM", "#55a868"), ("gpu_j_per_inference", "GPU (NVML)", "#c44e52")]
    if runs.is_empty():
        return None
    medians = (runs.group_by(["model", "batch_size", "runtime", "precision"])
               .agg([pl.col(c).median() for c, _, _ in domains]))
    present = [d for d in domains if not medians[d[0]].drop_nulls().is_empty()]
    if not present:
        return None
    fig, panels = _facet_grid(medians, "J per inference")
    for ax, _, cells in panels:
        for x, _, row in cells:
            values = [row[c] for c, _, _ in present]
            if all(v is None for v in values):
                ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=8, color="0.4", rotation=90)
                continue
            bottom = 0.0
            for (_, _, color), value in zip(present, values):
                if value is not None:
                    ax.bar(x, value, bottom=bottom, color=color, width=0.75)
                    bottom += value
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for _, _, c in present]
    fig.legend(handles, [label for _, label, _ in present], loc="center right", fontsize=8)
    fig.suptitle("Where the energy goes: CPU / DRAM / GPU per inference (median over runs)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.84, 1))  # the right margin holds the legend, clear of the title
    return _save(fig, out_dir, "energy_split")


def energy_vs_time(runs: pl.DataFrame, correlation: dict | None, out_dir: Path,
                   colors: dict[str, tuple]) -> SavedFigure | None:
    points = cell_points(runs, "j_per_inference").drop_nulls(["energy", "s_per_inference"])
    if points.is_empty():
        return None
    markers = dict(zip(sorted(points["model"].unique().to_list()), "osD^vP*X"))
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for row in points.iter_rows(named=True):
        ax.scatter(row["s_per_inference"] * 1e3, row["energy"], color=colors[row["runtime"]],
                   marker=markers[row["model"]], s=40, edgecolor="black", linewidth=0.4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("time per inference (ms, median over runs)")
    ax.set_ylabel("energy per inference (J, median over runs)")
    rt = [plt.Line2D([], [], color=colors[r], marker="o", ls="", label=runtime_label(r))
          for r in sorted_runtimes(points["runtime"].to_list())]
    md = [plt.Line2D([], [], color="0.3", marker=m, ls="", label=k) for k, m in markers.items()]
    ax.legend(handles=rt + md, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    if correlation and correlation.get("spearman_rho") is not None:
        text = (f"Spearman ρ = {correlation['spearman_rho']:.3f} (p = {correlation['spearman_p']:.2g})\n"
                f"Pearson r = {correlation['pearson_r']:.3f} (p = {correlation['pearson_p']:.2g}), "
                f"{correlation['n']} cells")
    else:
        text = (correlation or {}).get("note") or "correlation not computed"
    ax.set_title(text, fontsize=9)
    fig.suptitle("Energy against time, one point per cell", fontsize=11)
    fig.tight_layout()
    return _save(fig, out_dir, "energy_vs_time")


def _channel_power(t_s: np.ndarray, power: np.ndarray, energy: np.ndarray) -> np.ndarray | None:
    if np.isfinite(power).any():
        return power
    if np.isfinite(energy).sum() >= 2:
        # RAPL has no power reading: its counter's slope between consecutive samples is the mean power there.
        dt, de = np.diff(t_s), np.diff(energy)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(dt > 0, de / dt, np.nan)
        return np.concatenate([[np.nan], slope])
    return None


def power_trace(samples: pl.DataFrame, window: tuple[int, int], title: str, out_dir: Path) -> SavedFigure | None:
    """Power of every channel against time, seconds from the window's start, the window shaded."""
    start_ns, end_ns = window
    fig, ax = plt.subplots(figsize=(9, 4.2))
    drawn = 0
    for channel in sorted(samples["channel"].unique().to_list()):
        rows = samples.filter(pl.col("channel") == channel).sort("t_ns")
        t_s = (rows["t_ns"].to_numpy().astype(np.float64) - start_ns) / 1e9
        power = _channel_power(t_s, rows["power_w"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
                               rows["energy_j"].cast(pl.Float64).fill_null(np.nan).to_numpy())
        if power is None:
            continue
        ax.plot(t_s, power, lw=1, label=f"{channel} ({rows['domain'][0]})")
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.axvspan(0, (end_ns - start_ns) / 1e9, color="orange", alpha=0.18, label="measured window")
    ax.axvline(0, color="orange", lw=1)
    ax.axvline((end_ns - start_ns) / 1e9, color="orange", lw=1)
    ax.set_xlabel("seconds from the start of the measured window")
    ax.set_ylabel("power (W)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_title(title, fontsize=9)
    fig.suptitle("Power trace of one run (sampled for the runner's whole life)", fontsize=11)
    fig.tight_layout()
    return _save(fig, out_dir, "power_trace")
