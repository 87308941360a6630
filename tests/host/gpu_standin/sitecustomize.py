"""Test-only stand-in for a GPU runner on the simulated NVIDIA host; never on a normal path.

The simulated host (tests/host/simulated_nvidia) has no CUDA, so a real GPU runner stops before its window. The
host-side tests of GPU attribution need a GPU run that succeeds: a sweep config puts this folder on a native GPU
runtime's PYTHONPATH through its `[environment."<runtime>"]` table, with GREENRT_TEST_GPU_STANDIN=1. The runner
process then measures the same framework's native CPU runtime instead (the request is rewritten to it, beside the
original): a real runner and a real window, whose outputs match the framework's CPU reference, while the process
lives like a GPU runner, so the simulator draws load power on exactly the GPUs its CUDA_VISIBLE_DEVICES names.
"""
import json
import os
import sys

if os.environ.get("GREENRT_TEST_GPU_STANDIN") and "--request" in sys.argv and "run" in sys.argv:
    _at = sys.argv.index("--request") + 1
    with open(sys.argv[_at]) as _fh:
        _request = json.load(_fh)
    _framework, _format, _provider = _request["runtime"].split("/")
    if _provider != "cpu":
        _request["runtime"] = f"{_framework}/{_format}/cpu"
        _path = sys.argv[_at] + ".standin-cpu.json"
        with open(_path, "w") as _fh:
            json.dump(_request, _fh)
        sys.argv[_at] = _path
        print(f"gpu stand-in: measuring {_request['runtime']} on the CPU, CUDA_VISIBLE_DEVICES="
              f"{os.environ.get('CUDA_VISIBLE_DEVICES')}", file=sys.stderr, flush=True)
