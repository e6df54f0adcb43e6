#include "wristssl/metrics/paired.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "test_paths.h"
#include "wristssl/metrics/binary_metrics.h"
#include "wristssl/util/csv.h"
#include "wristssl/util/fs.h"

namespace wristssl::metrics {
namespace {

using nlohmann::json;

// scripts/make_paired_references.py: DeLong from the definition (every positive against every negative),
// scipy's normal and t distributions.
const json& reference() {
  static const json ref =
      json::parse(util::read_text(testing::repo_path("tests/fixtures/metrics/paired_reference.json")));
  return ref;
}

struct Paired {
  std::vector<int> labels;
  std::vector<double> a, b;
  std::vector<std::string> groups;
};

Paired fixture() {
  const std::string path = testing::repo_path("tests/fixtures/metrics/paired.csv");
  const util::CsvTable t = util::read_csv(path);
  Paired p;
  for (const auto& r : t.rows) {
    p.groups.push_back(r[t.require_column("group", path)]);
    p.labels.push_back(std::stoi(r[t.require_column("label", path)]));
    p.a.push_back(std::stod(r[t.require_column("score_a", path)]));
    p.b.push_back(std::stod(r[t.require_column("score_b", path)]));
  }
  return p;
}

TEST(DeLong, MatchesTheDefinitionOnTiedCorrelatedScores) {
  const Paired p = fixture();
  ASSERT_EQ(p.labels.size(), reference()["images"].get<size_t>());
  const DeLongResult r = delong_paired(p.labels, p.a, p.b);
  const json& ref = reference()["delong"];
  EXPECT_NEAR(r.auroc_a, ref["auroc_a"].get<double>(), 1e-12);
  EXPECT_NEAR(r.auroc_b, ref["auroc_b"].get<double>(), 1e-12);
  EXPECT_NEAR(r.var_a, ref["var_a"].get<double>(), 1e-12);
  EXPECT_NEAR(r.var_b, ref["var_b"].get<double>(), 1e-12);
  EXPECT_NEAR(r.covariance, ref["covariance"].get<double>(), 1e-12);
  EXPECT_NEAR(r.se, ref["se"].get<double>(), 1e-10);
  EXPECT_NEAR(r.z, ref["z"].get<double>(), 1e-8);
  EXPECT_NEAR(r.p_value, ref["p"].get<double>(), 1e-9);
  EXPECT_NEAR(r.lo, ref["lo"].get<double>(), 1e-9);
  EXPECT_NEAR(r.hi, ref["hi"].get<double>(), 1e-9);
  // The AUROCs are the library's own.
  EXPECT_NEAR(r.auroc_a, auroc(p.labels, p.a), 1e-12);
  // The fixture must make the test informative: ties and a real but uncertain difference.
  EXPECT_GT(r.covariance, 0);
  EXPECT_GT(r.p_value, 1e-6);
  EXPECT_LT(r.p_value, 0.5);
  const DeLongResult s = delong_paired(p.labels, p.b, p.a);
  EXPECT_NEAR(s.z, reference()["delong_swapped"]["z"].get<double>(), 1e-8);
  EXPECT_NEAR(s.p_value, r.p_value, 1e-12);
  EXPECT_NEAR(delong_variance(p.labels, p.a), r.var_a, 1e-15);
}

TEST(DeLong, SameScorerHasNoDifferenceAndMonotoneMapsChangeNothing) {
  const Paired p = fixture();
  const DeLongResult same = delong_paired(p.labels, p.a, p.a);
  EXPECT_EQ(same.difference, 0);
  EXPECT_EQ(same.z, 0);
  EXPECT_EQ(same.p_value, 1);
  std::vector<double> squashed;
  for (double x : p.a) squashed.push_back(1 / (1 + std::exp(-x)));  // a monotone map: same ranks
  const DeLongResult r = delong_paired(p.labels, squashed, p.b), ref = delong_paired(p.labels, p.a, p.b);
  EXPECT_NEAR(r.z, ref.z, 1e-12);
}

TEST(DeLong, BadInputThrows) {
  EXPECT_THROW(delong_paired({0, 1}, {0.1, 0.2}, {0.1}), std::invalid_argument);
  EXPECT_THROW(delong_paired({1, 1}, {0.1, 0.2}, {0.3, 0.4}), std::invalid_argument);
  EXPECT_THROW(delong_paired({0, 1}, {0.1, NAN}, {0.3, 0.4}), std::invalid_argument);
}

TEST(PairedBootstrap, IntervalAgreesWithDeLongAndGroupsWiden) {
  const Paired p = fixture();
  const DeLongResult d = delong_paired(p.labels, p.a, p.b);
  const PairedBootstrap images = paired_bootstrap_auroc(p.labels, p.a, p.b, {}, 4000, 11);
  const PairedBootstrap groups = paired_bootstrap_auroc(p.labels, p.a, p.b, p.groups, 4000, 11);
  EXPECT_NEAR(images.difference, d.difference, 1e-12);
  EXPECT_EQ(images.used + images.skipped, 4000);
  // Two estimates of the same sampling distribution: widths within 25% of each other.
  EXPECT_NEAR((images.hi - images.lo) / (d.hi - d.lo), 1.0, 0.25);
  EXPECT_GT(images.share_above_zero, 0.5);
  // Images of a group share a patient effect: resampling whole groups widens the interval.
  EXPECT_GT(groups.hi - groups.lo, 0.9 * (images.hi - images.lo));
  // Deterministic for a seed.
  const PairedBootstrap again = paired_bootstrap_auroc(p.labels, p.a, p.b, p.groups, 4000, 11);
  EXPECT_EQ(again.lo, groups.lo);
  EXPECT_EQ(again.hi, groups.hi);
  // The same scorer twice: every resample's difference is exactly 0.
  const PairedBootstrap same = paired_bootstrap_auroc(p.labels, p.a, p.a, p.groups, 200, 1);
  EXPECT_EQ(same.lo, 0);
  EXPECT_EQ(same.hi, 0);
}

TEST(PairedBootstrap, WeightedAurocOfOneResampleMatchesTheExpandedData) {
  // A resample is the data with repeated units: check one against auroc() on the explicitly repeated rows.
  const Paired p = fixture();
  std::mt19937_64 rng(5);
  std::vector<int> labels;
  std::vector<double> a, b;
  for (size_t k = 0; k < p.labels.size(); ++k) {
    const size_t i = uniform_index(rng, p.labels.size());
    labels.push_back(p.labels[i]);
    a.push_back(p.a[i]);
    b.push_back(p.b[i]);
  }
  // One resample of the bootstrap with the same engine draws the same images.
  const PairedBootstrap one = paired_bootstrap_auroc(p.labels, p.a, p.b, {}, 1, 5);
  ASSERT_EQ(one.used, 1);
  EXPECT_NEAR(one.lo, auroc(labels, a) - auroc(labels, b), 1e-12);
}

TEST(Intervals, StudentQuantilesAndNormalTail) {
  for (const auto& [df, q] : reference()["t_quantile_975"].items()) {
    EXPECT_NEAR(t_quantile_975(std::stoi(df)), q.get<double>(), 2e-5) << "df " << df;
  }
  for (const auto& [z, p] : reference()["two_sided_p"].items()) EXPECT_NEAR(two_sided_p(std::stod(z)), p.get<double>(), 1e-12);
  // Python's statistics.NormalDist().inv_cdf, an independent implementation (Wichura's AS241).
  const std::pair<double, double> quantiles[] = {{0.5, 0.0},
                                                 {0.975, 1.9599639845400536},
                                                 {0.9875, 2.2414027276049464},
                                                 {1 - 0.025 / 3, 2.3939797998185104},
                                                 {0.995, 2.5758293035489},
                                                 {0.001, -3.090232306167813},
                                                 {1e-06, -4.753424308822899},
                                                 {0.02425, -1.9729610513118845}};
  for (const auto& [p, z] : quantiles) EXPECT_NEAR(normal_quantile(p), z, 1e-12) << p;
  EXPECT_THROW(normal_quantile(0.0), std::invalid_argument);
  EXPECT_THROW(normal_quantile(1.0), std::invalid_argument);
  const MeanInterval m = mean_interval({0.70, 0.74, 0.72, 0.78, 0.66});
  EXPECT_NEAR(m.mean, 0.72, 1e-12);
  EXPECT_NEAR(m.sd, std::sqrt(0.002), 1e-12);
  EXPECT_NEAR(m.hi - m.mean, 2.7764451 * std::sqrt(0.002) / std::sqrt(5.0), 1e-6);
  EXPECT_EQ(mean_interval({0.5}).lo, 0.5);
  EXPECT_THROW(mean_interval({}), std::invalid_argument);
}

}  // namespace
}  // namespace wristssl::metrics
