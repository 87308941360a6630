#include "inputs_file.hpp"

#include <bit>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

namespace greenrt {
namespace {

static_assert(std::endian::native == std::endian::little, "the inputs file is little-endian: a big-endian host "
                                                          "would have to swap bytes");

const std::map<std::string, torch::ScalarType> kDtypes = {
    {"float32", torch::kFloat32}, {"float64", torch::kFloat64}, {"float16", torch::kFloat16},
    {"int64", torch::kInt64},     {"int32", torch::kInt32},     {"int16", torch::kInt16},
    {"int8", torch::kInt8},       {"uint8", torch::kUInt8},     {"uint16", torch::kUInt16},
    {"uint32", torch::kUInt32},   {"uint64", torch::kUInt64},   {"bool", torch::kBool}};

std::string sha256_hex(const void* data, size_t n) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data, n, md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) out += {hex[md[i] >> 4], hex[md[i] & 15]};
  return out;
}

std::string valid_dtypes() {
  std::string out;
  for (const auto& [name, type] : kDtypes) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

std::string numpy_dtype(torch::ScalarType type) {
  for (const auto& [name, t] : kDtypes)
    if (t == type) return name;
  return c10::toString(type);
}

NamedTensors read_inputs_file(const std::string& index_path) {
  namespace fs = std::filesystem;
  std::ifstream in(index_path);
  if (!in) throw std::runtime_error("inputs file " + index_path + ": cannot be read");
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("inputs file " + index_path + ": not valid JSON (" + e.what() + ")");
  }
  // runners/inputs_file.py FORMAT and VERSION.
  if (!index.is_object() || index.value("format", "") != "greenrt-inputs" || index.value("version", 0) != 1 ||
      !index.contains("inputs") || !index["inputs"].is_array())
    throw std::runtime_error("inputs file " + index_path + ": not a greenrt-inputs index of version 1");
  NamedTensors out;
  for (const auto& entry : index["inputs"]) {
    try {
      auto name = entry.at("name").get<std::string>();
      auto dtype = entry.at("dtype").get<std::string>();
      auto shape = entry.at("shape").get<std::vector<int64_t>>();
      auto found = kDtypes.find(dtype);
      if (found == kDtypes.end())
        throw std::runtime_error("input " + name + ": dtype " + dtype + " is not one of " + valid_dtypes());
      fs::path file = fs::path(index_path).parent_path() / entry.at("file").get<std::string>();
      auto tensor = torch::empty(shape, torch::TensorOptions().dtype(found->second));
      auto expected = static_cast<std::streamsize>(tensor.nbytes());
      std::ifstream data(file, std::ios::binary);
      if (!data) throw std::runtime_error("input " + name + ": " + file.string() + " cannot be read");
      data.read(static_cast<char*>(tensor.data_ptr()), expected);
      if (data.gcount() != expected || data.peek() != std::ifstream::traits_type::eof())
        throw std::runtime_error("input " + name + ": " + file.string() + " does not hold exactly " +
                                 std::to_string(expected) + " bytes of " + dtype + " for shape " + entry["shape"].dump());
      if (entry.contains("sha256") && entry["sha256"] != sha256_hex(tensor.data_ptr(), tensor.nbytes()))
        throw std::runtime_error("input " + name + ": " + file.string() + " does not match the index's sha256");
      out.emplace_back(name, tensor);
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error("inputs file " + index_path + ": an entry lacks name, dtype, shape or file (" +
                               e.what() + ")");
    }
  }
  return out;
}

}  // namespace greenrt
