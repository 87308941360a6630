// greenrt-torch-runner: the C++ client of PyTorch (issue 25). `greenrt-torch-runner run --request FILE` honours the
// contract of `python -m runners run` (runners/cli.py, runners/loop.py): the same request and result JSON, the same
// measured loop on the host's monotonic clock, the same output digest, failures as results with a kind, the same
// exit statuses (0 ok, 1 an error result, 2 a request that is not one, 3 a result that cannot be written).
// SIGTERM keeps its default action, as in the Python runner: the process ends, no result is written, and the
// orchestrator records the run as killed. `greenrt-torch-runner versions` prints the versions as JSON.
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <new>
#include <set>

#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "digest.hpp"
#include "inputs_file.hpp"
#include "model.hpp"
#include "npz.hpp"
#include "protocol.hpp"

using namespace greenrt;

namespace {

// The formats this runner runs, by the runtime id's model format; the client suffix of the id is "@cpp".
const std::set<std::string> kFormats = {"torchscript", "aoti"};
const std::string kProvider = "cpu@cpp";

const int64_t kProcessStartNs = monotonic_ns();  // as soon as this binary's own code runs (libtorch is mapped)

json versions() {
  return {{"torch", TORCH_VERSION}, {"client", "cpp"}, {"compiler", std::string("g++ ") + __VERSION__},
          {"nlohmann_json", std::to_string(NLOHMANN_JSON_VERSION_MAJOR) + "." +
                                std::to_string(NLOHMANN_JSON_VERSION_MINOR) + "." +
                                std::to_string(NLOHMANN_JSON_VERSION_PATCH)}};
}

std::string cpu_device() {  // runners/hostinfo.py cpu_device
  std::ifstream in("/proc/cpuinfo");
  std::string line, name = "unknown CPU";
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      name = line.substr(line.find(':') + 2);
      break;
    }
  return "cpu: " + name + " (" + std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " logical CPUs)";
}

int64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

bool is_out_of_memory(const std::string& message) {  // runners/failures.py _OOM_MARKERS, the CPU ones
  std::string text = message;
  for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* marker : {"out of memory", "failed to allocate memory", "std::bad_alloc"})
    if (text.find(marker) != std::string::npos) return true;
  return false;
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// runners/loop.py _check_fields and the adapter's checks: what this runner refuses before loading anything.
std::string runtime_format(const RunRequest& r) {
  auto a = r.runtime.find('/'), b = r.runtime.find('/', a == std::string::npos ? a : a + 1);
  if (a == std::string::npos || b == std::string::npos || r.runtime.find('/', b + 1) != std::string::npos)
    throw RunFailure("bad-request", "runtime '" + r.runtime + "' is not framework/format/provider");
  std::string framework = r.runtime.substr(0, a), format = r.runtime.substr(a + 1, b - a - 1),
              provider = r.runtime.substr(b + 1);
  if (framework != "torch" || !kFormats.count(format) || provider != kProvider)
    throw RunFailure("unsupported", "no C++ client for runtime '" + r.runtime +
                                        "'; known: torch/torchscript/cpu@cpp, torch/aoti/cpu@cpp");
  if (r.precision != "fp32")
    throw RunFailure("unsupported", "torch/" + format + ": precision '" + r.precision + "' is not one of fp32");
  if (r.batch_size < 1) throw RunFailure("bad-request", "batch size must be a positive integer, not " +
                                                            std::to_string(r.batch_size));
  const Budget& b2 = r.budget;
  if (b2.warmup_iterations < 0 || b2.min_iterations < 0 || b2.warmup_seconds < 0 || b2.min_seconds < 0)
    throw RunFailure("bad-request", "budget values must not be negative");
  if (b2.max_seconds && *b2.max_seconds <= 0) throw RunFailure("bad-request", "budget.max_seconds must be positive");
  if (r.threads && *r.threads < 1)
    throw RunFailure("bad-request", "threads must be a positive integer or null, not " + std::to_string(*r.threads));
  if (!r.provider_options.empty())
    throw RunFailure("bad-request", r.runtime + " takes no provider options; got " + r.provider_options.dump());
  if (!r.user_model.is_null())
    throw RunFailure("unsupported", r.runtime + ": a user's model is not exported for the C++ client");
  if (!r.artifact_path) throw RunFailure("bad-request", r.runtime + " runs a saved model file: the request needs artifact_path");
  if (!r.inputs_path)
    throw RunFailure("bad-request", r.runtime + " reads its inputs from a file: the request needs inputs_path");
  return format;
}

std::vector<torch::Tensor> ordered_inputs(const NamedTensors& inputs, const Model& model, int64_t batch_size) {
  std::vector<torch::Tensor> out;
  for (const auto& name : model.input_names) {
    auto found = std::find_if(inputs.begin(), inputs.end(), [&](const auto& p) { return p.first == name; });
    if (found == inputs.end()) throw RunFailure("bad-request", "the inputs file has no input '" + name + "'");
    if (found->second.dim() == 0 || found->second.size(0) != batch_size)
      throw RunFailure("bad-request", "input '" + name + "' does not have batch size " + std::to_string(batch_size));
    out.push_back(found->second);
  }
  if (inputs.size() != model.input_names.size())
    throw RunFailure("bad-request", "the inputs file holds " + std::to_string(inputs.size()) + " inputs, the model takes " +
                                        std::to_string(model.input_names.size()));
  return out;
}

RunResult execute(const RunRequest& request) {
  RunResult result;
  result.run_id = request.run_id, result.runtime = request.runtime, result.model = request.model;
  result.batch_size = request.batch_size;
  result.versions = versions();
  result.process_start_ns = kProcessStartNs;
  result.runtime_facts = {{"client", "cpp"}};
  std::string phase = "bad-request";
  try {
    std::string format = runtime_format(request);

    phase = "load";
    if (request.threads) at::set_num_threads(static_cast<int>(*request.threads));
    if (!std::ifstream(*request.artifact_path))
      throw RunFailure("load", "artifact " + *request.artifact_path + ": no such file");
    int64_t t0 = monotonic_ns();
    auto model = load_model(format, *request.artifact_path);
    result.load_seconds = (monotonic_ns() - t0) / 1e9;
    result.provider_used = "cpu";
    result.devices = {cpu_device()};
    result.threads = at::get_num_threads();
    if (model->model_name != request.model)
      throw RunFailure("bad-request", "artifact " + *request.artifact_path + " holds model '" + model->model_name +
                                          "', not '" + request.model + "'");

    phase = "bad-request";
    NamedTensors named;
    try {
      named = read_inputs_file(*request.inputs_path);
    } catch (const RunFailure&) {
      throw;
    } catch (const std::exception& e) {
      throw RunFailure("bad-request", e.what());
    }
    auto inputs = ordered_inputs(named, *model, request.batch_size);

    phase = "runtime";
    c10::InferenceMode guard;
    const Budget& budget = request.budget;
    result.first_inference_ns = monotonic_ns();
    // Warm-up until >= iterations AND >= seconds (runners/loop.py warm_up).
    int64_t warm_start = monotonic_ns(), n_warm = 0, warm_min_ns = static_cast<int64_t>(budget.warmup_seconds * 1e9);
    while (n_warm < budget.warmup_iterations || monotonic_ns() - warm_start < warm_min_ns) {
      model->run(inputs);
      ++n_warm;
      if (n_warm == 1) result.engine_build_seconds = (monotonic_ns() - warm_start) / 1e9;
    }
    result.warmup_iterations = n_warm;
    result.warmup_seconds = (monotonic_ns() - warm_start) / 1e9;
    // The window until >= min_iterations AND >= min_seconds (at least one), or max_seconds (runners/loop.py measure).
    int64_t min_ns = static_cast<int64_t>(budget.min_seconds * 1e9);
    int64_t max_ns = budget.max_seconds ? static_cast<int64_t>(*budget.max_seconds * 1e9) : INT64_MAX;
    std::vector<torch::Tensor> outputs;
    result.latencies_ns.reserve(static_cast<size_t>(std::max<int64_t>(budget.min_iterations, 1)));
    int64_t start = monotonic_ns();
    while (true) {
      int64_t a = monotonic_ns();
      outputs = model->run(inputs);
      int64_t z = monotonic_ns();
      result.latencies_ns.push_back(z - a);
      int64_t n = static_cast<int64_t>(result.latencies_ns.size());
      if ((n >= budget.min_iterations && z - start >= min_ns) || z - start >= max_ns) break;
    }
    int64_t end = monotonic_ns();
    result.window_start_ns = start, result.window_end_ns = end;
    if (n_warm == 0) result.first_inference_ns = start;

    if (outputs.size() != model->output_names.size())
      throw std::runtime_error("model returned " + std::to_string(outputs.size()) + " outputs, the artifact names " +
                               std::to_string(model->output_names.size()));
    NamedTensors named_outputs;
    for (size_t i = 0; i < outputs.size(); ++i) named_outputs.emplace_back(model->output_names[i], outputs[i]);
    result.output_digest = output_digest(named_outputs);
    if (auto problem = nonfinite_problem(named_outputs)) throw RunFailure("output", *problem);
    if (request.outputs_path) save_npz(*request.outputs_path, named_outputs);
    result.status = "ok";
  } catch (const RunFailure& e) {
    result.status = "error", result.error_kind = e.kind, result.error_message = e.what();
  } catch (const std::bad_alloc& e) {
    result.status = "error", result.error_kind = "out-of-memory", result.error_message = "std::bad_alloc";
  } catch (const std::exception& e) {
    std::string message = e.what();
    if (auto* c10_error = dynamic_cast<const c10::Error*>(&e)) message = c10_error->what_without_backtrace();
    result.status = "error", result.error_kind = is_out_of_memory(message) ? "out-of-memory" : phase;
    result.error_message = message.substr(0, 2000);
  }
  result.peak_host_rss_bytes = peak_rss_bytes();
  return result;
}

void say(const std::string& message) { std::cerr << "greenrt-torch-runner: " << first_line(message) << "\n"; }

int command_run(const std::string& request_path) {
  json raw;
  RunRequest request;
  try {
    std::ifstream in(request_path);
    if (!in) throw ProtocolError(request_path + ": no such file");
    try {
      raw = json::parse(in);
    } catch (const json::exception& e) {
      throw ProtocolError(request_path + ": not valid JSON (" + e.what() + ")");
    }
    request = parse_request(raw);
  } catch (const ProtocolError& e) {
    say(std::string("bad request: ") + e.what());
    // As runners/cli.py: where the file still names a result_path, a bad-request result is written there.
    if (raw.is_object() && raw.contains("result_path") && raw["result_path"].is_string() &&
        !raw["result_path"].get<std::string>().empty()) {
      RunResult refused;
      auto text = [&](const char* k) { return raw.contains(k) && raw[k].is_string() ? raw[k].get<std::string>() : ""; };
      refused.run_id = text("run_id"), refused.runtime = text("runtime"), refused.model = text("model");
      refused.batch_size = raw.contains("batch_size") && raw["batch_size"].is_number_integer()
                               ? raw["batch_size"].get<int64_t>() : 0;
      refused.error_kind = "bad-request", refused.error_message = e.what();
      try {
        write_json_atomic(raw["result_path"].get<std::string>(), result_json(refused));
      } catch (const std::exception& w) {
        say(w.what());
      }
    }
    return 2;
  }
  RunResult result = execute(request);
  try {
    write_json_atomic(request.result_path, result_json(result));
  } catch (const std::exception& e) {
    say(std::string("cannot write the result to ") + request.result_path + ": " + e.what());
    return 3;
  }
  if (result.status != "ok") {
    say(result.run_id + ": error (" + *result.error_kind + "): " + result.error_message.value_or(""));
    return 1;
  }
  auto sorted = result.latencies_ns;
  std::sort(sorted.begin(), sorted.end());
  std::cerr << result.run_id << ": ok, " << sorted.size() << " iterations, median " << sorted[sorted.size() / 2] / 1e6
            << " ms, threads " << result.threads.value_or(0) << "\n";
  return 0;
}

const char* kUsage = "usage: greenrt-torch-runner run --request FILE | greenrt-torch-runner versions\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && args[0] == "versions") {
    std::cout << versions().dump(1) << "\n";
    return 0;
  }
  if (args.size() == 3 && args[0] == "run" && args[1] == "--request") return command_run(args[2]);
  std::cerr << kUsage;
  return 2;
}
