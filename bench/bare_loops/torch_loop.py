"""A bare TorchScript loop in Python: what a user writes, with nothing of greenrt (bench/client_overhead.py).

    python torch_loop.py MODEL.pt INPUTS.json THREADS WARMUP ITERATIONS

THREADS 0 keeps torch's default (one per core). `torch.jit.load`, inputs positional in the inputs file's order (the
export's), `forward` under `torch.inference_mode()`; WARMUP untimed calls, then ITERATIONS timed ones with one clock
read after each, so the per-iteration latencies sum to the loop's whole time. Prints one JSON object.
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch


def read_inputs(index_path: Path) -> list[torch.Tensor]:
    """The tensors of greenrt's inputs file (runners/inputs_file.py's format) in its order, without greenrt's code."""
    index = json.loads(index_path.read_text())
    return [torch.from_numpy(np.fromfile(index_path.parent / e["file"], dtype=np.dtype(e["dtype"]).newbyteorder("<"))
                             .reshape(e["shape"]).astype(e["dtype"])) for e in index["inputs"]]


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print("usage: torch_loop.py MODEL.pt INPUTS.json THREADS WARMUP ITERATIONS", file=sys.stderr)
        return 2
    model, index, (threads, warmup, iterations) = argv[0], Path(argv[1]), map(int, argv[2:])
    if threads > 0:
        torch.set_num_threads(threads)
    module = torch.jit.load(model, map_location="cpu").eval()
    inputs = read_inputs(index)
    clock = time.monotonic_ns
    stamps = [0] * (iterations + 1)
    with torch.inference_mode():
        for _ in range(warmup):
            module(*inputs)
        stamps[0] = clock()
        for i in range(1, iterations + 1):
            module(*inputs)
            stamps[i] = clock()
    print(json.dumps({"language": "python", "engine": "torch", "threads": torch.get_num_threads(),
                      "warmup_iterations": warmup, "versions": {"torch": torch.__version__,
                                                                "python": sys.version.split()[0]},
                      "latencies_ns": [b - a for a, b in zip(stamps, stamps[1:])], "loop_ns": stamps[-1] - stamps[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
