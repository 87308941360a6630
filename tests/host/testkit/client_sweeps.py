"""A sweep of the client languages (issue 25), and what every launcher's run of it must show: mobilenet_v2 at batch
1 from ONNX Runtime's Python (@python) and Node.js (@node) clients, and PyTorch's TorchScript file from Python and
C++ (@cpp); used by tests/host/execution/test_client_sweep.py (local) and test_client_docker.py."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from testkit.powercap import make_powercap_tree
from testkit.sweep_helpers import PACKAGE_W, greenrt, steady_draw, write_config

ORT = "onnxruntime/onnx-from-torch/cpu"
TS = "torch/torchscript/cpu"
RUNTIMES = [f"{ORT}@python", f"{ORT}@node", TS, f"{TS}@cpp"]


def client_sweep(tmp: Path, launcher: str):
    """mobilenet_v2 at batch 1, one repetition, one thread (both clients of an engine alike), on a RAPL tree."""
    tree = make_powercap_tree(tmp / "powercap", packages=1, dram=True)
    config = write_config(tmp / "clients.toml", name="clients", batch_sizes="[1]", threads=1,
                          runtimes=json.dumps(RUNTIMES))
    out = tmp / launcher
    with steady_draw(tree):
        done = greenrt("sweep", "--config", str(config), "--out", str(out), "--powercap-root", str(tree.root),
                       launcher=launcher, timeout=1800)
    return done, out


def records(out: Path) -> dict[str, dict]:
    return {r["runtime"]: r for r in map(json.loads, (out / "runs.jsonl").read_text().splitlines())}


def check_client_sweep(done, out: Path, launcher: str) -> None:
    """What the local and the Docker launcher's client sweeps both show."""
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    by_runtime = records(out)
    assert sorted(by_runtime) == sorted(RUNTIMES)
    for runtime, record in by_runtime.items():
        assert record["status"] == "ok", (runtime, record.get("failure"))
        assert record["launcher"] == launcher
        assert record["fidelity"]["faithful"] is True, (runtime, record["fidelity"])  # against torch's native run
        assert record["energy"]["status"] == "ok"
    assert by_runtime[f"{ORT}@node"]["environment"] == by_runtime[f"{ORT}@python"]["environment"] == "onnxruntime-node"
    assert by_runtime[f"{TS}@cpp"]["environment"] == "torch"
    # The runner said which client it is, and the Python runner was named by the id without a suffix.
    assert by_runtime[f"{ORT}@node"]["result"]["runtime_facts"]["client"] == "node"
    assert by_runtime[f"{TS}@cpp"]["result"]["runtime_facts"]["client"] == "cpp"
    assert by_runtime[f"{ORT}@python"]["result"]["runtime"] == ORT
    # The same artifact for both clients of an engine, and the same output bytes.
    digest = {r: rec["result"]["output_digest"]["sha256"] for r, rec in by_runtime.items()}
    artifact = {r: rec["artifact"]["path"] for r, rec in by_runtime.items()}
    assert artifact[f"{ORT}@node"] == artifact[f"{ORT}@python"] and artifact[f"{TS}@cpp"] == artifact[TS]
    assert digest[f"{ORT}@node"] == digest[f"{ORT}@python"]
    assert digest[f"{TS}@cpp"] == digest[TS]
    assert f"fidelity across clients: mobilenet_v2 bs1 fp32: {ORT}@node vs {ORT}@python: output digests " \
           f"identical" in done.stdout
    assert f"{TS}@cpp vs {TS}: output digests identical" in done.stdout
    runs = pl.read_parquet(out / "tables/runs.parquet")
    assert sorted(runs["runtime"]) == sorted(RUNTIMES) and set(runs["status"]) == {"ok"}
    for row in runs.iter_rows(named=True):  # a non-Python runner's window is on the host's clock too
        assert row["cpu_energy_j"] == pytest.approx(PACKAGE_W * row["window_s"], rel=0.1), row["runtime"]
