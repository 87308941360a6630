"""Fidelity metrics against hand-worked values, and the faithful verdict at its boundary."""
import numpy as np
import pytest

from models.fidelity import compare_outputs
from models.fidelity_criteria import ABS_TOL, REL_TOL


def test_identical_outputs_are_faithful():
    logits = np.array([[1.0, 3.0, 2.0], [0.5, -1.0, 4.0]], dtype=np.float32)
    report = compare_outputs({"logits": logits}, {"logits": logits.copy()})
    assert report["faithful"] and report["max_abs_error"] == 0.0
    assert report["min_cosine_similarity"] == pytest.approx(1.0) and report["top1_agreement"] == 1.0


def test_hand_worked_errors_cosine_and_top1():
    reference = np.array([[1.0, 0.0], [0.0, 1.0]])
    converted = np.array([[1.0, 0.0], [1.0, 0.0]])  # second row's argmax flips
    report = compare_outputs({"logits": reference}, {"logits": converted})
    assert report["max_abs_error"] == 1.0
    # cos = (1*1 + 0 + 0 + 0) / (sqrt(2) * sqrt(2)) = 0.5
    assert report["min_cosine_similarity"] == pytest.approx(0.5)
    assert report["top1_agreement"] == 0.5
    assert not report["faithful"]


def test_tolerance_scales_with_the_reference_magnitude():
    reference = np.full((1, 4), 100.0)
    tolerance = ABS_TOL + REL_TOL * 100.0
    within = reference + 0.9 * tolerance
    beyond = reference + 1.1 * tolerance
    assert compare_outputs({"logits": reference}, {"logits": within})["faithful"]
    assert not compare_outputs({"logits": reference}, {"logits": beyond})["faithful"]


def test_nan_is_never_faithful_and_missing_outputs_are_named():
    reference = {"last_hidden_state": np.ones((1, 2, 3)), "pooler_output": np.ones((1, 3))}
    broken = {"last_hidden_state": np.full((1, 2, 3), np.nan), "pooler_output": np.ones((1, 3))}
    report = compare_outputs(reference, broken)
    assert not report["faithful"] and report["top1_agreement"] is None
    with pytest.raises(ValueError, match="lacks output\\(s\\) pooler_output"):
        compare_outputs(reference, {"last_hidden_state": np.ones((1, 2, 3))})
