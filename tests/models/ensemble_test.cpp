#include "wristssl/models/ensemble.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "test_paths.h"
#include "wristssl/infer/export.h"
#include "wristssl/models/classifier.h"
#include "wristssl/train/run_bundle.h"
#include "wristssl/util/hash.h"

namespace wristssl::models {
namespace {

DecisionRule rule_with(double temperature) {
  DecisionRule r;
  r.temperature = temperature;
  return r;
}

std::string check_of(const std::function<void()>& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const BundleError& e) {
    if (message) *message = e.what();
    return e.check();
  }
  return "";
}

TEST(Ensemble, MarginIsTheLogitOfTheMeanCalibratedProbability) {
  const std::vector<double> a{-3.0, 0.0, 2.5, 40.0}, b{1.0, 0.5, -4.0, 41.0};
  const std::vector<DecisionRule> rules{rule_with(1.5), rule_with(0.7)};
  const torch::Tensor got =
      combine_margins({torch::tensor(a, torch::kDouble), torch::tensor(b, torch::kDouble)}, rules);
  for (size_t i = 0; i < a.size(); ++i) {
    const double p = 0.5 / (1 + std::exp(-a[i] / 1.5)) + 0.5 / (1 + std::exp(-b[i] / 0.7));
    if (p < 1 - 1e-9) {
      EXPECT_NEAR(got[static_cast<int64_t>(i)].item<double>(), std::log(p / (1 - p)), 1e-9) << i;
    } else {
      // Both members nearly certain: 1 - p underflows in the formula above, not in the tool.
      EXPECT_TRUE(std::isfinite(got[static_cast<int64_t>(i)].item<double>()));
      EXPECT_GT(got[static_cast<int64_t>(i)].item<double>(), 25.0);
    }
  }
  // One member: its raw margin, unchanged (its own rule calibrates it).
  const torch::Tensor one = combine_margins({torch::tensor(a, torch::kDouble)}, {rule_with(1.5)});
  EXPECT_TRUE(torch::equal(one, torch::tensor(a, torch::kDouble)));
}

class EnsembleBundle : public ::testing::Test {
 protected:
  void SetUp() override {
    for (uint64_t seed : {3, 4, 5}) {
      Bundle b = train::untrained_bundle(48, 48, seed, "m" + std::to_string(seed));
      b.sha256 = util::sha256_hex(std::to_string(seed).data(), 1);  // as if read from a file
      members_.push_back(b);
    }
  }
  std::vector<Bundle> members_;
};

TEST_F(EnsembleBundle, RoundTripsAndGivesBackItsMembers) {
  Bundle e = make_ensemble(members_, "trio");
  EXPECT_TRUE(is_ensemble(e));
  EXPECT_FALSE(is_ensemble(members_[0]));
  const Bundle back = parse_bundle(bundle_bytes(e), "trio.wristssl");
  const std::vector<Bundle> got = bundle_members(back);
  ASSERT_EQ(got.size(), 3u);
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(got[k].manifest["name"], members_[k].manifest["name"]);
    EXPECT_EQ(got[k].sha256, members_[k].sha256) << "the member's source is recorded";
    ASSERT_EQ(got[k].tensors.size(), members_[k].tensors.size());
    for (size_t t = 0; t < got[k].tensors.size(); ++t) {
      EXPECT_EQ(got[k].tensors[t].name, members_[k].tensors[t].name);
      EXPECT_EQ(got[k].tensors[t].values, members_[k].tensors[t].values);
    }
    Classifier net = classifier_from_bundle(got[k]);  // every tensor in place
    EXPECT_EQ(net->num_classes, 2);
  }
  // The ensemble's own rule: temperature 1, the members' mean threshold.
  const DecisionRule r = DecisionRule::from_json(back.manifest["decision"]);
  EXPECT_EQ(r.temperature, 1.0);
  EXPECT_NEAR(r.threshold, DecisionRule::from_json(members_[0].manifest["decision"]).threshold,
              1e-12);
}

TEST_F(EnsembleBundle, RefusesAMissingOrIncompleteMember) {
  Bundle e = make_ensemble(members_, "trio");
  Bundle missing = e;
  missing.tensors.erase(
      std::remove_if(missing.tensors.begin(), missing.tensors.end(),
                     [](const NamedTensor& t) { return t.name.rfind("members.1.", 0) == 0; }),
      missing.tensors.end());
  std::string msg;
  const Bundle read_missing = parse_bundle(bundle_bytes(missing), "missing.wristssl");
  EXPECT_EQ(check_of([&] { bundle_members(read_missing); }, &msg), "members");
  EXPECT_NE(msg.find("member 1 (m4): its weights are missing"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing.wristssl"), std::string::npos) << msg;

  Bundle incomplete = e;
  for (auto it = incomplete.tensors.begin(); it != incomplete.tensors.end(); ++it) {
    if (it->name.rfind("members.2.", 0) == 0) {
      incomplete.tensors.erase(it);
      break;
    }
  }
  const Bundle read_incomplete = parse_bundle(bundle_bytes(incomplete), "x.wristssl");
  EXPECT_EQ(check_of([&] { bundle_members(read_incomplete); }, &msg), "members");
  EXPECT_NE(msg.find("member 2 (m5): its weights are incomplete"), std::string::npos) << msg;

  Bundle stray = e;
  stray.tensors.push_back({"members.7.head.bias", {2}, {0.f, 0.f}});
  const Bundle read_stray = parse_bundle(bundle_bytes(stray), "x.wristssl");
  EXPECT_EQ(check_of([&] { bundle_members(read_stray); }, &msg), "members");
  EXPECT_NE(msg.find("belongs to no member"), std::string::npos) << msg;

  Bundle no_rule = e;
  no_rule.manifest["members"][0].erase("decision");
  const Bundle read_no_rule = parse_bundle(bundle_bytes(no_rule), "x.wristssl");
  EXPECT_EQ(check_of([&] { bundle_members(read_no_rule); }, &msg), "members");
  EXPECT_NE(msg.find("member 0: malformed entry"), std::string::npos) << msg;
}

TEST_F(EnsembleBundle, RefusesATamperedMember) {
  Bundle e = make_ensemble(members_, "trio");
  std::string bytes = bundle_bytes(e);
  // A byte inside the last member's weights (the payload's end is just before the trailer).
  bytes[bytes.size() - 32 - 1000] ^= 0x01;
  EXPECT_EQ(check_of([&] { parse_bundle(bytes, "x.wristssl"); }), "checksum");
}

TEST_F(EnsembleBundle, MembersMustAgreeAndCannotBeEnsembles) {
  std::vector<Bundle> odd = members_;
  odd[2].manifest["preprocessing"]["image_size"] = 64;
  odd[2].path = "odd.wristssl";
  try {
    make_ensemble(odd, "x");
    FAIL() << "a member with other preprocessing was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("odd.wristssl: its preprocessing differs"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(make_ensemble({members_[0]}, "x"), std::invalid_argument);
  const Bundle e = make_ensemble(members_, "trio");
  EXPECT_THROW(make_ensemble({e, members_[0]}, "x"), std::invalid_argument);
}

TEST_F(EnsembleBundle, ExportsRefuseAnEnsembleWithTheReason) {
  const std::string dir = testing::temp_dir("ensemble_export");
  Bundle e = make_ensemble(members_, "trio");
  write_bundle(e, dir + "/trio.wristssl");
  for (const char* format : {"torchscript", "onnx", "torchvision"}) {
    try {
      infer::export_model(dir + "/trio.wristssl", format, dir + "/out");
      FAIL() << format << " exported an ensemble";
    } catch (const std::runtime_error& err) {
      EXPECT_NE(std::string(err.what()).find("ensemble of 3 models cannot be exported"),
                std::string::npos)
          << err.what();
    }
  }
}

}  // namespace
}  // namespace wristssl::models
