"""A typo of a built-in model is answered with the closest valid names, not with "--runtime is needed"."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

GREENRT = str(Path(sys.executable).with_name("greenrt"))

pytestmark = pytest.mark.process


def test_a_built_in_model_typo_names_the_closest_models_and_writes_nothing(tmp_path):
    out = tmp_path / "results"
    done = subprocess.run([GREENRT, "run", "--model", "resnet5", "--out", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == ("error: --model 'resnet5': no built-in model and no model file of that name; "
                                   "valid: resnet50")
    assert not out.exists()
