"""A synthetic generative sweep: records of generate calls shaped like runs.jsonl's, with hand-chosen figures.

llama-tiny, batch 1, fp32 (P = 64, N = 16, 4 iterations a run, 5 runs a runtime), energy on one RAPL package:
  torch/transformers/cpu               request 2.6..3.0 J  TTFT 20 ms  TPOT 5 ms     (the reference: not compared)
  onnxruntime-genai/genai-from-hf/cpu  request 1.7..2.1 J  TTFT 10 ms  TPOT 3 ms     faithful
  llama.cpp/gguf-from-hf/cpu           request 1.0..1.4 J  TTFT 12 ms  TPOT 2.5 ms   faithful (lowest energy)
llama-tiny, batch 1, int4: onnxruntime-genai 0.9..1.3 J, llama.cpp 0.3..0.7 J (quantized criterion).
The prefill takes 30 % of a request's energy. `journal(energy=False)` is the same runs on a host without sensors.
"""
from __future__ import annotations

from orchestrator.results.generation_payload import GenerationEnergy, GenerationTimesShape, PhaseTotal, generation_payload
from testkit.records import channel, make_record

MS = 1_000_000
TORCH = "torch/transformers/cpu"
ORT_GENAI = "onnxruntime-genai/genai-from-hf/cpu"
LLAMA_CPP = "llama.cpp/gguf-from-hf/cpu"
P, N, B, ITERATIONS, RUNS = 64, 16, 1, 4, 5
PREFILL_SHARE = 0.3
# runtime -> (request energy of the first run, TTFT ms, TPOT ms); each later run adds 0.1 J
FP32 = {TORCH: (2.6, 20.0, 5.0), ORT_GENAI: (1.7, 10.0, 3.0), LLAMA_CPP: (1.0, 12.0, 2.5)}
INT4 = {ORT_GENAI: (0.9, 8.0, 2.0), LLAMA_CPP: (0.3, 9.0, 1.5)}
UNAVAILABLE = "no readable energy sensor on this host: rapl: no powercap tree at /fake"


def _fidelity(runtime: str, precision: str) -> dict | None:
    if runtime == TORCH:
        return None
    if precision == "int4":
        return {"status": "ok", "faithful": None, "acceptable": True, "criterion": "quantized", "top1_agreement": 0.97,
                "verdict": "quantized: next-token top-1 0.97, KL 0.02; within the quantized thresholds"}
    return {"status": "ok", "faithful": True, "criterion": "fp32", "max_abs_error": 2e-5,
            "min_cosine_similarity": 0.999999, "top1_agreement": 1.0,
            "verdict": "faithful: prefill logits max abs error 2e-05, greedy tokens agree 16/16"}


def run(run_id: str, index: int, runtime: str, precision: str, request_j: float, ttft_ms: float, tpot_ms: float,
        repetition: int, energy: bool = True) -> dict:
    start = 1_000_000_000
    duration = int((ttft_ms + tpot_ms * (N - 1)) * MS)
    phases = [[start + k * duration, start + k * duration + int(ttft_ms * MS), start + (k + 1) * duration]
              for k in range(ITERATIONS)]
    window = (start, start + ITERATIONS * duration)
    times = GenerationTimesShape(prompt_tokens=P, new_tokens=N, batch_size=B, phases_ns=phases)
    total = request_j * ITERATIONS * B
    record = make_record(run_id, model="llama-tiny", batch_size=B, runtime=runtime,
                         latencies_ms=[duration / MS] * ITERATIONS, window_s=(window[1] - window[0]) / 1e9,
                         channels={"package-0": channel("cpu", total, total / 2)} if energy else None, index=index)
    record["result"]["generation"] = times.model_dump()
    record["precision"], record["repetition"], record["samples_path"] = precision, repetition, None
    by_phase = None
    if energy:
        prefill_s, decode_s = ITERATIONS * ttft_ms / 1e3, ITERATIONS * tpot_ms * (N - 1) / 1e3
        by_phase = GenerationEnergy(
            status="ok", split_iterations=ITERATIONS, window_j=total, iterations_j=total, iterations_dynamic_j=total / 2,
            prefill=PhaseTotal(seconds=prefill_s, intervals=ITERATIONS, median_interval_ms=ttft_ms,
                               raw_j=total * PREFILL_SHARE, dynamic_j=total * PREFILL_SHARE / 2,
                               edge_uncertainty_j=0.01, short_channels=[]),
            decode=PhaseTotal(seconds=decode_s, intervals=ITERATIONS, median_interval_ms=tpot_ms * (N - 1),
                              raw_j=total * (1 - PREFILL_SHARE), dynamic_j=total * (1 - PREFILL_SHARE) / 2,
                              edge_uncertainty_j=0.01, short_channels=[]),
            gaps=PhaseTotal(seconds=0.0, intervals=ITERATIONS + 1, raw_j=0.0, dynamic_j=0.0), unsplit_j=0.0,
            closure_j=0.0)
    else:
        record["energy"]["reason"] = UNAVAILABLE
        by_phase = GenerationEnergy.unavailable(UNAVAILABLE)
    record["generation"] = generation_payload(times, window, by_phase).model_dump(mode="json")
    fidelity = _fidelity(runtime, precision)
    if fidelity:
        record["fidelity"] = fidelity
        record["reference_outputs"] = "references/llama-tiny.npz"
    return record


def journal(energy: bool = True) -> list[dict]:
    records, index = [], 0
    for precision, table in (("fp32", FP32), ("int4", INT4)):
        for runtime, (request_j, ttft, tpot) in table.items():
            for rep in range(RUNS):
                records.append(run(f"g{index:03d}-{runtime.split('/')[0]}-{precision}", index, runtime, precision,
                                   request_j + 0.1 * rep, ttft, tpot, rep, energy))
                index += 1
    return records
