"""Fidelity across clients (issue 25): a non-Python client's output digests against its Python client's (unit)."""
from __future__ import annotations

from orchestrator.analysis.client_fidelity import (DIFFERENT, IDENTICAL, UNKNOWN, client_digests,
                                                   python_client_of)

ORT = "onnxruntime/onnx-from-torch/cpu"
TS = "torch/torchscript/cpu"


def _row(runtime: str, digest: str | None, status: str = "ok", model: str = "mobilenet_v2", batch: int = 1) -> dict:
    return {"runtime": runtime, "model": model, "batch_size": batch, "precision": "fp32", "status": status,
            "output_sha256": digest}


def test_the_python_client_of_each_client():
    assert python_client_of(f"{ORT}@node") == f"{ORT}@python"  # the same ONNX Runtime version as Node's
    assert python_client_of(f"{TS}@cpp") == TS
    assert python_client_of("torch/aoti/cpu@cpp") == "torch/aoti/cpu"
    assert python_client_of(ORT) is None and python_client_of(f"{ORT}@python") is None


def test_the_same_bytes_from_both_clients_are_identical():
    rows = [_row(f"{ORT}@node", "aa"), _row(f"{ORT}@node", "aa"), _row(f"{ORT}@python", "aa"), _row(ORT, "zz"),
            _row(f"{TS}@cpp", "bb"), _row(TS, "bb")]
    found = {c.runtime: c for c in client_digests(rows)}
    assert set(found) == {f"{ORT}@node", f"{TS}@cpp"}  # the plain ORT id (another engine version) is no partner
    node = found[f"{ORT}@node"]
    assert (node.python_runtime, node.verdict, node.digests) == (f"{ORT}@python", IDENTICAL, ("aa",))
    assert node.line == (f"mobilenet_v2 bs1 fp32: {ORT}@node vs {ORT}@python: output digests identical (aa)")
    assert found[f"{TS}@cpp"].verdict == IDENTICAL


def test_different_bytes_are_said_loudly():
    (found,) = client_digests([_row(f"{TS}@cpp", "bb"), _row(TS, "cc"), _row(TS, "cc")])
    assert found.verdict == DIFFERENT and "DIFFER (1 from torch/torchscript/cpu@cpp, 1 from" in found.line
    # A client that is not even consistent with itself differs too.
    (found,) = client_digests([_row(f"{TS}@cpp", "bb"), _row(f"{TS}@cpp", "cc"), _row(TS, "bb")])
    assert found.verdict == DIFFERENT


def test_a_side_without_an_ok_run_is_not_compared_and_a_missing_partner_is_no_comparison():
    (found,) = client_digests([_row(f"{ORT}@node", None, status="failed"), _row(f"{ORT}@python", "aa")])
    assert found.verdict == UNKNOWN and f"not compared ({ORT}@node has no ok run" in found.line
    assert client_digests([_row(f"{ORT}@node", "aa"), _row(ORT, "aa")]) == []
    assert client_digests([_row(f"{ORT}@node", "aa"), _row(f"{ORT}@python", "aa", batch=64)]) == []


def test_cells_are_compared_apart_and_in_a_stable_order():
    rows = [_row(f"{TS}@cpp", "b64", batch=64), _row(TS, "b64", batch=64), _row(f"{TS}@cpp", "r", model="resnet50"),
            _row(TS, "r", model="resnet50"), _row(f"{TS}@cpp", "b1"), _row(TS, "b1")]
    assert [(c.model, c.batch_size) for c in client_digests(rows)] == [("mobilenet_v2", 1), ("mobilenet_v2", 64),
                                                                      ("resnet50", 1)]
    assert all(c.verdict == IDENTICAL for c in client_digests(rows))
