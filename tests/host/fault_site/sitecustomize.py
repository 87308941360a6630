"""Test-only faults for greenrt's fault-injection tests (tests/host/faults/test_faults_*.py); never on a normal path.

A sweep config puts this folder on one runtime's PYTHONPATH through its `[environment."<runtime>"]` table, with
GREENRT_TEST_FAULT naming what the runner process does instead of running:
  crash    print a message and exit 3 (no result)
  hang     sleep far past any time limit
  garbage  write bytes that are not JSON where the result belongs, and exit 0
  alloc    join the memory cgroup GREENRT_TEST_CGROUP (cgroup.procs) and allocate until the kernel kills it
  slow     run as usual, but every ONNX Runtime inference call sleeps GREENRT_TEST_SLOW_S seconds first (a runtime
           clearly slower than its rivals, for the adaptive sweep's tests)
"""
import json
import os
import sys
import time

_FAULT = os.environ.get("GREENRT_TEST_FAULT")
if _FAULT and "--request" in sys.argv:
    if _FAULT == "crash":
        print("fault-injection: crashing on purpose", file=sys.stderr, flush=True)
        os._exit(3)
    elif _FAULT == "hang":
        print("fault-injection: hanging on purpose", file=sys.stderr, flush=True)
        time.sleep(3600)
    elif _FAULT == "garbage":
        request = json.loads(open(sys.argv[sys.argv.index("--request") + 1]).read())
        with open(request["result_path"], "wb") as fh:
            fh.write(b"\x00garbage{not json")
        print("fault-injection: wrote garbage as the result", file=sys.stderr, flush=True)
        os._exit(0)
    elif _FAULT == "slow":
        try:
            import onnxruntime
        except ImportError:  # an export in another framework's environment: nothing to slow down
            onnxruntime = None
        if onnxruntime is not None:
            _delay = float(os.environ.get("GREENRT_TEST_SLOW_S", "0.2"))
            for _name in ("run", "run_with_iobinding"):
                def _slowed(self, *args, _original=getattr(onnxruntime.InferenceSession, _name), **kwargs):
                    time.sleep(_delay)
                    return _original(self, *args, **kwargs)
                setattr(onnxruntime.InferenceSession, _name, _slowed)
    elif _FAULT == "alloc":
        with open(os.path.join(os.environ["GREENRT_TEST_CGROUP"], "cgroup.procs"), "w") as fh:
            fh.write(str(os.getpid()))
        print("fault-injection: allocating until killed", file=sys.stderr, flush=True)
        hoard = []
        while True:
            hoard.append(bytearray(16 << 20))  # zero-filled: every page is touched
