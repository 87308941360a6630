"""The C++ client's outputs against the Python client's on the same artifact and the same input bytes: identical
at equal threads (the same libtorch kernels run on the same bytes)."""
from __future__ import annotations

import numpy as np
import pytest

from cpp_client_helpers import make_request, run_client


@pytest.mark.parametrize("fmt", ["torchscript", "aoti"])
def test_cpp_outputs_equal_the_python_clients(runner, artifacts, inputs_index, tmp_path, fmt):
    answers, saved = {}, {}
    for client in ("python", "cpp"):
        saved[client] = tmp_path / f"{client}.npz"
        answers[client] = run_client(tmp_path, client, make_request(tmp_path, fmt, client, artifacts, inputs_index,
                                                                    outputs_path=str(saved[client])))
        assert answers[client].returncode == 0, answers[client].stderr
    python, cpp = (answers[c].result["output_digest"] for c in ("python", "cpp"))
    assert cpp["sha256"] == python["sha256"]
    for name, described in python["outputs"].items():
        ours = cpp["outputs"][name]
        assert {k: ours[k] for k in ("shape", "dtype", "sha256", "first", "nonfinite")} == \
               {k: described[k] for k in ("shape", "dtype", "sha256", "first", "nonfinite")}
        assert ours["mean"] == pytest.approx(described["mean"], rel=1e-9, abs=1e-12)
        assert ours["std"] == pytest.approx(described["std"], rel=1e-9)
    with np.load(saved["python"]) as expected, np.load(saved["cpp"]) as got:  # the .npz numpy reads as its own
        assert sorted(got.files) == sorted(expected.files) == ["logits"]
        for name in expected.files:
            assert got[name].dtype == expected[name].dtype and got[name].shape == expected[name].shape == (1, 1000)
            assert np.array_equal(got[name], expected[name])
