"""Conversion fidelity: how faithfully a converted model reproduces its source framework's outputs (a generative
run's tokens and prefill logits: models/llm/fidelity.py, dispatched from compare_outputs).

Both sides run the same weights (the ONNX file carries them) on the same seeded inputs; this compares their
outputs. numpy only, so the orchestrator and every framework environment can use it.

Three criteria, each with its own thresholds and its own verdict, never mixed:
- fp32 (every converted or compiled model at its source's precision, and a framework's fp32 GPU run against its
  CPU run): "faithful" within float32 reordering noise;
- fp16 (an fp16 run against the fp32 reference): "faithful" within what half precision's rounding explains;
- quantized (int8, int4): a quantized model is never faithful by the fp32 tolerance, and is not called so; it is judged
  by what quantization is expected to keep, top-1 agreement of a classifier's logits and the cosine similarity of
  every output, and labelled "quantized: ..." with the numbers and the thresholds.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping

import numpy as np

from models.fidelity_criteria import FP32, QUANT_MIN_COSINE, QUANT_MIN_TOP1, QUANTIZED, TOLERANCES, criterion_for


@dataclass(frozen=True)
class OutputFidelity:
    name: str
    max_abs_error: float
    tolerance: float
    cosine_similarity: float
    top1_agreement: float | None  # share of rows whose argmax agrees (classifier logits only)
    faithful: bool | None  # the fp32 or fp16 criterion; None where the output is judged by the quantized one
    acceptable: bool | None = None  # the quantized criterion; None where the fp32 one judges


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    if norms == 0:
        return 1.0 if np.array_equal(a, b) else 0.0
    return float(np.dot(a, b) / norms)


def compare_output(name: str, reference: np.ndarray, converted: np.ndarray, classifier: bool,
                   criterion: str = FP32) -> OutputFidelity:
    if reference.shape != converted.shape:
        raise ValueError(f"output {name}: shape {converted.shape} differs from the source's {reference.shape}")
    ref = reference.astype(np.float64)
    out = converted.astype(np.float64)
    max_abs = float(np.max(np.abs(ref - out))) if ref.size else 0.0
    abs_tol, rel_tol, min_cosine = TOLERANCES.get(criterion, TOLERANCES[FP32])
    tolerance = abs_tol + rel_tol * (float(np.max(np.abs(ref))) if ref.size else 0.0)
    cosine = _cosine(ref, out)
    top1 = None
    if classifier and ref.ndim == 2:
        top1 = float(np.mean(np.argmax(ref, axis=1) == np.argmax(out, axis=1)))
    finite = bool(np.isfinite(max_abs))
    if criterion == QUANTIZED:
        acceptable = finite and cosine >= QUANT_MIN_COSINE and (top1 is None or top1 >= QUANT_MIN_TOP1)
        return OutputFidelity(name, max_abs, tolerance, cosine, top1, None, bool(acceptable))
    faithful = bool(finite and max_abs <= tolerance and cosine >= min_cosine)
    return OutputFidelity(name, max_abs, tolerance, cosine, top1, faithful)


def quantized_verdict(top1: float | None, cosine: float, max_abs: float, acceptable: bool) -> str:
    """One line: 'quantized: top-1 agreement 97 %, cosine 0.998, max abs error 0.19; within the int8 thresholds
    (top-1 >= 95 %, cosine >= 0.99)'."""
    parts = ([f"top-1 agreement {top1 * 100:.0f} %"] if top1 is not None else []) + [
        f"cosine {cosine:.4f}", f"max abs error {max_abs:.3g}"]
    bounds = ([f"top-1 >= {QUANT_MIN_TOP1 * 100:.0f} %"] if top1 is not None else []) + [
        f"cosine >= {QUANT_MIN_COSINE:g}"]
    return f"quantized: {', '.join(parts)}; {'within' if acceptable else 'OUTSIDE'} the int8 thresholds " \
           f"({', '.join(bounds)})"


def fp32_verdict(faithful: bool, cosine: float, max_abs: float, criterion: str = FP32) -> str:
    """One line: 'faithful: max abs error 3e-05, cosine 1.000000 (fp32 tolerance 0.0001 + 0.001 x max|reference|,
    cosine >= 0.9999)'; the fp16 criterion's line names its own tolerance."""
    abs_tol, rel_tol, min_cosine = TOLERANCES[criterion]
    return (f"{'faithful' if faithful else 'NOT faithful'}: max abs error {max_abs:.3g}, cosine {cosine:.6f} "
            f"({criterion} tolerance {abs_tol:g} + {rel_tol:g} x max|reference|, cosine >= {min_cosine:g})")


def compare_outputs(reference: Mapping[str, np.ndarray], converted: Mapping[str, np.ndarray],
                    classifier_outputs: tuple[str, ...] = ("logits",), precision: str = "fp32") -> dict:
    """Per output and overall: max abs error, cosine similarity, top-1 agreement, and the verdict of the criterion
    for `precision` (criterion_for): "faithful" (fp32 or fp16, each by its own tolerance; None for a quantized run),
    "acceptable" (quantized; None otherwise), and "verdict", one line saying which and why.

    A generative run's outputs (tokens and prefill logits) are judged by models/llm/fidelity.py's criteria."""
    from models.llm.fidelity import compare_generation, is_generation

    if is_generation(reference):
        return compare_generation(reference, converted, precision)
    missing = sorted(set(reference) - set(converted))
    if missing:
        raise ValueError(f"converted model lacks output(s) {', '.join(missing)}; it has {', '.join(sorted(converted))}")
    criterion = criterion_for(precision)
    per_output = [compare_output(n, reference[n], converted[n], n in classifier_outputs, criterion)
                  for n in sorted(reference)]
    top1 = [o.top1_agreement for o in per_output if o.top1_agreement is not None]
    max_abs = max(o.max_abs_error for o in per_output)
    cosine = min(o.cosine_similarity for o in per_output)
    worst_top1 = min(top1) if top1 else None
    report = {
        "criterion": criterion,
        "precision": precision,
        "faithful": all(o.faithful for o in per_output) if criterion != QUANTIZED else None,
        "acceptable": all(o.acceptable for o in per_output) if criterion == QUANTIZED else None,
        "max_abs_error": max_abs,
        "min_cosine_similarity": cosine,
        "top1_agreement": worst_top1,
        "tolerance": (dict(zip(("abs", "rel", "min_cosine"), TOLERANCES[criterion])) if criterion != QUANTIZED
                      else {"min_top1_agreement": QUANT_MIN_TOP1, "min_cosine": QUANT_MIN_COSINE}),
        "outputs": [asdict(o) for o in per_output],
    }
    report["verdict"] = (fp32_verdict(report["faithful"], cosine, max_abs, criterion) if criterion != QUANTIZED
                         else quantized_verdict(worst_top1, cosine, max_abs, report["acceptable"]))
    return report
