#include "wristssl/models/bundle.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <fstream>

#include "test_paths.h"
#include "wristssl/models/classifier.h"
#include "wristssl/train/run_bundle.h"
#include "wristssl/util/fs.h"
#include "wristssl/util/hash.h"

namespace wristssl::models {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string bytes_of(Bundle b) { return bundle_bytes(b); }

std::string check_failed(const std::string& bytes) {
  try {
    parse_bundle(bytes, "x.wristssl");
  } catch (const BundleError& e) {
    EXPECT_NE(std::string(e.what()).find("x.wristssl"), std::string::npos)
        << "the message names the file";
    return e.check();
  }
  return "";
}

// Recomputes the trailer, as a forger would: the structure checks must still catch a lie.
std::string rehash(std::string s) {
  s.resize(s.size() - 32);
  return s + util::sha256_digest(s.data(), s.size());
}

TEST(Bundle, RoundTripsWeightsManifestAndOutputs) {
  Bundle b = train::untrained_bundle(64, 48, 1);
  const std::string path = testing::temp_dir("bundle") + "/m.wristssl";
  write_bundle(b, path);
  const Bundle r = read_bundle(path);
  EXPECT_EQ(r.sha256, b.sha256);
  // The id is the SHA-256 of everything before the trailer, and the trailer holds that digest.
  const std::string bytes = read_file(path);
  ASSERT_GT(bytes.size(), 32u);
  EXPECT_EQ(r.sha256, util::sha256_hex(bytes.data(), bytes.size() - 32));
  EXPECT_EQ(bytes.substr(bytes.size() - 32), util::sha256_digest(bytes.data(), bytes.size() - 32));
  EXPECT_EQ(r.manifest["preprocessing"]["input_size"], 48);
  EXPECT_EQ(r.manifest["format_version"], kBundleFormatVersion);
  EXPECT_EQ(r.id(), "untrained@" + b.sha256.substr(0, 12));
  ASSERT_EQ(r.tensors.size(), b.tensors.size());
  // The same network: identical logits from the original tensors and the ones read back.
  Classifier m1 = classifier_from_bundle(b), m2 = classifier_from_bundle(r);
  torch::manual_seed(0);
  const torch::Tensor x = torch::randn({2, 1, 48, 48});
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(m1->forward(x), m2->forward(x)));
  // The decision rule reads back too.
  const DecisionRule rule = DecisionRule::from_json(r.manifest["decision"]);
  EXPECT_DOUBLE_EQ(rule.temperature, 1.5);
  EXPECT_STREQ(rule.decide(rule.threshold), "refer");
  EXPECT_STREQ(rule.decide(0.99), "fracture");
  EXPECT_STREQ(rule.decide(0.01), "no_fracture");
}

TEST(Bundle, HalfPrecisionRoundsAsTorchDoes) {
  // Against LibTorch's own float -> half conversion: normal numbers, subnormals, ties, the range's
  // ends, infinities.
  std::vector<float> v{0.0f,     -0.0f,    1.0f / 3,           65504.0f,
                       65519.0f, 65520.0f, 1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048,
                       6.1e-5f,  5.96e-8f, 2.98e-8f,           2.99e-8f,
                       -1e-6f,   1e9f,     -INFINITY};
  torch::manual_seed(1);
  const torch::Tensor r = torch::randn({2000}) * torch::pow(10.0, torch::randint(-9, 5, {2000}));
  for (int64_t i = 0; i < r.numel(); ++i) v.push_back(r[i].item<float>());
  const torch::Tensor want = torch::tensor(v).to(torch::kHalf).to(torch::kFloat);
  for (size_t i = 0; i < v.size(); ++i) {
    const float w = want[static_cast<int64_t>(i)].item<float>();
    EXPECT_EQ(round_to_half(v[i]), w) << "value " << v[i];
    EXPECT_EQ(half_value(half_bits(w)), w) << "a half value survives the round trip: " << w;
  }
  EXPECT_EQ(round_to_half(1.0f / 3), 0.333251953125f);
  EXPECT_TRUE(std::isnan(round_to_half(NAN)));
}

TEST(Bundle, StoresAtHalfPrecisionAndWidensOnReading) {
  Bundle b = train::untrained_bundle(64, 48, 2);
  const size_t full = bundle_bytes(b).size();
  Bundle h = b;
  set_storage(h, "float16");
  const std::string path = testing::temp_dir("bundle_half") + "/h.wristssl";
  write_bundle(h, path);
  const Bundle r = read_bundle(path);
  EXPECT_EQ(r.storage, "float16");
  EXPECT_EQ(r.manifest["tensors"][0]["dtype"], "float16");
  const size_t half = read_file(path).size();
  EXPECT_LT(half, full * 0.55) << "about half the float32 file";
  // Read back, the values are the rounded ones exactly, and the rounding moved them by at most
  // half a unit in the last place of a half (2^-11 relative).
  ASSERT_EQ(r.tensors.size(), b.tensors.size());
  for (size_t t = 0; t < r.tensors.size(); ++t) {
    EXPECT_EQ(r.tensors[t].values, h.tensors[t].values) << r.tensors[t].name;
    for (size_t i = 0; i < r.tensors[t].values.size(); ++i) {
      const float x = b.tensors[t].values[i];
      ASSERT_LE(std::fabs(r.tensors[t].values[i] - x), std::fabs(x) / 2048 + 6e-8f)
          << r.tensors[t].name;
    }
  }
  // The same checks as float32: a changed byte is refused.
  std::string bytes = read_file(path);
  bytes[bytes.size() - 100] ^= 0x04;
  EXPECT_EQ(check_failed(bytes), "checksum");
  // Out of half precision's range: refused with the tensor's name.
  Bundle big = b;
  big.tensors[0].values[0] = 1e6f;
  try {
    set_storage(big, "float16");
    FAIL() << "1e6 was stored at half precision";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(big.tensors[0].name), std::string::npos) << e.what();
  }
  EXPECT_THROW(set_storage(b, "bfloat16"), std::invalid_argument);
}

TEST(Bundle, TheShippedModelIsFoundOrNamedWhereItWasLookedFor) {
  EXPECT_EQ(model_or_shipped("given.wristssl"), "given.wristssl");
  setenv("WRISTSSL_MODEL", "/elsewhere/m.wristssl", 1);
  EXPECT_EQ(model_or_shipped(""), "/elsewhere/m.wristssl");
  unsetenv("WRISTSSL_MODEL");
  // In this build the source tree's models/ holds it (committed with the repository).
  const std::string found = model_or_shipped("");
  EXPECT_NE(found.find(kShippedModelFile), std::string::npos) << found;
  EXPECT_NO_THROW(read_bundle(found));
}

TEST(Bundle, RefusesTamperedTruncatedForeignAndFutureFiles) {
  const std::string good = bytes_of(train::untrained_bundle(32, 32, 2));
  EXPECT_EQ(check_failed(good), "");
  // One weight byte changed: the checksum.
  std::string t = good;
  t[t.size() / 2] ^= 0x01;
  EXPECT_EQ(check_failed(t), "checksum");
  // One manifest byte changed (threshold digits): the checksum too.
  std::string m = good;
  m[40] = m[40] == '1' ? '2' : '1';
  EXPECT_EQ(check_failed(m), "checksum");
  // Cut short, or with bytes added.
  EXPECT_EQ(check_failed(good.substr(0, good.size() - 1000)), "truncated");
  EXPECT_EQ(check_failed(good.substr(0, 20)), "truncated");
  EXPECT_EQ(check_failed(good + "x"), "truncated");
  // Not a bundle at all.
  EXPECT_EQ(check_failed("\x89PNG\r\n\x1a\n0000000000000000000000"), "magic");
  EXPECT_EQ(check_failed(""), "magic");
  // From a future format version: named, before anything else is trusted.
  std::string f = good;
  f[16] = 2;
  try {
    parse_bundle(f, "future.wristssl");
    FAIL() << "a future version was accepted";
  } catch (const BundleError& e) {
    EXPECT_EQ(e.check(), "version");
    EXPECT_NE(std::string(e.what()).find("format version 2"), std::string::npos) << e.what();
  }
  // A huge manifest length (as a hostile file would have): refused without allocating it.
  std::string h = good;
  for (int i = 0; i < 8; ++i) h[24 + i] = static_cast<char>(0xff);
  EXPECT_EQ(check_failed(rehash(h)), "truncated");
}

TEST(Bundle, RefusesAManifestThatLiesAboutItsTensors) {
  Bundle b = train::untrained_bundle(32, 32, 3);
  std::string s = bundle_bytes(b);
  // Rewrite one tensor's shape in the manifest (same length), then fix the checksum.
  const std::string key = "\"nbytes\":";
  const size_t at = s.find(key);
  ASSERT_NE(at, std::string::npos);
  s[at + key.size()] = s[at + key.size()] == '9' ? '8' : '9';
  EXPECT_EQ(check_failed(rehash(s)), "manifest");
  // A tensor of the wrong shape is refused when loaded into the model.
  Bundle w = train::untrained_bundle(32, 32, 4);
  w.tensors[0].shape = {1, 1, 1, w.tensors[0].shape[0] * w.tensors[0].shape[1] * 49};
  w.path = "w.wristssl";
  EXPECT_THROW(classifier_from_bundle(w), BundleError);
  Bundle x = train::untrained_bundle(32, 32, 5);
  x.tensors.push_back({"extra.weight", {1}, {0.0f}});
  EXPECT_THROW(classifier_from_bundle(x), BundleError);
}

TEST(Bundle, RefusesAFolderAndAMissingFile) {
  EXPECT_THROW(read_bundle(testing::temp_dir("bundle-folder")), BundleError);
  EXPECT_THROW(read_bundle("/nonexistent/model.wristssl"), BundleError);
}

}  // namespace
}  // namespace wristssl::models
