// The runner protocol of runners/protocol.py, in C++: the RunRequest this runner reads and the RunResult it writes
// (same fields, same schema version), and the failures with a kind (runners/failures.py).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace greenrt {

using json = nlohmann::json;

constexpr int kSchemaVersion = 1;

// A failure with one of protocol.ERROR_KINDS.
struct RunFailure : std::runtime_error {
  std::string kind;
  RunFailure(std::string kind_, const std::string& message) : std::runtime_error(message), kind(std::move(kind_)) {}
};

// A request file that does not follow the protocol (Python's ProtocolError): exit status 2.
struct ProtocolError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Budget {
  int64_t warmup_iterations = 5;
  double warmup_seconds = 0.0;
  int64_t min_iterations = 10;
  double min_seconds = 0.0;
  std::optional<double> max_seconds;
};

struct RunRequest {
  std::string run_id, runtime, model, result_path, precision = "fp32";
  int64_t batch_size = 0;
  Budget budget;
  std::optional<std::string> artifact_path, outputs_path, inputs_path;
  std::optional<int64_t> threads;
  json provider_options = json::object();
  json user_model;  // null for a built-in model
};

struct RunResult {
  std::string run_id, runtime, model, status = "error";
  int64_t batch_size = 0;
  std::optional<std::string> error_kind, error_message;
  json versions = json::object();
  std::vector<std::string> devices;
  std::optional<std::string> provider_used;
  std::optional<int64_t> threads;
  std::optional<int64_t> window_start_ns, window_end_ns, process_start_ns, first_inference_ns;
  std::vector<int64_t> latencies_ns;
  std::optional<double> load_seconds, warmup_seconds, engine_build_seconds;
  int64_t warmup_iterations = 0;
  std::optional<int64_t> peak_host_rss_bytes;
  json output_digest;  // null until computed
  json runtime_facts;  // null where nothing is said
};

// The request of `data` (ProtocolError where it is not a RunRequest of this schema).
RunRequest parse_request(const json& data);

// The result as runners/protocol.py's RunResult JSON (every field, null where unset).
json result_json(const RunResult& result);

// JSON through a temporary file and a rename (runners/protocol.py write_json_atomic), mode 0644 less the umask.
void write_json_atomic(const std::string& path, const json& data);

// CLOCK_MONOTONIC in nanoseconds: libstdc++'s steady_clock, the clock of Python's time.monotonic_ns().
int64_t monotonic_ns();

}  // namespace greenrt
