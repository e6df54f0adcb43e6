#include "wristssl/train/run_bundle.h"

#include <gtest/gtest.h>

#include <cmath>

namespace wristssl::train {
namespace {

bool finite_number(const nlohmann::json& j) { return j.is_number() && std::isfinite(j.get<double>()); }

// A short fine-tuning can blow the logits up until scores saturate at exactly 1.0 in float, and Youden's J
// can then pick 1.0 as the threshold (seen on the --quick study in bf16). Its log-odds are infinite; the
// decision block must stay finite (JSON has no infinity: it became null, and evaluate failed on it).
TEST(FitDecision, AThresholdOfExactlyOneOrZeroStaysFinite) {
  const std::vector<int> labels = {0, 0, 0, 1, 1, 1, 0, 1};
  const std::vector<double> margins = {-3.0, -1.0, 25.0, 30.0, 40.0, 2.0, 0.5, 35.0};
  for (double raw : {1.0, 0.0}) {
    const nlohmann::json d = fit_decision(labels, margins, raw, "youden", 0.25);
    EXPECT_TRUE(finite_number(d["threshold"])) << raw << ": " << d.dump();
    EXPECT_TRUE(finite_number(d["threshold_margin"])) << d.dump();
    EXPECT_TRUE(finite_number(d["refer_band"]["lo"])) << d.dump();
    EXPECT_TRUE(finite_number(d["refer_band"]["hi"])) << d.dump();
    EXPECT_EQ(d["threshold_raw"].get<double>(), raw);
  }
  // Just inside the saturation: the images whose float score is 1.0 (margins of about 16.6 and up) stay positive.
  const nlohmann::json one = fit_decision(labels, margins, 1.0, "youden", 0.25);
  EXPECT_GT(one["threshold_margin"].get<double>(), 15.0);
  EXPECT_LT(one["threshold_margin"].get<double>(), 16.6);
  // An ordinary threshold keeps its exact log-odds.
  const nlohmann::json mid = fit_decision(labels, margins, 0.75, "youden", 0.25);
  EXPECT_NEAR(mid["threshold_margin"].get<double>(), std::log(3.0), 1e-12);
}

}  // namespace
}  // namespace wristssl::train
