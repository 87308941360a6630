#include "protocol.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

namespace greenrt {
namespace {

// runners/protocol.py RunRequest's fields, and inputs_path (the inputs file the Python side writes for a client
// that cannot make numpy's seeded inputs itself). Python refuses unknown fields; so does this runner.
const std::set<std::string> kRequestFields = {
    "run_id", "runtime", "model", "batch_size", "result_path", "precision", "weights", "input_seed", "budget",
    "model_options", "artifact_path", "outputs_path", "threads", "provider_options", "user_model", "cuda_jit_cache",
    "schema", "inputs_path"};
const std::set<std::string> kBudgetFields = {"warmup_iterations", "warmup_seconds", "min_iterations", "min_seconds",
                                             "max_seconds"};

std::string joined(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

void refuse_unknown(const json& data, const std::set<std::string>& known, const std::string& what) {
  std::set<std::string> unknown;
  for (const auto& [key, value] : data.items())
    if (!known.count(key)) unknown.insert(key);
  if (!unknown.empty())
    throw ProtocolError(what + ": unknown field(s) " + joined(unknown) + "; valid: " + joined(known));
}

std::string string_field(const json& data, const char* name) {
  if (!data.contains(name)) throw ProtocolError(std::string("RunRequest: missing required field '") + name + "'");
  if (!data[name].is_string()) throw ProtocolError(std::string("RunRequest: ") + name + " must be a string");
  return data[name].get<std::string>();
}

std::optional<std::string> optional_string(const json& data, const char* name) {
  if (!data.contains(name) || data[name].is_null()) return std::nullopt;
  if (!data[name].is_string()) throw ProtocolError(std::string("RunRequest: ") + name + " must be a string or null");
  return data[name].get<std::string>();
}

double number(const json& value, const std::string& name) {
  if (!value.is_number()) throw ProtocolError("Budget: " + name + " must be a number");
  return value.get<double>();
}

int64_t integer(const json& value, const std::string& name) {
  if (!value.is_number_integer()) throw ProtocolError(name + " must be an integer");
  return value.get<int64_t>();
}

json or_null(const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); }
json or_null(const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); }
json or_null(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

}  // namespace

RunRequest parse_request(const json& data) {
  if (!data.is_object()) throw ProtocolError("RunRequest: expected a JSON object");
  if (data.contains("schema") && data["schema"] != kSchemaVersion)
    throw ProtocolError("RunRequest: schema " + data["schema"].dump() + " is not the supported version " +
                        std::to_string(kSchemaVersion));
  refuse_unknown(data, kRequestFields, "RunRequest");
  RunRequest r;
  r.run_id = string_field(data, "run_id");
  r.runtime = string_field(data, "runtime");
  r.model = string_field(data, "model");
  r.result_path = string_field(data, "result_path");
  if (!data.contains("batch_size")) throw ProtocolError("RunRequest: missing required field 'batch_size'");
  r.batch_size = integer(data["batch_size"], "batch_size");
  if (data.contains("precision")) r.precision = string_field(data, "precision");
  r.artifact_path = optional_string(data, "artifact_path");
  r.outputs_path = optional_string(data, "outputs_path");
  r.inputs_path = optional_string(data, "inputs_path");
  if (data.contains("threads") && !data["threads"].is_null()) r.threads = integer(data["threads"], "threads");
  if (data.contains("provider_options")) r.provider_options = data["provider_options"];
  if (data.contains("user_model")) r.user_model = data["user_model"];
  if (data.contains("budget")) {
    const json& b = data["budget"];
    if (!b.is_object()) throw ProtocolError("RunRequest: budget must be an object");
    refuse_unknown(b, kBudgetFields, "Budget");
    if (b.contains("warmup_iterations")) r.budget.warmup_iterations = integer(b["warmup_iterations"], "warmup_iterations");
    if (b.contains("warmup_seconds")) r.budget.warmup_seconds = number(b["warmup_seconds"], "warmup_seconds");
    if (b.contains("min_iterations")) r.budget.min_iterations = integer(b["min_iterations"], "min_iterations");
    if (b.contains("min_seconds")) r.budget.min_seconds = number(b["min_seconds"], "min_seconds");
    if (b.contains("max_seconds") && !b["max_seconds"].is_null())
      r.budget.max_seconds = number(b["max_seconds"], "max_seconds");
  }
  return r;
}

json result_json(const RunResult& r) {
  json error = nullptr;
  if (r.error_kind) error = {{"kind", *r.error_kind}, {"message", r.error_message.value_or("")}, {"traceback", ""}};
  return {{"run_id", r.run_id},
          {"runtime", r.runtime},
          {"model", r.model},
          {"batch_size", r.batch_size},
          {"status", r.status},
          {"error", error},
          {"versions", r.versions},
          {"devices", r.devices},
          {"provider_used", or_null(r.provider_used)},
          {"threads", or_null(r.threads)},
          {"window_start_ns", or_null(r.window_start_ns)},
          {"window_end_ns", or_null(r.window_end_ns)},
          {"iterations", static_cast<int64_t>(r.latencies_ns.size())},
          {"latencies_ns", r.latencies_ns},
          {"load_seconds", or_null(r.load_seconds)},
          {"warmup_seconds", or_null(r.warmup_seconds)},
          {"warmup_iterations", r.warmup_iterations},
          {"engine_build_seconds", or_null(r.engine_build_seconds)},
          {"peak_host_rss_bytes", or_null(r.peak_host_rss_bytes)},
          {"peak_device_bytes", nullptr},
          {"output_digest", r.output_digest},
          {"process_start_ns", or_null(r.process_start_ns)},
          {"first_inference_ns", or_null(r.first_inference_ns)},
          {"node_placement", nullptr},
          {"runtime_facts", r.runtime_facts},
          {"generation", nullptr},  // a generative run's phases: none in a classifier client
          {"schema", kSchemaVersion}};
}

void write_json_atomic(const std::string& path, const json& data) {
  namespace fs = std::filesystem;
  fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  std::string tmp = (target.parent_path() / ("." + target.filename().string() + ".XXXXXX.tmp")).string();
  int fd = mkstemps(tmp.data(), 4);
  if (fd < 0) throw std::runtime_error("cannot create a temporary file next to " + path);
  std::string text = data.dump(1) + "\n";
  mode_t mask = umask(0);
  umask(mask);
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            fchmod(fd, 0644 & ~mask) == 0 && fsync(fd) == 0;
  ok = close(fd) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write " + path);
  }
}

int64_t monotonic_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace greenrt
