#pragma once
// The model bundle: one file that holds everything needed to use a trained classifier on new
// images: the weights, the preprocessing, the frozen operating threshold, the refer band, the
// calibration, the class names, a summary of the training data and of the test metrics, and the
// versions that made it.
//
// Layout (all integers little-endian):
//   16 bytes  magic "WRISTSSL-MODEL\n\0"
//   u32       format version
//   u32       reserved (0)
//   u64       manifest length M, then M bytes of JSON (the manifest)
//   u64       tensor payload length P, then P bytes: the tensors in manifest order, each float32
//             or float16 (IEEE half; "dtype" in its manifest entry), widened to float32 on reading
//   32 bytes  SHA-256 of every byte before it
// Nothing is parsed before the magic, the version, the lengths and the SHA-256 are checked: a
// bundle that fails any check is refused with a BundleError naming the file and the check. The
// tensors are raw numbers (no pickled objects), so reading a bundle never runs code from it.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace wristssl::models {

/// A bundle that failed a check: `check` names it ("io", "magic", "version", "truncated",
/// "checksum", "manifest", "tensors").
class BundleError : public std::runtime_error {
 public:
  BundleError(const std::string& path, std::string check, const std::string& reason);
  const std::string& check() const { return check_; }

 private:
  std::string check_;
};

/// One named float32 tensor.
struct NamedTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;  // product(shape) values, row-major
};

struct Bundle {
  nlohmann::json manifest;  // see docs/deploy.md "The model bundle"; "tensors" is filled on write
  std::vector<NamedTensor> tensors;  // always float32 in memory
  /// How the values are stored in the file: "float32", or "float16" (half the size; the values are
  /// rounded to the nearest half, ties to even, and widened again on reading). Set by read.
  std::string storage = "float32";
  std::string sha256;  // hex SHA-256 of the file (its trailer); set by read and write
  std::string path;    // where it was read from or written to

  /// "<name>@<first 12 hex digits of sha256>": how logs, CSVs and reports name the model.
  std::string id() const;
  /// The tensor called `name`; throws BundleError("tensors") when absent.
  const NamedTensor& tensor(const std::string& name) const;
};

/// How a bundle turns the logit margin m = z_fracture - z_no_fracture into a calibrated probability
/// and a decision: p = sigmoid(m / temperature); "refer" when refer_lo <= p < refer_hi, else
/// "fracture" when p >= threshold. All three are chosen on validation and frozen in the bundle.
struct DecisionRule {
  double temperature = 1.0;
  double threshold = 0.5;                 // calibrated probability
  double refer_lo = 0.5, refer_hi = 0.5;  // calibrated probabilities; lo == hi: no band
  double probability(double margin) const;
  const char* decide(double probability) const;
  /// From a manifest's "decision" object; throws std::runtime_error naming a missing or bad field.
  static DecisionRule from_json(const nlohmann::json& decision);
};

constexpr uint32_t kBundleFormatVersion = 1;
/// Bundles larger than this are refused before anything is read (a ResNet-18 bundle is about 45
/// MB).
constexpr uint64_t kBundleMaxBytes = 1ULL << 30;

/// `value` rounded to the nearest IEEE half-precision number (ties to even) and widened back: what
/// a float16 bundle stores.
float round_to_half(float value);
/// The IEEE half-precision bits of `value` (rounded to nearest, ties to even), and back.
uint16_t half_bits(float value);
float half_value(uint16_t bits);

/// Sets `bundle.storage` ("float32" or "float16") and rounds its values to what that storage keeps,
/// so the bundle in memory scores exactly as the file will. Throws std::invalid_argument for
/// another storage or a value beyond half precision's range (65504).
void set_storage(Bundle& bundle, const std::string& storage);

/// The bundle's bytes; sets bundle.sha256 (and manifest "tensors", "format", "format_version").
std::string bundle_bytes(Bundle& bundle);

/// Writes the bundle atomically (temp file, fsync, rename); sets sha256 and path.
void write_bundle(Bundle& bundle, const std::string& path);

/// Reads and verifies a bundle (magic, version, lengths, SHA-256, manifest, tensor shapes); throws
/// BundleError naming `path` and the failed check.
Bundle read_bundle(const std::string& path);

/// The same from bytes in memory; `name` is used in messages.
Bundle parse_bundle(const std::string& bytes, const std::string& name);

/// The model wristssl ships, trained on FracAtlas (README "The shipped model"): models/ in the
/// repository, share/wristssl/models/ once installed.
constexpr const char* kShippedModelFile = "fracatlas-v1.wristssl";

/// `model` when it is not empty; otherwise the shipped model's path: $WRISTSSL_MODEL when set, else
/// the first of <executable's folder>/../models/, <executable's folder>/../share/wristssl/models/
/// and the source tree's models/ that holds it. Throws std::runtime_error naming the places looked
/// in when none does.
std::string model_or_shipped(const std::string& model);

}  // namespace wristssl::models
