// A bare TorchScript loop in C++: what a user writes against libtorch, with nothing of greenrt's C++ runner
// (bench/client_overhead.py builds it with bench/bare_loops/CMakeLists.txt against the torch environment's wheel).
//   torch_loop MODEL.pt INPUTS.json THREADS WARMUP ITERATIONS
// THREADS 0 keeps libtorch's default (one per core). torch::jit::load, inputs positional in the inputs file's order
// (the export's), forward under c10::InferenceMode; WARMUP untimed calls, then ITERATIONS timed ones with one
// steady_clock read after each, so the per-iteration latencies sum to the loop's whole time. Prints one JSON object.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/version.h>

namespace {

// greenrt's inputs file (runners/inputs_file.py's format): raw little-endian arrays beside a JSON index.
std::vector<torch::jit::IValue> read_inputs(const std::filesystem::path& index_path) {
  static const std::map<std::string, torch::ScalarType> kTypes = {
      {"float32", torch::kFloat32}, {"float64", torch::kFloat64}, {"int32", torch::kInt32},
      {"int64", torch::kInt64},     {"int8", torch::kInt8},       {"uint8", torch::kUInt8},
      {"bool", torch::kBool}};
  std::ifstream in(index_path);
  auto index = nlohmann::json::parse(in);
  std::vector<torch::jit::IValue> inputs;
  for (const auto& entry : index.at("inputs")) {
    std::ifstream file(index_path.parent_path() / entry.at("file").get<std::string>(), std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    auto shape = entry.at("shape").get<std::vector<int64_t>>();
    auto type = kTypes.at(entry.at("dtype").get<std::string>());
    inputs.emplace_back(torch::from_blob(bytes.data(), shape, torch::TensorOptions().dtype(type)).clone());
  }
  return inputs;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::cerr << "usage: torch_loop MODEL.pt INPUTS.json THREADS WARMUP ITERATIONS\n";
    return 2;
  }
  const int threads = std::stoi(argv[3]);
  const int64_t warmup = std::stoll(argv[4]), iterations = std::stoll(argv[5]);
  if (threads > 0) at::set_num_threads(threads);
  auto module = torch::jit::load(argv[1], torch::kCPU);
  module.eval();
  auto inputs = read_inputs(argv[2]);
  std::vector<int64_t> stamps(static_cast<size_t>(iterations) + 1);
  {
    c10::InferenceMode guard;
    for (int64_t i = 0; i < warmup; ++i) module.forward(inputs);
    stamps[0] = now_ns();
    for (int64_t i = 1; i <= iterations; ++i) {
      module.forward(inputs);
      stamps[static_cast<size_t>(i)] = now_ns();
    }
  }
  std::vector<int64_t> latencies;
  for (size_t i = 1; i < stamps.size(); ++i) latencies.push_back(stamps[i] - stamps[i - 1]);
  nlohmann::json out = {{"language", "cpp"}, {"engine", "torch"}, {"threads", at::get_num_threads()},
                        {"warmup_iterations", warmup},
                        {"versions", {{"torch", TORCH_VERSION}, {"compiler", std::string("g++ ") + __VERSION__}}},
                        {"latencies_ns", latencies}, {"loop_ns", stamps.back() - stamps.front()}};
  std::cout << out.dump() << "\n";
  return 0;
}
