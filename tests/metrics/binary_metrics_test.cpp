#include "wristssl/metrics/binary_metrics.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <functional>
#include <random>
#include <regex>

#include "test_paths.h"  // the test helper adds no include path for tests/
#include "wristssl/metrics/metrics_command.h"
#include "wristssl/util/fs.h"

namespace wristssl::metrics {
namespace {

using nlohmann::json;

const json& reference() {
  static const json ref = json::parse(util::read_text(testing::repo_path("tests/fixtures/metrics/reference.json")));
  return ref;
}

ScoreTable fixture(const std::string& name) {
  return read_scores_csv(testing::repo_path("tests/fixtures/metrics/" + name + ".csv"));
}

const std::vector<int> kTinyLabels = {1, 0, 1, 0, 1, 0};
const std::vector<double> kTinyScores = {0.9, 0.8, 0.8, 0.4, 0.3, 0.1};

// Synthetic scores: positives shifted up by `shift`; uniform noise from the raw engine bits so the data
// are the same with every standard library.
void synthetic(int n, double shift, uint64_t seed, std::vector<int>& labels, std::vector<double>& scores) {
  std::mt19937_64 rng(seed);
  auto uniform = [&]() { return static_cast<double>(rng() >> 11) * 0x1.0p-53; };
  labels.clear();
  scores.clear();
  for (int i = 0; i < n; ++i) {
    const int y = uniform() < 0.4 ? 1 : 0;
    labels.push_back(y);
    scores.push_back(std::round((y * shift + (1.0 - shift) * uniform()) * 100.0) / 100.0);
  }
}

TEST(BinaryMetrics, HandWorkedTinyCase) {
  // Positives 0.9, 0.8, 0.3; negatives 0.8, 0.4, 0.1. Pairs won: 3 + (2 + 1/2) + 1 = 6.5 of 9.
  EXPECT_NEAR(auroc(kTinyLabels, kTinyScores), 13.0 / 18.0, 1e-15);
  // AP = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 3/5 = 34/45.
  EXPECT_NEAR(auprc(kTinyLabels, kTinyScores), 34.0 / 45.0, 1e-15);

  const std::vector<RocPoint> roc = roc_curve(kTinyLabels, kTinyScores);
  const std::vector<std::array<double, 3>> expected = {
      {0.0, 0.0, INFINITY}, {0.0, 1.0 / 3, 0.9}, {1.0 / 3, 2.0 / 3, 0.8},
      {2.0 / 3, 2.0 / 3, 0.4}, {2.0 / 3, 1.0, 0.3}, {1.0, 1.0, 0.1}};
  ASSERT_EQ(roc.size(), expected.size());
  for (size_t i = 0; i < roc.size(); ++i) {
    EXPECT_DOUBLE_EQ(roc[i].fpr, expected[i][0]) << i;
    EXPECT_DOUBLE_EQ(roc[i].tpr, expected[i][1]) << i;
    EXPECT_EQ(roc[i].threshold, expected[i][2]) << i;
  }
  const std::vector<PrPoint> pr = pr_curve(kTinyLabels, kTinyScores);
  ASSERT_EQ(pr.size(), 6u);
  EXPECT_DOUBLE_EQ(pr[0].precision, 1.0);
  EXPECT_DOUBLE_EQ(pr[2].recall, 2.0 / 3);
  EXPECT_DOUBLE_EQ(pr[2].precision, 2.0 / 3);
  EXPECT_DOUBLE_EQ(pr[3].precision, 0.5);
  EXPECT_DOUBLE_EQ(pr[4].precision, 0.6);

  // At 0.5: predicted positive 0.9 (1), 0.8 (0), 0.8 (1).
  const ThresholdMetrics m = threshold_metrics(kTinyLabels, kTinyScores, 0.5);
  EXPECT_EQ(m.confusion.tp, 2);
  EXPECT_EQ(m.confusion.fp, 1);
  EXPECT_EQ(m.confusion.tn, 2);
  EXPECT_EQ(m.confusion.fn, 1);
  EXPECT_DOUBLE_EQ(m.accuracy.estimate.value, 4.0 / 6);
  EXPECT_NEAR(m.accuracy.estimate.lo, 0.299993315138392, 1e-12);  // Wilson 4/6
  EXPECT_NEAR(m.accuracy.estimate.hi, 0.9032285888942195, 1e-12);
  EXPECT_NEAR(m.precision.estimate.lo, 0.20765960080204782, 1e-12);  // Wilson 2/3
  EXPECT_NEAR(m.precision.estimate.hi, 0.9385080552796038, 1e-12);
  EXPECT_DOUBLE_EQ(m.f1, 2.0 / 3);
  // The score equal to the threshold is predicted positive.
  EXPECT_EQ(confusion_at(kTinyLabels, kTinyScores, 0.8).fp, 1);
  EXPECT_EQ(confusion_at(kTinyLabels, kTinyScores, 0.8000001).fp, 0);

  // J: 1/3 at 0.9, 0.8 and 0.3; the highest threshold wins the tie.
  EXPECT_EQ(youden_threshold(kTinyLabels, kTinyScores), 0.9);
  EXPECT_EQ(sensitivity_threshold(kTinyLabels, kTinyScores, 0.95), 0.3);
  EXPECT_EQ(sensitivity_threshold(kTinyLabels, kTinyScores, 2.0 / 3), 0.8);

  // ECE = (0.1 + 0.7 + 0.4 + 2 * 0.3 + 0.1) / 6.
  const Calibration cal = compute_calibration(kTinyLabels, kTinyScores, 10);
  EXPECT_NEAR(cal.ece, 1.9 / 6, 1e-15);
  EXPECT_EQ(cal.bins[8].count, 2);
  EXPECT_DOUBLE_EQ(cal.bins[8].fraction_positive, 0.5);
  EXPECT_EQ(cal.bins[0].count, 0);
}

TEST(BinaryMetrics, WilsonEdges) {
  const Estimate none = wilson_interval(0, 10);
  EXPECT_EQ(none.lo, 0.0);
  EXPECT_NEAR(none.hi, 0.27753279986288926, 1e-12);  // z^2 / (n + z^2), as scipy binomtest wilson
  const Estimate all = wilson_interval(10, 10);
  EXPECT_EQ(all.hi, 1.0);
  EXPECT_NEAR(all.lo, 1.0 - 0.27753279986288926, 1e-12);
  EXPECT_THROW(wilson_interval(0, 0), std::invalid_argument);
  EXPECT_THROW(wilson_interval(3, 2), std::invalid_argument);
  // Nothing predicted positive: precision undefined, reported as 0 in [0, 1] with den 0, never NaN.
  const ThresholdMetrics m = threshold_metrics(kTinyLabels, kTinyScores, 2.0);
  EXPECT_EQ(m.precision.den, 0);
  EXPECT_EQ(m.precision.estimate.value, 0.0);
  EXPECT_EQ(m.precision.estimate.hi, 1.0);
  EXPECT_EQ(m.f1, 0.0);
}

class Reference : public ::testing::TestWithParam<std::string> {};

TEST_P(Reference, MatchesScikitLearn) {
  const json& ref = reference()["files"][GetParam()];
  const ScoreTable t = fixture(GetParam());
  ASSERT_EQ(static_cast<int>(t.labels.size()), ref["n"].get<int>());

  EXPECT_NEAR(auroc(t.labels, t.scores), ref["auroc"].get<double>(), 1e-12);
  EXPECT_NEAR(auprc(t.labels, t.scores), ref["auprc"].get<double>(), 1e-12);

  const std::vector<RocPoint> roc = roc_curve(t.labels, t.scores);
  const auto rfpr = ref["roc"]["fpr"].get<std::vector<double>>();
  const auto rtpr = ref["roc"]["tpr"].get<std::vector<double>>();
  const auto rthr = ref["roc"]["threshold"].get<std::vector<double>>();
  ASSERT_EQ(roc.size(), rfpr.size());
  EXPECT_TRUE(std::isinf(roc[0].threshold));
  for (size_t i = 0; i < roc.size(); ++i) {
    EXPECT_NEAR(roc[i].fpr, rfpr[i], 1e-15) << i;
    EXPECT_NEAR(roc[i].tpr, rtpr[i], 1e-15) << i;
    if (i > 0) {
      EXPECT_EQ(roc[i].threshold, rthr[i - 1]) << i;
    }
  }

  const std::vector<PrPoint> pr = pr_curve(t.labels, t.scores);
  const auto rrec = ref["pr"]["recall"].get<std::vector<double>>();
  const auto rprec = ref["pr"]["precision"].get<std::vector<double>>();
  const auto rpthr = ref["pr"]["threshold"].get<std::vector<double>>();
  ASSERT_EQ(pr.size(), rrec.size());
  for (size_t i = 0; i < pr.size(); ++i) {
    EXPECT_NEAR(pr[i].recall, rrec[i], 1e-15) << i;
    EXPECT_NEAR(pr[i].precision, rprec[i], 1e-15) << i;
    if (i > 0) {
      EXPECT_EQ(pr[i].threshold, rpthr[i - 1]) << i;
    }
  }

  for (const json& at : ref["at_threshold"]) {
    const double thr = at["threshold"].get<double>();
    const ThresholdMetrics m = threshold_metrics(t.labels, t.scores, thr);
    SCOPED_TRACE("threshold " + std::to_string(thr));
    EXPECT_EQ(m.confusion.tp, at["tp"].get<int64_t>());
    EXPECT_EQ(m.confusion.fp, at["fp"].get<int64_t>());
    EXPECT_EQ(m.confusion.tn, at["tn"].get<int64_t>());
    EXPECT_EQ(m.confusion.fn, at["fn"].get<int64_t>());
    EXPECT_NEAR(m.f1, at["f1"].get<double>(), 1e-12);
    const std::pair<const char*, const Proportion*> props[] = {{"accuracy", &m.accuracy},
                                                               {"precision", &m.precision},
                                                               {"recall", &m.recall},
                                                               {"specificity", &m.specificity},
                                                               {"npv", &m.npv}};
    for (const auto& [name, p] : props) {
      const json& r = at[name];
      EXPECT_EQ(p->num, r["num"].get<int64_t>()) << name;
      EXPECT_EQ(p->den, r["den"].get<int64_t>()) << name;
      EXPECT_NEAR(p->estimate.value, r["value"].get<double>(), 1e-12) << name;
      EXPECT_NEAR(p->estimate.lo, r["lo"].get<double>(), 1e-9) << name;
      EXPECT_NEAR(p->estimate.hi, r["hi"].get<double>(), 1e-9) << name;
    }
  }

  EXPECT_EQ(youden_threshold(t.labels, t.scores), ref["youden_threshold"].get<double>());
  EXPECT_EQ(sensitivity_threshold(t.labels, t.scores, 0.95), ref["sensitivity_threshold"]["0.95"].get<double>());
  EXPECT_EQ(sensitivity_threshold(t.labels, t.scores, 0.8), ref["sensitivity_threshold"]["0.8"].get<double>());
  EXPECT_EQ(select_threshold(t.labels, t.scores, parse_threshold_rule("sensitivity:0.8")),
            ref["sensitivity_threshold"]["0.8"].get<double>());

  std::vector<double> grid;
  const int points = ref["band_grid_points"].get<int>();
  for (int k = 0; k < points; ++k) grid.push_back(static_cast<double>(k) / (points - 1));
  const std::vector<double> band = tpr_at_fpr(roc, grid);
  const auto rband = ref["band_tpr"].get<std::vector<double>>();
  ASSERT_EQ(band.size(), rband.size());
  for (size_t k = 0; k < band.size(); ++k) EXPECT_NEAR(band[k], rband[k], 1e-12) << "fpr " << grid[k];

  const json& rcal = ref["calibration"];
  const Calibration cal = compute_calibration(t.labels, t.scores, rcal["bins"].get<int>());
  EXPECT_NEAR(cal.ece, rcal["ece"].get<double>(), 1e-12);
  ASSERT_EQ(cal.bins.size(), rcal["table"].size());
  for (size_t b = 0; b < cal.bins.size(); ++b) {
    const json& row = rcal["table"][b];
    ASSERT_EQ(cal.bins[b].count, row["count"].get<int64_t>()) << "bin " << b;
    if (cal.bins[b].count == 0) continue;
    EXPECT_NEAR(cal.bins[b].mean_score, row["mean_score"].get<double>(), 1e-12) << "bin " << b;
    EXPECT_NEAR(cal.bins[b].fraction_positive, row["fraction_positive"].get<double>(), 1e-12) << "bin " << b;
    EXPECT_NEAR(cal.bins[b].fraction_interval.lo, row["lo"].get<double>(), 1e-9) << "bin " << b;
    EXPECT_NEAR(cal.bins[b].fraction_interval.hi, row["hi"].get<double>(), 1e-9) << "bin " << b;
  }
  if (ref.contains("sklearn_calibration")) {  // sklearn.calibration_curve lists the non-empty bins only
    const auto prob_true = ref["sklearn_calibration"]["prob_true"].get<std::vector<double>>();
    const auto prob_pred = ref["sklearn_calibration"]["prob_pred"].get<std::vector<double>>();
    size_t k = 0;
    for (const CalibrationBin& b : cal.bins) {
      if (b.count == 0) continue;
      ASSERT_LT(k, prob_true.size());
      EXPECT_NEAR(b.fraction_positive, prob_true[k], 1e-12);
      EXPECT_NEAR(b.mean_score, prob_pred[k], 1e-12);
      ++k;
    }
    EXPECT_EQ(k, prob_true.size());
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Reference,
                         ::testing::Values("tiny", "ties_grouped", "ties_imbalanced", "continuous"));

TEST(BinaryMetrics, HeavyTiesReallyAreTied) {
  // The fixtures must exercise ties, or the tie handling above is untested.
  EXPECT_LE(reference()["files"]["ties_grouped"]["distinct_scores"].get<int>(), 11);
  EXPECT_LE(reference()["files"]["ties_imbalanced"]["distinct_scores"].get<int>(), 11);
}

TEST(BinaryMetrics, PercentileMatchesNumpy) {
  const json& ref = reference()["percentile"];
  const auto values = ref["values"].get<std::vector<double>>();
  const auto ps = ref["p"].get<std::vector<double>>();
  const auto expected = ref["expected"].get<std::vector<double>>();
  for (size_t i = 0; i < ps.size(); ++i) EXPECT_NEAR(percentile(values, ps[i]), expected[i], 1e-12) << ps[i];
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 10}, 2.5), 1.075);
  EXPECT_DOUBLE_EQ(percentile({7}, 97.5), 7.0);
  EXPECT_THROW(percentile({}, 50), std::invalid_argument);
}

void expect_invalid(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no exception; wanted one containing '" << needle << "'";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(BinaryMetrics, BadInputThrowsNamingTheProblem) {
  const std::vector<int> ones = {1, 1, 1};
  const std::vector<double> s3 = {0.1, 0.5, 0.9};
  expect_invalid([&] { auroc(ones, s3); }, "all 3 labels are 1");
  expect_invalid([&] { roc_curve({0, 0, 0}, s3); }, "all 3 labels are 0");
  expect_invalid([&] { auprc(ones, s3); }, "both classes");
  expect_invalid([&] { youden_threshold(ones, s3); }, "both classes");
  expect_invalid([&] { compute_report(ones, s3, {}, {}); }, "both classes");
  expect_invalid([&] { auroc({}, {}); }, "empty");
  expect_invalid([&] { auroc({0, 1}, {0.5}); }, "2 labels but 1 scores");
  expect_invalid([&] { auroc({0, 1, 2}, s3); }, "label 2 at index 2");
  expect_invalid([&] { auroc({0, 1, 1}, {0.1, NAN, 0.3}); }, "index 1 is NaN");
  expect_invalid([&] { auroc({0, 1, 1}, {0.1, INFINITY, 0.3}); }, "infinite");
  expect_invalid([&] { compute_calibration({0, 1}, {0.5, 1.5}); }, "[0, 1]");
  expect_invalid([&] { sensitivity_threshold(kTinyLabels, kTinyScores, 0.0); }, "target sensitivity");
  expect_invalid([&] { parse_threshold_rule("sensitivity:1.5"); }, "sensitivity:1.5");
  expect_invalid([&] { parse_threshold_rule("f1"); }, "'f1'");
  expect_invalid([&] { bootstrap_metrics(kTinyLabels, kTinyScores, {"a"}, {}); }, "1 groups but 6 labels");
  // One class is fine where the figure does not need both.
  EXPECT_EQ(confusion_at(ones, s3, 0.5).tp, 2);
  EXPECT_EQ(compute_calibration(ones, s3).bins[9].count, 1);
}

TEST(BinaryMetrics, ThresholdRuleRoundTrips) {
  EXPECT_EQ(parse_threshold_rule("youden").kind, ThresholdRule::Kind::kYouden);
  const ThresholdRule r = parse_threshold_rule("sensitivity=0.9");
  EXPECT_EQ(r.kind, ThresholdRule::Kind::kSensitivity);
  EXPECT_DOUBLE_EQ(r.target, 0.9);
  EXPECT_EQ(threshold_rule_name(r), "sensitivity:0.9");
  EXPECT_EQ(threshold_rule_name(parse_threshold_rule("youden")), "youden");
}

double width(const Estimate& e) { return e.hi - e.lo; }

TEST(Bootstrap, IntervalsContainTheEstimateAndAreReproducible) {
  std::vector<int> y;
  std::vector<double> s;
  synthetic(300, 0.3, 1, y, s);
  BootstrapOptions o;
  o.resamples = 500;
  o.seed = 7;
  const BootstrapResult a = bootstrap_metrics(y, s, {}, o);
  EXPECT_NEAR(a.auroc.value, auroc(y, s), 1e-15);
  EXPECT_NEAR(a.auprc.value, auprc(y, s), 1e-15);
  EXPECT_NEAR(a.f1.value, threshold_metrics(y, s, 0.5).f1, 1e-15);
  for (const Estimate* e : {&a.auroc, &a.auprc, &a.f1}) {
    EXPECT_LT(e->lo, e->value);
    EXPECT_GT(e->hi, e->value);
    EXPECT_GT(width(*e), 0.01);
    EXPECT_LT(width(*e), 0.4);
  }
  EXPECT_EQ(a.resamples, 500);
  EXPECT_EQ(a.used + a.skipped, 500);
  EXPECT_FALSE(a.grouped);
  EXPECT_EQ(a.units, 300);
  ASSERT_EQ(a.roc_band.size(), 101u);
  EXPECT_EQ(a.roc_band.front().fpr, 0.0);
  EXPECT_EQ(a.roc_band.back().fpr, 1.0);
  EXPECT_EQ(a.roc_band.back().lo, 1.0);
  for (const RocBandPoint& p : a.roc_band) {
    EXPECT_LE(p.lo, p.hi);
    EXPECT_LE(p.lo, p.tpr + 1e-12);
    EXPECT_GE(p.hi, p.tpr - 1e-12);
  }

  const BootstrapResult b = bootstrap_metrics(y, s, {}, o);
  EXPECT_EQ(a.auroc.lo, b.auroc.lo);
  EXPECT_EQ(a.auroc.hi, b.auroc.hi);
  EXPECT_EQ(a.f1.lo, b.f1.lo);
  EXPECT_EQ(a.roc_band[30].lo, b.roc_band[30].lo);
  o.seed = 8;
  const BootstrapResult c = bootstrap_metrics(y, s, {}, o);
  EXPECT_TRUE(a.auroc.lo != c.auroc.lo || a.auroc.hi != c.auroc.hi);
}

TEST(Bootstrap, NarrowerWithMoreData) {
  std::vector<int> y;
  std::vector<double> s;
  BootstrapOptions o;
  o.resamples = 400;
  synthetic(100, 0.3, 2, y, s);
  const BootstrapResult small = bootstrap_metrics(y, s, {}, o);
  synthetic(1600, 0.3, 2, y, s);
  const BootstrapResult large = bootstrap_metrics(y, s, {}, o);
  // 16x the data: about 4x narrower; ask for 2x to stay clear of noise.
  EXPECT_LT(width(large.auroc) * 2, width(small.auroc));
  EXPECT_LT(width(large.auprc) * 2, width(small.auprc));
  EXPECT_LT(width(large.f1) * 2, width(small.f1));
}

TEST(Bootstrap, GroupedIsWiderWhenGroupsArePerfectlyCorrelated) {
  // 100 patients, 4 identical images each: per image the data look 4x larger than they are.
  std::vector<int> y0, y;
  std::vector<double> s0, s;
  std::vector<std::string> groups;
  synthetic(100, 0.3, 3, y0, s0);
  for (int p = 0; p < 100; ++p) {
    for (int k = 0; k < 4; ++k) {
      y.push_back(y0[p]);
      s.push_back(s0[p]);
      groups.push_back("patient" + std::to_string(p));
    }
  }
  BootstrapOptions o;
  o.resamples = 1000;
  const BootstrapResult per_image = bootstrap_metrics(y, s, {}, o);
  const BootstrapResult grouped = bootstrap_metrics(y, s, groups, o);
  EXPECT_TRUE(grouped.grouped);
  EXPECT_EQ(grouped.units, 100);
  EXPECT_EQ(grouped.auroc.value, per_image.auroc.value);
  // Expected ratio about 2 (sqrt 4).
  EXPECT_GT(width(grouped.auroc), 1.5 * width(per_image.auroc));
  EXPECT_GT(width(grouped.auprc), 1.5 * width(per_image.auprc));
  // Grouping one patient per image changes nothing but the unit name: same draws, same interval.
  std::vector<std::string> singletons;
  for (size_t i = 0; i < y.size(); ++i) singletons.push_back("img" + std::to_string(i));
  const BootstrapResult single = bootstrap_metrics(y, s, singletons, o);
  EXPECT_EQ(single.auroc.lo, per_image.auroc.lo);
  EXPECT_EQ(single.auroc.hi, per_image.auroc.hi);
}

TEST(Bootstrap, OneClassResamplesAreSkippedAndCounted) {
  BootstrapOptions o;
  o.resamples = 2000;
  const BootstrapResult r = bootstrap_metrics(kTinyLabels, kTinyScores, {}, o);
  // P(one class) for 6 draws from 3 + 3 is 2 / 64: about 62 of 2000.
  EXPECT_GT(r.skipped, 20);
  EXPECT_LT(r.skipped, 120);
  EXPECT_EQ(r.used + r.skipped, 2000);
  // Two groups, one per class: every resample that draws the same group twice has one class.
  const BootstrapResult g = bootstrap_metrics({1, 0}, {0.9, 0.1}, {"a", "b"}, o);
  EXPECT_EQ(g.used + g.skipped, 2000);
  EXPECT_GT(g.skipped, 800);
  // Seed 11 happens to draw a group twice in each of 3 resamples (mt19937_64 is the same everywhere).
  o.resamples = 3;
  o.seed = 11;
  expect_invalid([&] { bootstrap_metrics({1, 0}, {0.9, 0.1}, {"a", "b"}, o); }, "none of 3 bootstrap resamples");
}

TEST(Report, JsonSchemaAndText) {
  const ScoreTable t = fixture("ties_grouped");
  const json& ref = reference()["files"]["ties_grouped"];
  ReportOptions o;
  o.bootstrap = 300;
  o.seed = 5;
  const MetricsReport rep = compute_report(t.labels, t.scores, t.groups, o);
  const json j = rep.to_json();
  EXPECT_EQ(j["schema"], "wristssl.metrics/1");
  EXPECT_EQ(j["n"], 400);
  EXPECT_EQ(j["n_positive"], ref["n_positive"]);
  EXPECT_EQ(j["n_groups"], ref["n_groups"]);
  EXPECT_EQ(j["threshold"], 0.5);
  EXPECT_EQ(j["confusion"]["tp"], ref["at_threshold"][0]["tp"]);
  EXPECT_EQ(j["confusion"]["fn"], ref["at_threshold"][0]["fn"]);
  for (const char* k : {"auroc", "auprc", "f1", "accuracy", "precision", "recall", "specificity", "npv"}) {
    ASSERT_TRUE(j["metrics"].contains(k)) << k;
    const json& e = j["metrics"][k];
    EXPECT_LE(e["lo"].get<double>(), e["value"].get<double>()) << k;
    EXPECT_GE(e["hi"].get<double>(), e["value"].get<double>()) << k;
  }
  EXPECT_NEAR(j["metrics"]["auroc"]["value"].get<double>(), ref["auroc"].get<double>(), 1e-12);
  EXPECT_EQ(j["metrics"]["auroc"]["method"], "bootstrap");
  EXPECT_EQ(j["metrics"]["recall"]["method"], "wilson");
  EXPECT_NEAR(j["metrics"]["recall"]["lo"].get<double>(), ref["at_threshold"][0]["recall"]["lo"].get<double>(), 1e-9);
  EXPECT_TRUE(j["roc"][0]["threshold"].is_null());
  EXPECT_EQ(j["roc"].size(), ref["roc"]["fpr"].size());
  EXPECT_EQ(j["pr"].size(), ref["pr"]["recall"].size());
  EXPECT_EQ(j["roc_band"].size(), 101u);
  EXPECT_EQ(j["calibration"]["bins"].size(), 10u);
  EXPECT_NEAR(j["calibration"]["ece"].get<double>(), ref["calibration"]["ece"].get<double>(), 1e-12);
  EXPECT_EQ(j["bootstrap"]["unit"], "group");
  EXPECT_EQ(j["bootstrap"]["resamples"], 300);
  EXPECT_EQ(j["threshold_rule"]["rule"], "youden");
  EXPECT_EQ(j["threshold_rule"]["threshold"], ref["youden_threshold"]);
  // Round-trips through text (no NaN / inf that JSON cannot hold).
  EXPECT_EQ(json::parse(j.dump()), j);

  const std::string text = format_report(rep);
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(AUROC 0\.\d{3} \(95% CI 0\.\d{3}-0\.\d{3}\))"))) << text;
  EXPECT_NE(text.find("Sensitivity 0."), std::string::npos) << text;
  EXPECT_NE(text.find("Specificity 0."), std::string::npos) << text;
  EXPECT_NE(text.find("F1 0."), std::string::npos) << text;
  EXPECT_NE(text.find("ECE 0."), std::string::npos) << text;
  EXPECT_NE(text.find("optimistic"), std::string::npos) << text;
  EXPECT_NE(text.find("groups"), std::string::npos) << text;

  // Logits: no calibration, reported as null.
  std::vector<double> logits;
  for (double v : t.scores) logits.push_back(4.0 * v - 2.0);
  o.threshold = 0.0;
  const MetricsReport lrep = compute_report(t.labels, logits, {}, o);
  EXPECT_FALSE(lrep.has_calibration);
  EXPECT_TRUE(lrep.to_json()["calibration"].is_null());
  EXPECT_TRUE(lrep.to_json()["n_groups"].is_null());
  EXPECT_EQ(lrep.to_json()["bootstrap"]["unit"], "image");
  EXPECT_NEAR(lrep.auroc.value, rep.auroc.value, 1e-15);  // monotone transform
  EXPECT_NE(format_report(lrep).find("ECE not computed"), std::string::npos);
}

}  // namespace
}  // namespace wristssl::metrics
