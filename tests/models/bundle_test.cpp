#include "wristssl/models/bundle.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

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
