"""Test-only stand-in for a GPU runner on the simulated NVIDIA host; never on a normal path.

The simulated host (tests/host/simulated_nvidia) has no CUDA, so a real GPU runner stops before its window. The
host-side tests of GPU attribution need a GPU run that succeeds: a sweep config puts this folder on a GPU runtime's
PYTHONPATH through its `[environment."<runtime>"]` table, with GREENRT_TEST_GPU_STANDIN = the window's seconds. The
runner process then lives like a runner (so the simulator makes the GPUs its CUDA_VISIBLE_DEVICES names busy),
times a window of sleeps on the host's monotonic clock, and writes a valid result; no model runs.
"""
import json
import os
import sys
import time

_SECONDS = os.environ.get("GREENRT_TEST_GPU_STANDIN")
if _SECONDS and "--request" in sys.argv and "run" in sys.argv:
    _began = time.monotonic_ns()
    _request = json.loads(open(sys.argv[sys.argv.index("--request") + 1]).read())
    time.sleep(0.5)  # "warm-up": the simulator looks for runners every 100 ms and then draws load power
    _latencies, _start = [], time.monotonic_ns()
    while time.monotonic_ns() - _start < float(_SECONDS) * 1e9:
        _t = time.monotonic_ns()
        time.sleep(0.05)
        _latencies.append(time.monotonic_ns() - _t)
    _end = time.monotonic_ns()
    _result = {"run_id": _request["run_id"], "runtime": _request["runtime"], "model": _request["model"],
               "batch_size": _request["batch_size"], "status": "ok", "devices": ["stand-in"],
               "window_start_ns": _start, "window_end_ns": _end, "iterations": len(_latencies),
               "latencies_ns": _latencies, "process_start_ns": _began, "first_inference_ns": _start,
               "versions": {}, "schema": 1}
    _path = _request["result_path"]
    with open(_path + ".tmp", "w") as _fh:
        json.dump(_result, _fh)
    os.replace(_path + ".tmp", _path)
    print(f"gpu stand-in: window of {(_end - _start) / 1e9:.2f} s on CUDA_VISIBLE_DEVICES="
          f"{os.environ.get('CUDA_VISIBLE_DEVICES')}", file=sys.stderr, flush=True)
    os._exit(0)
