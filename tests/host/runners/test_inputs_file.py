"""The inputs file (runners/inputs_file.py): the Python runner's seeded inputs, written once for a runner in another
language, read back to the bit."""
from __future__ import annotations

import json

import numpy as np
import pytest

from models.inputs import make_inputs
from models.registry import get_model
from runners.inputs_file import DTYPES, INDEX_NAME, InputsFileError, read_inputs, write_inputs, write_model_inputs


@pytest.mark.parametrize("model, options", [("mobilenet_v2", {}), ("bert-base-uncased", {"seq_len": 16})])
def test_the_file_holds_make_inputs_arrays_to_the_bit_in_the_models_order(tmp_path, model, options):
    spec = get_model(model)
    expected = make_inputs(spec, 3, 7, spec.resolve_options(options))
    index = write_model_inputs(tmp_path, model, 3, 7, options)
    assert index == tmp_path / INDEX_NAME
    read = read_inputs(index)
    assert list(read) == list(expected) == [e["name"] for e in json.loads(index.read_text())["inputs"]]
    for name, array in expected.items():
        assert read[name].dtype == array.dtype and read[name].shape == array.shape
        assert read[name].tobytes() == array.tobytes()


def test_each_input_is_raw_little_endian_bytes_named_in_the_index(tmp_path):
    arrays = {"a": np.arange(6, dtype=">i4").reshape(2, 3), "b": np.array([True, False])}
    index = json.loads(write_inputs(tmp_path, arrays).read_text())
    assert index["format"] == "greenrt-inputs" and index["version"] == 1
    first = index["inputs"][0]
    assert (first["name"], first["dtype"], first["shape"], first["bytes"]) == ("a", "int32", [2, 3], 24)
    assert (tmp_path / first["file"]).read_bytes() == np.arange(6, dtype="<i4").tobytes()
    assert set(DTYPES) >= {e["dtype"] for e in index["inputs"]}


def test_a_changed_input_file_is_refused(tmp_path):
    index = write_model_inputs(tmp_path, "mobilenet_v2", 1, 0)
    blob = tmp_path / json.loads(index.read_text())["inputs"][0]["file"]
    blob.write_bytes(blob.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(InputsFileError, match="does not match"):
        read_inputs(index)


def test_a_dtype_outside_the_format_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(InputsFileError, match="valid: float32"):
        write_inputs(tmp_path / "x", {"z": np.zeros(2, dtype=np.complex64)})
    assert not (tmp_path / "x" / INDEX_NAME).exists()
