#include "npz.hpp"

#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>

namespace greenrt {
namespace {

std::string descr(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32: return "<f4";
    case torch::kFloat64: return "<f8";
    case torch::kFloat16: return "<f2";
    case torch::kInt64: return "<i8";
    case torch::kInt32: return "<i4";
    case torch::kInt16: return "<i2";
    case torch::kInt8: return "|i1";
    case torch::kUInt8: return "|u1";
    case torch::kBool: return "|b1";
    default: throw std::runtime_error(std::string("no numpy type for ") + c10::toString(type));
  }
}

// The .npy bytes: magic, version 1.0, a header dict padded with spaces to a multiple of 64 bytes, the data (C order).
std::string npy(const torch::Tensor& tensor) {
  auto t = tensor.contiguous();
  std::string shape = "(";
  for (auto d : t.sizes()) shape += std::to_string(d) + ", ";
  if (t.dim() > 1) shape.resize(shape.size() - 2);
  else if (t.dim() == 1) shape.resize(shape.size() - 1);
  shape += ")";
  std::string header = "{'descr': '" + descr(t.scalar_type()) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t total = 10 + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  out.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
  return out;
}

void put16(std::string& s, uint32_t v) { s += char(v & 0xff); s += char((v >> 8) & 0xff); }
void put32(std::string& s, uint32_t v) { put16(s, v & 0xffff); put16(s, v >> 16); }

}  // namespace

void save_npz(const std::string& path, const NamedTensors& outputs) {
  // A stored (uncompressed) zip, as np.savez writes; entries below 4 GiB (no zip64).
  std::string zip, central;
  uint16_t count = 0;
  for (const auto& [name, tensor] : outputs) {
    std::string file = name + ".npy", data = npy(tensor);
    if (data.size() >= 0xffffffffu) throw std::runtime_error("output " + name + " is too large for a zip32 .npz");
    uint32_t crc = crc32(0L, reinterpret_cast<const Bytef*>(data.data()), data.size());
    uint32_t offset = zip.size();
    std::string common;  // version, flags, method (stored), time, date, crc, sizes, name length
    put16(common, 20); put16(common, 0); put16(common, 0); put16(common, 0); put16(common, 0x21);
    put32(common, crc); put32(common, data.size()); put32(common, data.size()); put16(common, file.size());
    put32(zip, 0x04034b50); zip += common; put16(zip, 0); zip += file; zip += data;
    put32(central, 0x02014b50); put16(central, 20); central += common;
    put16(central, 0); put16(central, 0); put16(central, 0); put16(central, 0); put32(central, 0);
    put32(central, offset); central += file;
    ++count;
  }
  uint32_t central_offset = zip.size();
  zip += central;
  put32(zip, 0x06054b50); put16(zip, 0); put16(zip, 0); put16(zip, count); put16(zip, count);
  put32(zip, central.size()); put32(zip, central_offset); put16(zip, 0);

  namespace fs = std::filesystem;
  fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  std::string tmp = (target.parent_path() / ("." + target.filename().string() + ".XXXXXX.tmp")).string();
  int fd = mkstemps(tmp.data(), 4);
  if (fd < 0) throw std::runtime_error("cannot create a temporary file next to " + path);
  bool ok = write(fd, zip.data(), zip.size()) == static_cast<ssize_t>(zip.size());
  ok = close(fd) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write the outputs to " + path);
  }
}

}  // namespace greenrt
