"""A bare ONNX Runtime loop in Python: what a user writes, with nothing of greenrt (bench/client_overhead.py).

    python ort_loop.py MODEL.onnx INPUTS.json THREADS WARMUP ITERATIONS

THREADS 0 keeps ONNX Runtime's default. The session is made as the Python runner makes it for the CPU provider
(every graph optimisation, intra-op threads); WARMUP untimed `session.run` calls, then ITERATIONS timed ones with one
clock read after each, so the per-iteration latencies sum to the loop's whole time. Prints one JSON object.
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


def read_inputs(index_path: Path) -> dict[str, np.ndarray]:
    """The arrays of greenrt's inputs file (runners/inputs_file.py's format), read without greenrt's code."""
    index = json.loads(index_path.read_text())
    return {e["name"]: np.fromfile(index_path.parent / e["file"], dtype=np.dtype(e["dtype"]).newbyteorder("<"))
            .reshape(e["shape"]).astype(e["dtype"]) for e in index["inputs"]}


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print("usage: ort_loop.py MODEL.onnx INPUTS.json THREADS WARMUP ITERATIONS", file=sys.stderr)
        return 2
    model, index, (threads, warmup, iterations) = argv[0], Path(argv[1]), map(int, argv[2:])
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads > 0:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    feed = read_inputs(index)
    run = session.run
    for _ in range(warmup):
        run(None, feed)
    clock = time.monotonic_ns
    stamps = [0] * (iterations + 1)
    stamps[0] = clock()
    for i in range(1, iterations + 1):
        run(None, feed)
        stamps[i] = clock()
    print(json.dumps({"language": "python", "engine": "onnxruntime", "threads": threads or None,
                      "warmup_iterations": warmup, "versions": {"onnxruntime": ort.__version__,
                                                                "python": sys.version.split()[0]},
                      "latencies_ns": [b - a for a, b in zip(stamps, stamps[1:])], "loop_ns": stamps[-1] - stamps[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
