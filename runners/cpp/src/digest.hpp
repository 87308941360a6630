// The output digest of runners/loop.py output_digest, byte for byte: sha256 over every output's canonical bytes
// (floats as little-endian float32, integers and bools as little-endian int64) in sorted name order, and per output
// its shape, dtype, sha256, mean, std, first four values and count of non-finite values.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "inputs_file.hpp"

namespace greenrt {

nlohmann::json output_digest(const NamedTensors& outputs);

// runners/loop.py nonfinite_problem: why the outputs are no result (NaN or inf values), or nothing.
std::optional<std::string> nonfinite_problem(const NamedTensors& outputs);

}  // namespace greenrt
