#include "digest.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <memory>
#include <sstream>

namespace greenrt {
namespace {

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) { EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr); }
  void update(const void* data, size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_.get(), md, &n);
    std::ostringstream out;
    for (unsigned int i = 0; i < n; ++i) out << std::hex << std::setw(2) << std::setfill('0') << int(md[i]);
    return out.str();
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

// Python's str() of a non-finite float, as json.dump writes the digest's "first" values.
std::string python_str(double v) { return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"); }

NamedTensors sorted_by_name(const NamedTensors& outputs) {
  NamedTensors sorted = outputs;
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return sorted;
}

}  // namespace

nlohmann::json output_digest(const NamedTensors& outputs) {
  Sha256 total;
  nlohmann::json per_output = nlohmann::json::object();
  for (const auto& [name, tensor] : sorted_by_name(outputs)) {
    bool floating = tensor.is_floating_point() || tensor.is_complex();
    auto source = tensor.is_complex() ? torch::real(tensor) : tensor;
    auto canon = source.to(floating ? torch::kFloat32 : torch::kInt64).contiguous();
    Sha256 one;
    one.update(canon.data_ptr(), canon.nbytes());
    total.update(canon.data_ptr(), canon.nbytes());
    auto as_double = canon.to(torch::kFloat64).reshape({-1});
    auto finite = torch::isfinite(as_double);
    int64_t n_nonfinite = as_double.numel() - finite.sum().item<int64_t>();
    auto values = n_nonfinite ? as_double.masked_select(finite) : as_double;
    nlohmann::json first = nlohmann::json::array();
    auto acc = as_double.accessor<double, 1>();
    for (int64_t i = 0; i < std::min<int64_t>(4, as_double.numel()); ++i)
      first.push_back(std::isfinite(acc[i]) ? nlohmann::json(acc[i]) : nlohmann::json(python_str(acc[i])));
    bool any = values.numel() > 0;
    per_output[name] = {
        {"shape", tensor.sizes().vec()},
        {"dtype", numpy_dtype(tensor.scalar_type())},
        {"sha256", one.hex()},
        // numpy's population std (ddof 0); mean and std are summaries, the sha256 is what must match exactly.
        {"mean", any ? nlohmann::json(values.mean().item<double>()) : nlohmann::json(nullptr)},
        {"std", any ? nlohmann::json(values.std(/*unbiased=*/false).item<double>()) : nlohmann::json(nullptr)},
        {"first", first},
        {"nonfinite", n_nonfinite}};
  }
  return {{"algorithm", "sha256(float32|int64 little-endian, outputs in sorted name order)"},
          {"sha256", total.hex()},
          {"outputs", per_output}};
}

std::optional<std::string> nonfinite_problem(const NamedTensors& outputs) {
  std::string found;
  for (const auto& [name, tensor] : sorted_by_name(outputs)) {
    if (!tensor.is_floating_point()) continue;
    int64_t n_nan = torch::isnan(tensor).sum().item<int64_t>();
    int64_t n_inf = torch::isinf(tensor).sum().item<int64_t>();
    if (n_nan || n_inf)
      found += (found.empty() ? "" : "; ") + name + ": " + std::to_string(n_nan + n_inf) + " of " +
               std::to_string(tensor.numel()) + " (" + std::to_string(n_nan) + " NaN, " + std::to_string(n_inf) +
               " inf; dtype " + numpy_dtype(tensor.scalar_type()) + ")";
  }
  if (found.empty()) return std::nullopt;
  return "non-finite output values, so the run measured no usable inference (an overflow, e.g. in fp16): " + found;
}

}  // namespace greenrt
