"""Conversion fidelity: how faithfully a converted model reproduces its source framework's outputs.

Both sides run the same weights (the ONNX file carries them) on the same seeded inputs; this compares their
outputs. numpy only, so the orchestrator and every framework environment can use it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping

import numpy as np

# Faithful when, for every output, the largest absolute difference is within ABS_TOL + REL_TOL * max|reference|
# and the cosine similarity is at least MIN_COSINE. float32 reorderings of the same graph (fused kernels, other
# accumulation orders) stay orders of magnitude below these; a wrong or perturbed weight does not.
ABS_TOL = 1e-4
REL_TOL = 1e-3
MIN_COSINE = 0.9999


@dataclass(frozen=True)
class OutputFidelity:
    name: str
    max_abs_error: float
    tolerance: float
    cosine_similarity: float
    top1_agreement: float | None  # share of rows whose argmax agrees (classifier logits only)
    faithful: bool


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    if norms == 0:
        return 1.0 if np.array_equal(a, b) else 0.0
    return float(np.dot(a, b) / norms)


def compare_output(name: str, reference: np.ndarray, converted: np.ndarray, classifier: bool) -> OutputFidelity:
    if reference.shape != converted.shape:
        raise ValueError(f"output {name}: shape {converted.shape} differs from the source's {reference.shape}")
    ref = reference.astype(np.float64)
    out = converted.astype(np.float64)
    max_abs = float(np.max(np.abs(ref - out))) if ref.size else 0.0
    tolerance = ABS_TOL + REL_TOL * (float(np.max(np.abs(ref))) if ref.size else 0.0)
    cosine = _cosine(ref, out)
    top1 = None
    if classifier and ref.ndim == 2:
        top1 = float(np.mean(np.argmax(ref, axis=1) == np.argmax(out, axis=1)))
    faithful = bool(np.isfinite(max_abs) and max_abs <= tolerance and cosine >= MIN_COSINE)
    return OutputFidelity(name, max_abs, tolerance, cosine, top1, faithful)


def compare_outputs(reference: Mapping[str, np.ndarray], converted: Mapping[str, np.ndarray],
                    classifier_outputs: tuple[str, ...] = ("logits",)) -> dict:
    """Per output and overall: max abs error, cosine similarity, top-1 agreement, and the faithful verdict."""
    missing = sorted(set(reference) - set(converted))
    if missing:
        raise ValueError(f"converted model lacks output(s) {', '.join(missing)}; it has {', '.join(sorted(converted))}")
    per_output = [compare_output(n, reference[n], converted[n], n in classifier_outputs) for n in sorted(reference)]
    top1 = [o.top1_agreement for o in per_output if o.top1_agreement is not None]
    return {
        "faithful": all(o.faithful for o in per_output),
        "max_abs_error": max(o.max_abs_error for o in per_output),
        "min_cosine_similarity": min(o.cosine_similarity for o in per_output),
        "top1_agreement": min(top1) if top1 else None,
        "tolerance": {"abs": ABS_TOL, "rel": REL_TOL, "min_cosine": MIN_COSINE},
        "outputs": [asdict(o) for o in per_output],
    }
