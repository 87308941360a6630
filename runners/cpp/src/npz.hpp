// Outputs saved as numpy's .npz (what np.savez writes and np.load reads: a zip of uncompressed <name>.npy files,
// format 1.0 headers), so the orchestrator compares them with the Python client's without a new dependency.
#pragma once

#include <string>

#include "inputs_file.hpp"

namespace greenrt {

// Written through a temporary file and a rename; the exact path is kept (no ".npz" appended).
void save_npz(const std::string& path, const NamedTensors& outputs);

}  // namespace greenrt
