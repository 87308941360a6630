"""Generation fidelity: a generative run's outputs ({"tokens": (B, N), "prefill_logits": (B, vocab)}) against the
reference run's (torch/transformers/cpu at fp32, same checkpoint, same prompt; its outputs also hold
"decode_margins"). numpy only; models/fidelity.py's compare_outputs dispatches here for such outputs.

Two criteria, never mixed (models/fidelity.py's names and tolerances):
- fp32, fp16 (and tf32): "faithful" when the prefill logits are within the precision's tolerance (max abs error
  <= abs + rel x max|reference|, and every row's cosine similarity >= its bound) AND the greedy tokens agree with
  the reference's over all N steps, or part from them only at a near-tie: a step where the reference's own best and
  second-best logits are closer than that same tolerance (random weights give tiny margins, and any reordering of
  float sums may then pick the other token; after that step the sequences legitimately differ). The agreeing
  prefix of each sequence is reported either way.
- quantized (int8, int4): never "faithful"; "acceptable" when the prefill logits keep a cosine similarity of at least
  QUANT_MIN_COSINE[precision] and the next-token distribution a KL divergence from the reference's of at most
  QUANT_MAX_KL. Next-token top-1 agreement and the greedy tokens' agreeing prefix are reported, not judged: with
  random weights the top logits are near-ties that any quantization reorders (FINDINGS).
Prefill logits are compared centred (each row less its mean: a constant shift is the same distribution, and some
runtimes give log-probabilities). A weight scaled in a converted file moves the prefill logits by the size of the
signal and fails either criterion.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

GENERATION_OUTPUTS = ("tokens", "prefill_logits")
MARGINS = "decode_margins"

# The quantized criterion for generation: int8 weights (per channel or per block) keep the logits' direction within
# 1 %, int4 (block 32/128, K-quants) within 5 %; a KL divergence of the next-token distribution above 0.1 nats is a
# distribution a user would notice in sampled text. Published int4 LLM quantizations stay below both.
QUANT_MIN_COSINE = {"int8": 0.99, "int4": 0.95}
QUANT_MAX_KL = 0.1


def is_generation(outputs: Mapping[str, Any]) -> bool:
    return all(name in outputs for name in GENERATION_OUTPUTS)


def centered(logits: np.ndarray) -> np.ndarray:
    """Each row less its mean: logits shifted by a constant give the same next-token distribution, and some
    runtimes return log-probabilities (logits less their log-sum-exp) rather than logits."""
    return logits - np.mean(logits, axis=1, keepdims=True)


def _row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    dots = np.sum(a * b, axis=1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    same = np.all(a == b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), np.where(same, 1.0, 0.0))
    return cos


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - np.max(x, axis=1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))


def kl_divergences(reference: np.ndarray, run: np.ndarray) -> np.ndarray:
    """Per row, KL(reference || run) of the softmax distributions, in nats."""
    p_log, q_log = _log_softmax(reference), _log_softmax(run)
    return np.sum(np.exp(p_log) * (p_log - q_log), axis=1)


def agreeing_prefixes(reference: np.ndarray, run: np.ndarray) -> np.ndarray:
    """Per sequence, how many leading tokens agree (N where all do)."""
    differs = reference != run
    first = np.argmax(differs, axis=1)
    return np.where(differs.any(axis=1), first, reference.shape[1])


def _shapes(reference: Mapping[str, np.ndarray], run: Mapping[str, np.ndarray]) -> None:
    missing = [name for name in GENERATION_OUTPUTS if name not in run]
    if missing:
        raise ValueError(f"the run lacks output(s) {', '.join(missing)}; it has {', '.join(sorted(run))}")
    for name in GENERATION_OUTPUTS:
        if np.shape(reference[name]) != np.shape(run[name]):
            raise ValueError(f"output {name}: shape {np.shape(run[name])} differs from the reference's "
                             f"{np.shape(reference[name])} (not the same batch, prompt, N or vocabulary)")


def compare_generation(reference: Mapping[str, np.ndarray], run: Mapping[str, np.ndarray],
                       precision: str = "fp32") -> dict[str, Any]:
    """The report models/fidelity.compare_outputs gives (criterion, faithful/acceptable, max abs error, cosine,
    top-1, tolerance, per output, verdict) plus "generation": token agreement, near-ties, KL divergence."""
    from models.fidelity_criteria import FP32, QUANTIZED, TOLERANCES, criterion_for

    _shapes(reference, run)
    criterion = criterion_for(precision)
    ref_logits = centered(np.asarray(reference["prefill_logits"], dtype=np.float64))
    run_logits = centered(np.asarray(run["prefill_logits"], dtype=np.float64))
    ref_tokens, run_tokens = np.asarray(reference["tokens"]), np.asarray(run["tokens"])
    finite = bool(np.all(np.isfinite(run_logits)))
    max_abs = float(np.max(np.abs(ref_logits - run_logits))) if ref_logits.size else 0.0
    cosines = _row_cosines(ref_logits, run_logits)
    cosine = float(np.min(cosines)) if cosines.size else 1.0
    top1 = float(np.mean(np.argmax(ref_logits, axis=1) == np.argmax(run_logits, axis=1)))
    kl = float(np.max(kl_divergences(ref_logits, run_logits))) if finite else float("inf")
    prefixes = agreeing_prefixes(ref_tokens, run_tokens)
    n = ref_tokens.shape[1]
    abs_tol, rel_tol, min_cosine = TOLERANCES.get(criterion, TOLERANCES[FP32])
    tolerance = abs_tol + rel_tol * (float(np.max(np.abs(ref_logits))) if ref_logits.size else 0.0)
    near_ties, unexplained = _partings(reference, prefixes, n, tolerance)
    generation = {"new_tokens": int(n), "agreeing_prefix": [int(p) for p in prefixes],
                  "token_agreement": float(np.mean(prefixes) / n) if n else 1.0,
                  "near_ties": near_ties, "unexplained_partings": unexplained,
                  "next_token_top1_agreement": top1, "max_kl_divergence": kl,
                  "margins": "reference decode_margins" if MARGINS in reference else "none in the reference"}
    if criterion == QUANTIZED:
        bound = QUANT_MIN_COSINE.get(precision, max(QUANT_MIN_COSINE.values()))
        acceptable = bool(finite and cosine >= bound and kl <= QUANT_MAX_KL)
        verdict = (f"quantized: prefill logits cosine {cosine:.4f}, KL divergence {kl:.3g} nats, next-token top-1 "
                   f"agreement {top1 * 100:.0f} %, greedy tokens agree over {generation['token_agreement'] * 100:.0f} "
                   f"% of {n}; {'within' if acceptable else 'OUTSIDE'} the {precision} thresholds (cosine >= "
                   f"{bound:g}, KL <= {QUANT_MAX_KL:g})")
        return _report(criterion, precision, None, acceptable, max_abs, cosine, top1, verdict,
                       {"min_cosine": bound, "max_kl_divergence": QUANT_MAX_KL}, tolerance, cosines, prefixes,
                       generation)
    logits_ok = bool(finite and max_abs <= tolerance and cosine >= min_cosine)
    faithful = logits_ok and not unexplained
    tokens_said = (f"greedy tokens agree over all {n}" if int(np.min(prefixes)) == n else
                   f"greedy tokens agree over {generation['token_agreement'] * 100:.0f} % of {n} "
                   f"({len(near_ties)} near-tie parting(s), {len(unexplained)} unexplained)")
    verdict = (f"{'faithful' if faithful else 'NOT faithful'}: prefill logits max abs error {max_abs:.3g}, cosine "
               f"{cosine:.6f} ({criterion} tolerance {abs_tol:g} + {rel_tol:g} x max|reference| = {tolerance:.3g}, "
               f"cosine >= {min_cosine:g}); {tokens_said}")
    return _report(criterion, precision, faithful, None, max_abs, cosine, top1, verdict,
                   {"abs": abs_tol, "rel": rel_tol, "min_cosine": min_cosine}, tolerance, cosines, prefixes,
                   generation)


def _partings(reference: Mapping[str, np.ndarray], prefixes: np.ndarray, n: int,
              tolerance: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each sequence that parts from the reference before N: a near-tie where the reference's own margin at that
    step is within `tolerance`, else unexplained (also where the reference gives no margins)."""
    margins = np.asarray(reference[MARGINS]) if MARGINS in reference else None
    near, unexplained = [], []
    for seq, step in enumerate(prefixes):
        if step >= n:
            continue
        margin = float(margins[seq, step]) if margins is not None and margins.shape[:2] == (len(prefixes), n) \
            else None
        entry = {"sequence": seq, "step": int(step), "reference_margin": margin}
        (near if margin is not None and margin <= tolerance else unexplained).append(entry)
    return near, unexplained


def _report(criterion, precision, faithful, acceptable, max_abs, cosine, top1, verdict, thresholds, tolerance,
            cosines, prefixes, generation) -> dict[str, Any]:
    return {
        "criterion": criterion, "precision": precision, "faithful": faithful, "acceptable": acceptable,
        "max_abs_error": max_abs, "min_cosine_similarity": cosine, "top1_agreement": top1,
        "tolerance": {**thresholds, "logits": tolerance}, "verdict": verdict,
        "outputs": [{"name": "prefill_logits", "max_abs_error": max_abs, "tolerance": tolerance,
                     "cosine_similarity": cosine, "row_cosines": [float(c) for c in cosines],
                     "top1_agreement": top1, "faithful": faithful, "acceptable": acceptable},
                    {"name": "tokens", "agreeing_prefix": [int(p) for p in prefixes],
                     "token_agreement": generation["token_agreement"]}],
        "generation": generation,
    }
