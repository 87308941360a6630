"""Synthetic journal records shaped like the sweep writes them, for tests of the store and the tables."""


def make_record(run_id="r000-a", *, model="resnet50", batch_size=2, runtime="torch/native/cpu", status="ok",
                latencies_ms=(10.0, 20.0, 30.0, 40.0), window_s=0.1, channels=None, index=0, failure=None):
    framework, model_format, provider = runtime.split("/")
    start = 1_000_000_000
    result = None
    if status == "ok":
        result = {"status": "ok", "iterations": len(latencies_ms), "latencies_ns": [int(x * 1e6) for x in latencies_ms],
                  "window_start_ns": start, "window_end_ns": start + int(window_s * 1e9),
                  "load_seconds": 1.5, "warmup_seconds": 0.5, "engine_build_seconds": 0.2,
                  "peak_host_rss_bytes": 512 * 2**20, "peak_device_bytes": None, "threads": 2,
                  "provider_used": None, "versions": {framework: "9.9"}, "output_digest": {"sha256": "ab" * 32}}
    energy = {"status": "unavailable", "reason": "no readable energy sensor on this host", "channels": {}}
    if channels is not None:
        energy = {"status": "ok", "reason": "", "channels": channels}
    return {"schema": 1, "run_id": run_id, "index": index, "repetition": 0, "model": model, "batch_size": batch_size,
            "runtime": runtime, "framework": framework, "model_format": model_format, "provider": provider,
            "precision": "fp32", "status": status, "failure": failure, "result": result, "energy": energy,
            "launcher": "local", "started_at": "2026-11-26T00:00:00+00:00"}


def channel(domain, raw_j, dynamic_j=None, status="ok"):
    return {"domain": domain, "status": status, "raw_j": raw_j, "dynamic_j": dynamic_j, "method": "counter",
            "reason": "" if status == "ok" else "window not covered"}
