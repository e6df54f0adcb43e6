#include "wristssl/metrics/calibration.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "wristssl/metrics/binary_metrics.h"

namespace wristssl::metrics {
namespace {

// Labels drawn from sigmoid(m / T0): the fitted temperature must come back near T0, and the NLL's
// derivative must vanish there (its optimality condition, checked independently of the search).
TEST(Calibration, TemperatureRecoversTheTrueOneAndIsOptimal) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> margin(0.5, 3.0);
  std::uniform_real_distribution<double> u(0, 1);
  for (double t0 : {0.5, 1.0, 2.5}) {
    std::vector<double> m;
    std::vector<int> y;
    for (int i = 0; i < 20000; ++i) {
      m.push_back(margin(rng));
      y.push_back(u(rng) < sigmoid(m.back() / t0) ? 1 : 0);
    }
    const double t = fit_temperature(m, y);
    EXPECT_NEAR(t, t0, 0.06 * t0) << "T0 " << t0;
    // d NLL / d(1/T) = -mean((y - sigmoid(m / T)) * m) = 0 at the optimum.
    double g = 0;
    for (size_t i = 0; i < m.size(); ++i) g += (y[i] - sigmoid(m[i] / t)) * m[i];
    EXPECT_NEAR(g / m.size(), 0.0, 1e-6);
    EXPECT_LT(binary_nll(m, y, t), binary_nll(m, y, t * 1.05));
    EXPECT_LT(binary_nll(m, y, t), binary_nll(m, y, t / 1.05));
  }
}

TEST(Calibration, OverconfidentScoresGetATemperatureAboveOneAndALowerEce) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> margin(0, 2.0);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<double> m, raw, cal;
  std::vector<int> y;
  for (int i = 0; i < 5000; ++i) {
    const double true_m = margin(rng);
    y.push_back(u(rng) < sigmoid(true_m) ? 1 : 0);
    m.push_back(3.0 * true_m);  // a model three times too sure
  }
  const double t = fit_temperature(m, y);
  EXPECT_NEAR(t, 3.0, 0.3);
  for (double x : m) {
    raw.push_back(sigmoid(x));
    cal.push_back(sigmoid(x / t));
  }
  EXPECT_LT(compute_calibration(y, cal, 10).ece, 0.5 * compute_calibration(y, raw, 10).ece);
}

TEST(Calibration, RefusesOneClassAndMismatchedInput) {
  EXPECT_THROW(fit_temperature({1, 2}, {1, 1}), std::invalid_argument);
  EXPECT_THROW(fit_temperature({1, 2}, {1}), std::invalid_argument);
  EXPECT_THROW(fit_temperature({}, {}), std::invalid_argument);
}

TEST(Calibration, SigmoidAndLogitAreInverseAndStable) {
  for (double p : {1e-9, 0.1, 0.5, 0.73, 1 - 1e-9}) EXPECT_NEAR(sigmoid(logit(p)), p, 1e-12);
  EXPECT_DOUBLE_EQ(sigmoid(-1000), 0.0);
  EXPECT_DOUBLE_EQ(sigmoid(1000), 1.0);
  EXPECT_TRUE(std::isinf(logit(0)) && logit(0) < 0);
}

// Hand-worked: seven margins around threshold margin 0, T = 1, fraction 0.28 (ceil(0.28 * 7) = 2):
// the two nearest the threshold (-0.25 and 0.5) fall inside; the band is symmetric in logit space
// (+-0.5).
TEST(ReferBand, HoldsTheRequestedShareNearestTheThreshold) {
  const std::vector<double> m = {-3, -2, -1, -0.25, 0.5, 2, 3};
  const ReferBand b = choose_refer_band(m, 0.0, 1.0, 0.28);
  EXPECT_EQ(b.inside, 2);  // -0.25 and 0.5
  EXPECT_NEAR(logit(b.hi), 0.5, 1e-9);
  EXPECT_NEAR(logit(b.lo), -0.5, 1e-9);
  EXPECT_STREQ(decide(sigmoid(-0.25), 0.5, b), "refer");
  EXPECT_STREQ(decide(sigmoid(-1), 0.5, b), "no_fracture");
  EXPECT_STREQ(decide(sigmoid(1), 0.5, b), "fracture");
  // With a temperature, the band lives on the calibrated scale around the calibrated threshold.
  const ReferBand b2 = choose_refer_band(m, 1.0, 2.0, 0.28);
  EXPECT_LE(b2.lo, sigmoid(0.5));
  EXPECT_GE(b2.hi, sigmoid(0.5));
  EXPECT_EQ(b2.inside, 2);
  const ReferBand none = choose_refer_band(m, 0.0, 1.0, 0.0);
  EXPECT_EQ(none.inside, 0);
  EXPECT_DOUBLE_EQ(none.lo, none.hi);
  EXPECT_THROW(choose_refer_band(m, 0.0, 1.0, 1.0), std::invalid_argument);
}

}  // namespace
}  // namespace wristssl::metrics
