#include "wristssl/models/bundle.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "wristssl/metrics/calibration.h"
#include "wristssl/util/fs.h"
#include "wristssl/util/hash.h"
#include "wristssl/version.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wristssl::models {
namespace {

constexpr char kMagic[] = "WRISTSSL-MODEL\n";  // 15 characters and its terminating NUL: 16 bytes
constexpr size_t kMagicSize = sizeof(kMagic);
constexpr size_t kHeaderSize = kMagicSize + 4 + 4;
constexpr size_t kShaSize = 32;
// Tensors a ResNet-18 classifier has (with running statistics); a manifest listing more is refused.
constexpr size_t kMaxTensors = 4096;

void put_u32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t get_le(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= static_cast<uint64_t>(static_cast<uint8_t>(s[at + i])) << (8 * i);
  return v;
}

}  // namespace

BundleError::BundleError(const std::string& path, std::string check, const std::string& reason)
    : std::runtime_error(path + ": not a usable wristssl model bundle (" + check +
                         " check failed): " + reason),
      check_(std::move(check)) {}

double DecisionRule::probability(double margin) const {
  return metrics::sigmoid(margin / temperature);
}

const char* DecisionRule::decide(double p) const {
  if (p >= refer_lo && p < refer_hi) return "refer";
  return p >= threshold ? "fracture" : "no_fracture";
}

DecisionRule DecisionRule::from_json(const json& d) {
  DecisionRule r;
  r.threshold = d.at("threshold").get<double>();
  r.temperature = d.at("calibration").at("temperature").get<double>();
  r.refer_lo = d.at("refer_band").at("lo").get<double>();
  r.refer_hi = d.at("refer_band").at("hi").get<double>();
  if (!(r.temperature > 0) || !(r.threshold >= 0 && r.threshold <= 1) ||
      !(r.refer_lo <= r.threshold) || !(r.threshold <= r.refer_hi)) {
    throw std::runtime_error(
        "decision: need temperature > 0 and refer_lo <= threshold <= refer_hi in [0, 1], got " +
        d.dump());
  }
  return r;
}

std::string Bundle::id() const {
  return manifest.value("name", std::string("model")) + "@" + sha256.substr(0, 12);
}

const NamedTensor& Bundle::tensor(const std::string& name) const {
  for (const auto& t : tensors) {
    if (t.name == name) return t;
  }
  throw BundleError(path, "tensors", "no tensor named " + name);
}

uint16_t half_bits(float value) {
  uint32_t x;
  std::memcpy(&x, &value, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t mag = x & 0x7fffffff;
  if (mag >= 0x7f800000) return sign | 0x7c00 | (mag > 0x7f800000 ? 0x200 : 0);  // inf, NaN
  if (mag >= 0x477ff000) return sign | 0x7c00;  // 65520 and above round to infinity
  if (mag >= 0x38800000) {                      // a normal half (2^-14 and above)
    uint32_t m = mag - 0x38000000;              // exponent bias 127 -> 15
    m += 0xfff + ((m >> 13) & 1);               // round to nearest, ties to even
    return sign | static_cast<uint16_t>(m >> 13);
  }
  if (mag < 0x33000000) return sign;  // below 2^-25: zero (2^-25 itself ties to even: zero)
  // A subnormal half: units of 2^-24.
  const uint32_t e = mag >> 23, m = (mag & 0x7fffff) | 0x800000;
  const uint32_t shift = 126 - e, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
  uint32_t q = m >> shift;
  if (rem > half || (rem == half && (q & 1))) ++q;
  return sign | static_cast<uint16_t>(q);
}

float half_value(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16, e = (h >> 10) & 0x1f,
                 m = h & 0x3ff;
  if (e == 0) {
    const float v = std::ldexp(static_cast<float>(m), -24);
    return sign ? -v : v;
  }
  const uint32_t bits = sign | (e == 31 ? 0x7f800000 | (m << 13) : ((e + 112) << 23) | (m << 13));
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float round_to_half(float value) { return half_value(half_bits(value)); }

namespace {

// Bytes per value of a storage: 2 for "float16", 4 for "float32"; throws for another.
uint64_t storage_width(const std::string& storage) {
  if (storage != "float32" && storage != "float16") {
    throw std::invalid_argument("bundle storage '" + storage + "' is neither float32 nor float16");
  }
  return storage == "float16" ? 2 : 4;
}

}  // namespace

void set_storage(Bundle& b, const std::string& storage) {
  if (storage_width(storage) == 2) {
    for (auto& t : b.tensors) {
      for (float& v : t.values) {
        if (std::isfinite(v) && std::fabs(v) > 65504.0f) {
          throw std::invalid_argument("tensor " + t.name + " holds " + std::to_string(v) +
                                      ", beyond half precision's range: store it as float32");
        }
        v = round_to_half(v);
      }
    }
  }
  b.storage = storage;
}

std::string bundle_bytes(Bundle& b) {
  const uint64_t width = storage_width(b.storage);
  const bool half = width == 2;
  json list = json::array();
  uint64_t offset = 0;
  for (const auto& t : b.tensors) {
    uint64_t n = 1;
    for (int64_t d : t.shape) {
      if (d < 0) throw std::invalid_argument("tensor " + t.name + " has a negative dimension");
      n *= static_cast<uint64_t>(d);
    }
    if (n != t.values.size()) {
      throw std::invalid_argument("tensor " + t.name + ": shape holds " + std::to_string(n) +
                                  " values, data " + std::to_string(t.values.size()));
    }
    list.push_back({{"name", t.name},
                    {"shape", t.shape},
                    {"dtype", b.storage},
                    {"offset", offset},
                    {"nbytes", n * width}});
    offset += n * width;
  }
  b.manifest["format"] = "wristssl.model";
  b.manifest["format_version"] = kBundleFormatVersion;
  b.manifest["tensors"] = list;
  const std::string manifest = b.manifest.dump(1);
  std::string out(kMagic, kMagicSize);
  put_u32(out, kBundleFormatVersion);
  put_u32(out, 0);
  put_u64(out, manifest.size());
  out += manifest;
  put_u64(out, offset);
  const size_t payload_at = out.size();
  out.resize(payload_at + offset);
  // float32 little-endian: x86-64 and aarch64, the platforms LibTorch ships for, are both
  // little-endian.
  for (size_t k = 0; k < b.tensors.size(); ++k) {
    char* dst = &out[payload_at + list[k]["offset"].get<size_t>()];
    const std::vector<float>& v = b.tensors[k].values;
    if (half) {
      for (size_t i = 0; i < v.size(); ++i) {
        const uint16_t bits = half_bits(v[i]);
        std::memcpy(dst + 2 * i, &bits, 2);
      }
    } else {
      std::memcpy(dst, v.data(), v.size() * sizeof(float));
    }
  }
  const std::string digest = util::sha256_digest(out.data(), out.size());
  b.sha256 = util::to_hex(digest);
  out += digest;
  return out;
}

void write_bundle(Bundle& b, const std::string& path) {
  const std::string bytes = bundle_bytes(b);
  util::atomic_write(path, bytes);
  b.path = path;
}

Bundle parse_bundle(const std::string& s, const std::string& name) {
  if (s.size() < kMagicSize || std::memcmp(s.data(), kMagic, kMagicSize) != 0) {
    throw BundleError(
        name, "magic",
        "the file does not start with the wristssl model signature (is it a model.wristssl?)");
  }
  if (s.size() < kHeaderSize)
    throw BundleError(name, "truncated", "the file ends inside its header");
  const uint32_t version = static_cast<uint32_t>(get_le(s, kMagicSize, 4));
  if (version > kBundleFormatVersion) {
    throw BundleError(name, "version",
                      "format version " + std::to_string(version) +
                          " was written by a newer wristssl; this build reads up to version " +
                          std::to_string(kBundleFormatVersion) + ": upgrade wristssl");
  }
  if (version == 0) throw BundleError(name, "version", "format version 0 does not exist");
  // Lengths first, against the real size, so nothing is allocated from an unchecked field.
  size_t at = kHeaderSize;
  if (s.size() < at + 8)
    throw BundleError(name, "truncated", "the file ends before the manifest length");
  const uint64_t m = get_le(s, at, 8);
  at += 8;
  if (m > s.size() || at + m + 8 > s.size()) {
    throw BundleError(name, "truncated",
                      "the manifest length (" + std::to_string(m) +
                          " bytes) runs past the end of the file (" + std::to_string(s.size()) +
                          " bytes)");
  }
  const size_t manifest_at = at;
  at += m;
  const uint64_t p = get_le(s, at, 8);
  at += 8;
  if (p > s.size() || at + p + kShaSize != s.size()) {
    throw BundleError(name, "truncated",
                      "the file holds " + std::to_string(s.size()) + " bytes; its lengths say " +
                          std::to_string(at + p + kShaSize) + " (cut short, or bytes added)");
  }
  const size_t payload_at = at;
  const std::string want = util::to_hex(s.substr(s.size() - kShaSize));
  const std::string got = util::sha256_hex(s.data(), s.size() - kShaSize);
  if (want != got) {
    throw BundleError(name, "checksum",
                      "the SHA-256 of the contents (" + got.substr(0, 16) +
                          "...) differs from the one stored (" + want.substr(0, 16) +
                          "...): the file was modified or damaged");
  }
  Bundle b;
  b.sha256 = got;
  b.path = name;
  try {
    b.manifest = json::parse(s.substr(manifest_at, m));
  } catch (const std::exception& e) {
    throw BundleError(name, "manifest", std::string("the manifest is not JSON: ") + e.what());
  }
  try {
    if (b.manifest.at("format").get<std::string>() != "wristssl.model")
      throw std::runtime_error("format is not wristssl.model");
    const json& list = b.manifest.at("tensors");
    if (!list.is_array() || list.size() > kMaxTensors)
      throw std::runtime_error("'tensors' is not a list of at most 4096");
    for (const json& t : list) {
      NamedTensor nt;
      nt.name = t.at("name").get<std::string>();
      nt.shape = t.at("shape").get<std::vector<int64_t>>();
      const std::string dtype = t.at("dtype").get<std::string>();
      if (dtype != "float32" && dtype != "float16")
        throw std::runtime_error(nt.name + ": dtype " + dtype + " is neither float32 nor float16");
      const uint64_t width = dtype == "float16" ? 2 : 4;
      if (dtype == "float16") b.storage = "float16";
      uint64_t n = 1;
      for (int64_t d : nt.shape) {
        if (d < 0 || d > (1LL << 31))
          throw std::runtime_error(nt.name + ": bad dimension " + std::to_string(d));
        n *= static_cast<uint64_t>(d);
        if (n > p) throw std::runtime_error(nt.name + ": shape larger than the payload");
      }
      const uint64_t offset = t.at("offset").get<uint64_t>(),
                     nbytes = t.at("nbytes").get<uint64_t>();
      if (nbytes != n * width || offset > p || nbytes > p - offset) {
        throw std::runtime_error(nt.name + ": offset " + std::to_string(offset) + " + " +
                                 std::to_string(nbytes) + " bytes do not fit the payload of " +
                                 std::to_string(p));
      }
      nt.values.resize(n);
      if (width == 2) {
        const char* src = s.data() + payload_at + offset;
        for (uint64_t i = 0; i < n; ++i) {
          uint16_t h;
          std::memcpy(&h, src + 2 * i, 2);
          nt.values[i] = half_value(h);
        }
      } else {
        std::memcpy(nt.values.data(), s.data() + payload_at + offset, nbytes);
      }
      b.tensors.push_back(std::move(nt));
    }
  } catch (const BundleError&) {
    throw;
  } catch (const std::exception& e) {
    throw BundleError(name, "manifest", e.what());
  }
  return b;
}

Bundle read_bundle(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw BundleError(path, "io", "is a folder, not a bundle file");
  const auto size = fs::file_size(path, ec);
  if (ec) throw BundleError(path, "io", "cannot read: " + ec.message());
  if (size > kBundleMaxBytes) {
    throw BundleError(
        path, "io",
        "the file is " + std::to_string(size) + " bytes, more than a model bundle can be (1 GiB)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw BundleError(path, "io", "cannot open");
  std::string bytes(static_cast<size_t>(size), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(in.gcount()) != size) throw BundleError(path, "io", "short read");
  return parse_bundle(bytes, path);
}

std::string model_or_shipped(const std::string& model) {
  if (!model.empty()) return model;
  if (const char* env = std::getenv("WRISTSSL_MODEL"); env && *env) return env;
  std::vector<fs::path> places;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    places.push_back(exe.parent_path() / ".." / "models");
    places.push_back(exe.parent_path() / ".." / "share" / "wristssl" / "models");
  }
  places.push_back(fs::path(kSourceDir) / "models");
  std::string looked;
  for (const fs::path& p : places) {
    const fs::path f = (p / kShippedModelFile).lexically_normal();
    if (fs::is_regular_file(f, ec)) return f.string();
    looked += (looked.empty() ? "" : ", ") + f.string();
  }
  throw std::runtime_error(std::string("no --model given and the shipped model ") +
                           kShippedModelFile + " was not found (looked in " + looked +
                           "; $WRISTSSL_MODEL names another)");
}

}  // namespace wristssl::models
