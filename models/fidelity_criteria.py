"""The criteria that judge a run's outputs against its reference, by precision: their names, their tolerances, and
which one judges a precision (models/fidelity.py for classifiers' and encoders' outputs, models/llm/fidelity.py for a
generative run's tokens and logits; the report says them in words). Constants only, standard library.
"""
from __future__ import annotations

# Faithful when, for every output, the largest absolute difference is within ABS_TOL + REL_TOL * max|reference|
# and the cosine similarity is at least MIN_COSINE. float32 reorderings of the same graph (fused kernels, other
# accumulation orders) stay orders of magnitude below these; a wrong or perturbed weight does not.
ABS_TOL = 1e-4
REL_TOL = 1e-3
MIN_COSINE = 0.9999

# The quantized criterion (int8 against the fp32 source): a classifier keeps its top-1 choice on at least
# QUANT_MIN_TOP1 of the rows, and every output keeps a cosine similarity of at least QUANT_MIN_COSINE. Published
# INT8 CNN and BERT quantizations lose around one point of accuracy; these bounds leave room for that, and a
# broken quantization (wrong scales, a saturated layer) falls far below them. The largest absolute error is
# reported, not judged: it scales with the outputs' range.
QUANT_MIN_TOP1 = 0.95
QUANT_MIN_COSINE = 0.99

# The fp16 criterion (an fp16 run against its framework's fp32 CPU outputs): faithful when every output's largest
# absolute difference is within FP16_ABS_TOL + FP16_REL_TOL * max|reference| and its cosine similarity is at least
# FP16_MIN_COSINE.  fp16 rounds every stored activation to 11 significant bits (unit roundoff 2^-11 = 4.9e-4), and
# through a deep network that compounds: torch 2.13's .half() of this project's models, run on the CPU (no GPU was
# at hand; seeded random weights, batch 2), moved the largest output value by 0.71 % of max|reference| (MobileNetV2
# logits), 0.056 % (ResNet-50 logits), 0.24 % and 0.31 % (BERT-base last_hidden_state, pooler_output), with cosine
# similarity 0.99998 or above.  3 % leaves room for GPU kernels that accumulate and round differently; an overflow
# (inf, NaN: the run already fails for those), a saturated layer or a wrong weight moves outputs by the size of the
# signal and falls below the cosine bound.
FP16_ABS_TOL = 1e-3
FP16_REL_TOL = 3e-2
FP16_MIN_COSINE = 0.999
FP32, FP16, TF32, QUANTIZED = "fp32", "fp16", "tf32", "quantized"
QUANTIZED_PRECISIONS = ("int8", "int4")  # int4: the generative runtimes' weight quantization
HALF_PRECISIONS = ("fp16",)
# tf32 rounds the inputs of every GEMM and convolution to fp16's 10-bit mantissa (keeping fp32's range and fp32
# accumulation), so its error is at most fp16's: it is judged by fp16's tolerance, under its own name.
TOLERANCES = {  # criterion -> (abs, rel, min cosine)
    FP32: (ABS_TOL, REL_TOL, MIN_COSINE),
    FP16: (FP16_ABS_TOL, FP16_REL_TOL, FP16_MIN_COSINE),
    TF32: (FP16_ABS_TOL, FP16_REL_TOL, FP16_MIN_COSINE),
}


def criterion_for(precision: str) -> str:
    """Which criterion judges a run at `precision`: the quantized one for int8, the fp16 one for fp16, the tf32 one
    (fp16's tolerance) for tf32, the fp32 one otherwise."""
    if precision in QUANTIZED_PRECISIONS:
        return QUANTIZED
    if precision == TF32:
        return TF32
    return FP16 if precision in HALF_PRECISIONS else FP32
