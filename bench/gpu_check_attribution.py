"""One-GPU attribution: while CUDA device 0 runs a load, every other GPU's energy over the same window stays at its
idle power. That is what lets a single-device run be charged its own GPU alone on a multi-GPU node.

All GPUs' energy counters (and power readings) are polled back to back through an idle window and then a load
window (torch matmuls on cuda:0, whose NVML index is matched by UUID). A GPU's mean power in a window is taken
between the first and the last change of its counter seen in it: each change is seen within one poll, while the
window's own ends would be off by up to one counter period (about 100 ms on Hopper). Without a counter, the mean of
the polled power readings. The verdicts are pure (attribution_verdict); the polling takes any pynvml-like module and
a load with start/tick/stop, so it is tested with a fake NVML; TorchMatmulLoad is the load on a real GPU.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np

NS_PER_S = 1_000_000_000
TOLERANCE_W = 5.0  # an idle GPU's mean power wanders by a few watts (temperature, fans): within this it "stays"
TOLERANCE_FRACTION = 0.05  # ... or within this share of its idle power, whichever is larger
MIN_RISE_W = 20.0  # the loaded GPU must rise at least this much, else the check cannot tell anything


def counter_mean_power(t_ns: Sequence[int], energy_mj: Sequence[float]) -> dict[str, Any]:
    """Mean power (W) of a polled cumulative counter in mJ: between its first and last change, else its ends."""
    t = np.asarray(t_ns, dtype=np.int64)
    e = np.asarray(energy_mj, dtype=np.float64)
    if t.size < 2 or t[-1] <= t[0]:
        return {"mean_w": None, "method": "fewer than two readings", "changes": 0}
    changed = np.flatnonzero(np.diff(e) != 0) + 1
    if changed.size >= 2 and t[changed[-1]] > t[changed[0]]:
        first, last = changed[0], changed[-1]
        method = "between the counter's first and last change"
    else:
        first, last = 0, t.size - 1
        method = "between the window's ends (the counter changed less than twice)"
    mean = (e[last] - e[first]) / 1e3 / ((t[last] - t[first]) / NS_PER_S)
    return {"mean_w": float(mean), "method": method, "changes": int(changed.size),
            "seconds": float((t[last] - t[first]) / NS_PER_S)}


def window_mean_power(t_ns: Sequence[int], energy_mj: Sequence[float], power_mw: Sequence[float]) -> dict[str, Any]:
    """A GPU's mean power over a polled window: its counter where it moved, else its power readings."""
    t = np.asarray(t_ns, dtype=np.int64)
    e = np.asarray(energy_mj, dtype=np.float64)
    p = np.asarray(power_mw, dtype=np.float64)
    ok = np.isfinite(e)
    if ok.sum() >= 2:
        counter = counter_mean_power(t[ok], e[ok])
        if counter["mean_w"] is not None and counter["changes"] > 0:
            return counter
    ok_p = np.isfinite(p)
    if ok_p.any():
        return {"mean_w": float(p[ok_p].mean() / 1e3), "method": "mean of the power readings",
                "changes": None, "readings": int(ok_p.sum())}
    return {"mean_w": None, "method": "no energy counter or power reading answered", "changes": None}


def attribution_verdict(gpus: Sequence[dict[str, Any]], load_index: int, how_matched: str,
                        tolerance_w: float = TOLERANCE_W, tolerance_fraction: float = TOLERANCE_FRACTION,
                        min_rise_w: float = MIN_RISE_W) -> dict[str, Any]:
    """From each GPU's {index, name, idle_w, load_w}: did the load show on its GPU only?

    checked False (and why) where it cannot be told: one GPU, the loaded GPU unreadable or its rise too small.
    ok False where another GPU rose beyond the tolerance, or a GPU other than the matched one rose most."""
    rows = []
    for gpu in gpus:
        idle, load = gpu.get("idle_w"), gpu.get("load_w")
        change = load - idle if idle is not None and load is not None else None
        allowed = max(tolerance_w, tolerance_fraction * idle) if idle is not None else None
        rows.append({**gpu, "change_w": change, "change_pct": 100.0 * change / idle if change is not None and idle
                     else None, "allowed_w": allowed, "loaded": gpu.get("index") == load_index,
                     "stays_idle": None if change is None or gpu.get("index") == load_index else abs(change) <= allowed})
    out: dict[str, Any] = {"load_index": load_index, "how_matched": how_matched, "gpus": rows,
                           "tolerance": f"max({tolerance_w:g} W, {100 * tolerance_fraction:g}% of idle)",
                           "checked": False, "ok": None}
    loaded = next((r for r in rows if r["loaded"]), None)
    if loaded is None:
        return {**out, "verdict": f"not checked: NVML lists no GPU of index {load_index} (CUDA device 0)"}
    if loaded["change_w"] is None:
        return {**out, "verdict": f"not checked: GPU {load_index}'s power could not be read in both windows"}
    top = max((r for r in rows if r["change_w"] is not None), key=lambda r: r["change_w"])
    if top["index"] != load_index and top["change_w"] >= min_rise_w:
        return {**out, "checked": True, "ok": False,
                "verdict": (f"GPU {top['index']} rose most (+{top['change_w']:.1f} W), not GPU {load_index} that CUDA "
                            f"device 0 was matched to ({how_matched}; it changed {loaded['change_w']:+.1f} W)")}
    if loaded["change_w"] < min_rise_w:
        return {**out, "verdict": f"not checked: the load raised GPU {load_index} by only {loaded['change_w']:.1f} W "
                                  f"(under {min_rise_w:g} W), too little to tell where it shows"}
    if len(rows) == 1:
        return {**out, "verdict": (f"attribution across GPUs could not be checked: NVML lists one GPU, so no other "
                                   f"GPU's energy could be charged by mistake here (the load raised GPU {load_index} "
                                   f"from {loaded['idle_w']:.1f} W to {loaded['load_w']:.1f} W)")}
    readable = [r for r in rows if not r["loaded"] and r["change_w"] is not None]
    unreadable = [r["index"] for r in rows if not r["loaded"] and r["change_w"] is None]
    moved = [r for r in readable if not r["stays_idle"]]
    problems = [f"GPU {r['index']} went from {r['idle_w']:.1f} W idle to {r['load_w']:.1f} W "
                 f"({r['change_w']:+.1f} W, allowed {r['allowed_w']:.1f})" for r in moved]
    tail = f"; GPU(s) {', '.join(map(str, unreadable))} unreadable" if unreadable else ""
    if not readable:
        return {**out, "verdict": f"not checked: no other GPU could be read{tail}"}
    if problems:
        return {**out, "checked": True, "ok": False, "verdict": "; ".join(problems) + tail}
    return {**out, "checked": True, "ok": True,
            "verdict": (f"the load raised GPU {load_index} by {loaded['change_w']:.1f} W; the {len(readable)} other "
                        f"GPU(s) stayed within {out['tolerance']} of their idle power{tail}")}


# ---------------------------------------------------------------------------------------------------------------
# Polling (any pynvml-like module) and the load on a real GPU.


def _read(fn: Callable[[Any], Any], handle: Any) -> float:
    try:
        return float(fn(handle))
    except Exception:
        return float("nan")


def poll_all(pynvml: Any, handles: Sequence[Any], seconds: float, tick: Callable[[], Any] | None = None,
             tick_every_s: float = 0.005, poll_every_s: float = 0.001,
             clock: Callable[[], int] = time.monotonic_ns) -> list[dict[str, list]]:
    """Per GPU {t, energy_mj, power_mw}: every counter and power reading about every `poll_every_s` (1 ms: far finer
    than the counter's period, without a million readings), for `seconds`."""
    series = [{"t": [], "energy_mj": [], "power_mw": []} for _ in handles]
    energy, power = pynvml.nvmlDeviceGetTotalEnergyConsumption, pynvml.nvmlDeviceGetPowerUsage
    end = clock() + int(seconds * NS_PER_S)
    next_tick = 0
    while (now := clock()) < end:
        if tick is not None and now >= next_tick:
            tick()
            next_tick = now + int(tick_every_s * NS_PER_S)
        for handle, out in zip(handles, series):
            before = clock()
            e = _read(energy, handle)
            out["t"].append((before + clock()) // 2)
            out["energy_mj"].append(e)
            out["power_mw"].append(_read(power, handle))
        rest = poll_every_s - (clock() - now) / NS_PER_S
        if rest > 0:
            time.sleep(rest)
    return series


def measure_attribution(pynvml: Any, load: Any, load_index: int, how_matched: str, idle_s: float = 3.0,
                        load_s: float = 5.0, settle_s: float = 1.0) -> dict[str, Any]:
    """Idle window, then the load started, settled and polled over its own window; verdicts. NVML initialised."""
    count = pynvml.nvmlDeviceGetCount()
    handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    names = []
    for handle in handles:
        try:
            name = pynvml.nvmlDeviceGetName(handle)
            names.append(name.decode() if isinstance(name, bytes) else str(name))
        except Exception as exc:
            names.append(f"unreadable ({type(exc).__name__})")
    idle = poll_all(pynvml, handles, idle_s)
    load.start()
    try:
        poll_all(pynvml, handles, settle_s, tick=load.tick)
        loaded = poll_all(pynvml, handles, load_s, tick=load.tick)
    finally:
        stopped = load.stop()
    gpus = []
    for index, (name, quiet, busy) in enumerate(zip(names, idle, loaded)):
        i, b = (window_mean_power(s["t"], s["energy_mj"], s["power_mw"]) for s in (quiet, busy))
        gpus.append({"index": index, "name": name, "idle_w": i["mean_w"], "load_w": b["mean_w"],
                     "idle_method": i["method"], "load_method": b["method"], "polls": len(busy["t"])})
    verdict = attribution_verdict(gpus, load_index, how_matched)
    return {**verdict, "idle_s": idle_s, "load_s": load_s, "settle_s": settle_s, "load": getattr(load, "text", ""),
            "load_stats": stopped}


class TorchMatmulLoad:
    """fp16 matmuls on CUDA device 0, kept about two batches deep: the GPU stays busy, the queue never grows."""

    def __init__(self, torch: Any, n: int = 8192, per_batch: int = 4) -> None:
        self.torch, self.n, self.per_batch = torch, n, per_batch
        self.text = f"{per_batch} fp16 {n}x{n} matmuls per batch on cuda:0, at most 2 batches queued"
        self.pending: list[Any] = []
        self.batches = 0

    def start(self) -> None:
        torch = self.torch
        self.device = torch.device("cuda", 0)
        self.a = torch.randn(self.n, self.n, device=self.device, dtype=torch.float16)
        self.c = torch.empty_like(self.a)
        self.started = time.monotonic()

    def tick(self) -> None:
        self.pending = [e for e in self.pending if not e.query()]
        while len(self.pending) < 2:
            for _ in range(self.per_batch):
                self.torch.mm(self.a, self.a, out=self.c)
            event = self.torch.cuda.Event()
            event.record()
            self.pending.append(event)
            self.batches += 1

    def stop(self) -> dict[str, Any]:
        self.torch.cuda.synchronize(self.device)
        seconds = time.monotonic() - self.started
        self.a = self.c = None
        self.pending = []
        self.torch.cuda.empty_cache()
        flops = 2.0 * self.n ** 3 * self.per_batch * self.batches
        return {"batches": self.batches, "seconds": seconds, "tflops": flops / seconds / 1e12 if seconds else None}
