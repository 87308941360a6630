"""What `greenrt run` prints per generative runtime (orchestrator/cli/generation_summary.py): medians of each cell's
runs' TTFT, TPOT and tokens/s from their generation payloads, and the fidelity verdict, the reference and a failure
said as such; classifier runs are not its business."""
from __future__ import annotations

from orchestrator.cli.generation_summary import COLUMNS, generation_rows, generation_table
from orchestrator.results.record import RunRecord


def spread(median: float) -> dict:
    return {"n": 3, "median": median, "q1": median, "q3": median, "min": median, "max": median}


def record(runtime: str, ttft: float | None = 10.0, tpot: float = 2.0, rate: float = 50.0, ok: bool = True,
           verdict: str | None = None, reference: str | None = "refs/r.npz", precision: str = "fp32") -> RunRecord:
    data = {"run_id": f"r-{runtime}", "model": "llama-tiny", "batch_size": 1, "runtime": runtime,
            "precision": precision, "status": "ok" if ok else "failed", "reference_outputs": reference}
    if ok:
        data["generation"] = {"prompt_tokens": 8, "new_tokens": 4, "batch_size": 1, "iterations": 3,
                              "ttft_ms": spread(ttft) if ttft is not None else None, "tpot_ms": spread(tpot),
                              "output_tokens_per_s": spread(rate)}
        if verdict:
            data["fidelity"] = {"status": "compared", "verdict": verdict}
    else:
        data["failure"] = {"kind": "export", "message": "ort-genai conversion failed: no such op"}
    return RunRecord.model_validate(data)


def test_each_generative_cell_is_one_row_of_medians_with_its_verdict():
    records = [record("torch/transformers/cpu", ttft=30, reference=None),
               record("ctranslate2/ct2-from-hf/cpu", ttft=12, verdict="faithful: max abs error 1e-5"),
               record("ctranslate2/ct2-from-hf/cpu", ttft=14, tpot=4, rate=70, verdict="faithful: max abs error 1e-5"),
               record("ctranslate2/ct2-from-hf/cpu", ttft=40, verdict="faithful", ok=False),
               record("onnxruntime-genai/genai-from-hf/cpu", ok=False),
               record("torch/native/cpu")]
    rows = generation_rows(records)
    assert [r[0] for r in rows] == ["torch/transformers/cpu", "ctranslate2/ct2-from-hf/cpu",
                                    "onnxruntime-genai/genai-from-hf/cpu"]
    torch, ct2, ort = rows
    assert torch[3:] == ("1/1", "30", "2", "50", "the reference (transformers, CPU, fp32)")
    assert ct2[3:] == ("2/3", "13", "3", "60", "faithful: max abs error 1e-5")
    assert ort[3:7] == ("0/1", "-", "-", "-") and ort[7].startswith("failed (export): ort-genai conversion failed")
    assert len(COLUMNS) == len(torch)


def test_no_table_where_no_run_was_generative():
    assert generation_table([record("torch/native/cpu")]) is None
    assert generation_table([record("torch/transformers/cpu", reference=None)]).row_count == 1
