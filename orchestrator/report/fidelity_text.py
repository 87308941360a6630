"""The report's fidelity section: what each run's outputs were compared with, by which criterion, and the table."""
from __future__ import annotations

import polars as pl

from models.fidelity_criteria import (ABS_TOL, FP16_ABS_TOL, FP16_MIN_COSINE, FP16_REL_TOL, MIN_COSINE,
                                      QUANT_MIN_COSINE, QUANT_MIN_TOP1, REL_TOL)
from orchestrator.analysis.advice import NATIVE_NOTE  # run_row's note where nothing was compared

TITLE = "Conversion fidelity"  # the name README gives the section; it also holds native GPU runs
TABLE_TITLE = ("Fidelity per run: converted and compiled models against their source, native GPU runs against "
               "their framework's CPU outputs")
_COLUMNS = ("model", "batch_size", "runtime", "precision", "repetition", "fidelity_criterion", "fidelity_faithful",
            "fidelity_max_abs_error", "fidelity_min_cosine", "fidelity_top1_agreement", "fidelity_verdict",
            "fidelity_note")


def fidelity_paragraph() -> str:
    """What was compared with what, and each criterion with its thresholds (models/fidelity.py's, never restated)."""
    return (
        "Each run with a reference has its outputs compared with that reference's on the same weights and seeded "
        "inputs: a converted or compiled model (ONNX Runtime, OpenVINO, LiteRT, torch inductor, XLA) with its source "
        "framework's native CPU run (a user's ONNX file with ONNX Runtime's CPU provider on the same file), and a "
        "framework's native GPU run (torch, TensorFlow, MXNet on cuda) with the same framework's CPU outputs, since "
        "its kernels, cuDNN's algorithm choices and half-precision arithmetic are not the CPU's. "
        f"An fp32 run is faithful when every output's largest absolute error is within {ABS_TOL:g} + {REL_TOL:g} x "
        f"max|reference| and its cosine similarity is at least {MIN_COSINE:g}. fp16 and tf32 runs are judged by "
        f"their own stated tolerance, not fp32's: {FP16_ABS_TOL:g} + {FP16_REL_TOL:g} x max|reference| and cosine "
        f"at least {FP16_MIN_COSINE:g} (fp16 stores every activation with 11 significant bits; tf32 rounds the inputs "
        "of every matrix multiply and convolution as coarsely), and the criterion column names which judged each "
        "run. An int8 (quantized) run is never called faithful: the quantized criterion judges it, top-1 agreement "
        f"of the logits at least {QUANT_MIN_TOP1 * 100:.0f} % (classifiers) and every output's cosine similarity at "
        f"least {QUANT_MIN_COSINE:g}, in its own verdict. A run whose outputs hold a NaN or an infinity (an fp16 "
        "overflow, a broken kernel) is no measurement: it fails with kind 'output' (see Failed and skipped), whatever "
        "its reference.")


def fidelity_runs(runs: pl.DataFrame) -> pl.DataFrame:
    """One row per successful run that was compared with a reference, or that loads a converted ONNX model (whose
    missing comparison is itself worth seeing)."""
    if runs.is_empty() or "fidelity_faithful" not in runs.columns:
        return pl.DataFrame(schema={c: pl.String for c in _COLUMNS})
    compared = pl.col("fidelity_note").cast(pl.String).fill_null("") != NATIVE_NOTE
    shown = runs.filter((pl.col("status") == "ok") & (pl.col("model_format").str.starts_with("onnx") | compared))
    return (shown.select([c for c in _COLUMNS if c in shown.columns])
            .sort(["model", "batch_size", "runtime", "precision"]))
