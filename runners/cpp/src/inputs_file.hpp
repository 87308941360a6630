// The inputs file (runners/inputs_file.py writes it): a JSON index {"format": "greenrt-inputs", "version": 1,
// "inputs": [{"name", "dtype", "shape", "file", ...}]} and one raw little-endian .bin per input, `file` relative to
// the index's folder; each file's size and sha256 are checked against the index. The inputs are the Python
// runner's own (models/inputs.py, seeded), so both clients run on the same bytes.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace greenrt {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// The inputs in the index's order; std::runtime_error naming what is wrong with the file.
NamedTensors read_inputs_file(const std::string& index_path);

// numpy's name of a tensor's dtype ("float32", "int64", ...).
std::string numpy_dtype(torch::ScalarType type);

}  // namespace greenrt
