#pragma once
// Binary (fracture / no fracture) evaluation: confusion counts, ROC and PR curves, calibration,
// Wilson and bootstrap intervals, threshold selection, and a report that carries every figure with its
// 95% interval.
//
// Conventions, everywhere in this file:
//   labels: 0 or 1 (1 = fracture, the positive class); scores: finite, higher = more likely fracture.
//   A score is predicted positive when score >= threshold.
//   Tied scores are one step of a curve (a diagonal segment of the ROC), never split in an arbitrary order.
//   Bad input (empty, mismatched lengths, label not 0/1, NaN or infinite score, and one class only where
//   the figure needs both) throws std::invalid_argument naming the problem; nothing returns NaN.

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace wristssl::metrics {

/// A figure with its 95% interval [lo, hi].
struct Estimate {
  double value = 0.0;
  double lo = 0.0;
  double hi = 0.0;
};

/// Counts at one threshold (positive = fracture).
struct Confusion {
  int64_t tp = 0;
  int64_t fp = 0;
  int64_t tn = 0;
  int64_t fn = 0;
};

/// A proportion num / den with its Wilson interval. When den == 0 (e.g. precision with no predicted
/// positives) the figure is undefined: value 0, interval [0, 1], and `den` says so.
struct Proportion {
  int64_t num = 0;
  int64_t den = 0;
  Estimate estimate;
};

/// Everything that depends on one threshold, from its confusion counts.
struct ThresholdMetrics {
  Confusion confusion;
  Proportion accuracy;     // (tp + tn) / n
  Proportion precision;    // PPV: tp / (tp + fp)
  Proportion recall;       // sensitivity: tp / (tp + fn)
  Proportion specificity;  // tn / (tn + fp)
  Proportion npv;          // tn / (tn + fn)
  double f1 = 0.0;         // 2 tp / (2 tp + fp + fn); 0 when that denominator is 0
};

/// One ROC vertex: predicting positive at score >= threshold gives (fpr, tpr). The first point is
/// (0, 0) with threshold +infinity (nothing predicted positive).
struct RocPoint {
  double fpr = 0.0;
  double tpr = 0.0;
  double threshold = 0.0;
};

/// One PR vertex: predicting positive at score >= threshold gives (recall, precision). The first point
/// is (0, 1) with threshold +infinity, as in scikit-learn.
struct PrPoint {
  double recall = 0.0;
  double precision = 0.0;
  double threshold = 0.0;
};

/// One reliability-diagram bin [lo, hi) (the last bin includes 1).
struct CalibrationBin {
  double lo = 0.0;
  double hi = 0.0;
  int64_t count = 0;
  double mean_score = 0.0;         // 0 when count == 0
  double fraction_positive = 0.0;  // observed fraction of label 1; 0 when count == 0
  Estimate fraction_interval;      // Wilson interval of fraction_positive; [0, 1] when count == 0
};

/// Expected calibration error and the reliability table it came from.
struct Calibration {
  double ece = 0.0;  // sum over bins of count / n * |mean_score - fraction_positive|
  std::vector<CalibrationBin> bins;
};

/// Bootstrap TPR at one fixed FPR, with the 2.5 / 97.5 percentiles over resamples.
struct RocBandPoint {
  double fpr = 0.0;
  double tpr = 0.0;  // on the full data
  double lo = 0.0;
  double hi = 0.0;
};

/// Options of the percentile bootstrap.
struct BootstrapOptions {
  int resamples = 2000;
  uint64_t seed = 0;
  double threshold = 0.5;    // the F1 threshold
  int roc_band_points = 101;  // FPR grid k / (points - 1), k = 0 .. points - 1
};

/// Percentile-bootstrap intervals (value = the full-data figure).
struct BootstrapResult {
  Estimate auroc;
  Estimate auprc;
  Estimate f1;
  std::vector<RocBandPoint> roc_band;
  int resamples = 0;   // drawn
  int used = 0;        // with both classes
  int skipped = 0;     // one class only, left out
  bool grouped = false;
  int64_t units = 0;   // groups when grouped, else images
};

/// How to choose an operating threshold on validation data.
struct ThresholdRule {
  enum class Kind { kYouden, kSensitivity };
  Kind kind = Kind::kYouden;
  double target = 0.95;  // target sensitivity for kSensitivity
};

/// Options of compute_report.
struct ReportOptions {
  double threshold = 0.5;
  std::string threshold_source = "given";  // free text for the report: "given", "default", ...
  int bootstrap = 2000;
  uint64_t seed = 0;
  int calibration_bins = 10;
  int roc_band_points = 101;
  ThresholdRule rule;  // reported for information only, never applied to the data it was chosen on
};

/// Every figure of a binary evaluation with its interval; see to_json() for the stable schema.
struct MetricsReport {
  int64_t n = 0;
  int64_t n_positive = 0;
  int64_t n_negative = 0;
  int64_t n_groups = 0;  // 0 when no groups were given
  double threshold = 0.5;
  std::string threshold_source = "given";
  ThresholdMetrics at_threshold;
  Estimate auroc;
  Estimate auprc;
  Estimate f1;
  std::vector<RocPoint> roc;
  std::vector<PrPoint> pr;
  std::vector<RocBandPoint> roc_band;
  bool has_calibration = false;  // false when some score lies outside [0, 1]
  Calibration calibration;
  int bootstrap_resamples = 0;
  int bootstrap_used = 0;
  int bootstrap_skipped = 0;
  uint64_t seed = 0;
  ThresholdRule rule;
  double rule_threshold = 0.0;  // the rule's choice on THIS data (optimistic if applied to it)

  /// The report as JSON (schema "wristssl.metrics/1", documented in binary_metrics.cpp).
  nlohmann::json to_json() const;
};

/// The 95% normal quantile used by every interval here.
inline constexpr double kZ95 = 1.959963984540054;

/// Throws std::invalid_argument unless labels and scores are non-empty, equally long, labels 0/1 and
/// scores finite; with `need_both_classes`, also unless both labels occur.
void check_inputs(const std::vector<int>& labels, const std::vector<double>& scores, bool need_both_classes);

/// Uniform in [0, n) from a standardized engine, without std::uniform_int_distribution (whose output differs
/// between standard libraries): rejection keeps it unbiased, so resamples are the same on every platform.
uint64_t uniform_index(std::mt19937_64& rng, uint64_t n);

/// Wilson score 95% interval of successes / trials (trials > 0, 0 <= successes <= trials).
Estimate wilson_interval(int64_t successes, int64_t trials);

/// Confusion counts at `threshold` (positive when score >= threshold). One class is allowed.
Confusion confusion_at(const std::vector<int>& labels, const std::vector<double>& scores, double threshold);

/// Accuracy, precision, recall, specificity, NPV (each with its Wilson interval) and F1 from counts.
ThresholdMetrics threshold_metrics(const Confusion& confusion);

/// threshold_metrics(confusion_at(labels, scores, threshold)).
ThresholdMetrics threshold_metrics(const std::vector<int>& labels, const std::vector<double>& scores,
                                   double threshold);

/// ROC vertices, one per distinct score (descending), after the (0, 0) point. Needs both classes.
std::vector<RocPoint> roc_curve(const std::vector<int>& labels, const std::vector<double>& scores);

/// Area under the ROC: Mann-Whitney U / (n_pos n_neg), ties counting 1/2. Needs both classes.
double auroc(const std::vector<int>& labels, const std::vector<double>& scores);

/// PR vertices, one per distinct score (descending), after the (recall 0, precision 1) point.
std::vector<PrPoint> pr_curve(const std::vector<int>& labels, const std::vector<double>& scores);

/// Average precision: sum over distinct scores of (R_n - R_{n-1}) P_n (scikit-learn's definition).
double auprc(const std::vector<int>& labels, const std::vector<double>& scores);

/// TPR at each FPR of `fpr_grid` on the ROC polyline (linear between vertices; on a vertical segment the
/// top, i.e. the highest TPR reachable at that FPR).
std::vector<double> tpr_at_fpr(const std::vector<RocPoint>& roc, const std::vector<double>& fpr_grid);

/// Equal-width calibration over [0, 1]: bin k holds scores in [k / bins, (k + 1) / bins), the last also 1.
/// Scores must lie in [0, 1]. One class is allowed.
Calibration compute_calibration(const std::vector<int>& labels, const std::vector<double>& scores,
                                int bins = 10);

/// The p-th percentile (p in [0, 100]) with linear interpolation between order statistics (numpy's
/// default); `values` non-empty.
double percentile(std::vector<double> values, double p);

/// Percentile bootstrap of AUROC, AUPRC, F1 and the ROC band. With `groups` (one per image, or empty)
/// whole groups are resampled with replacement, else images. Resamples with one class are skipped and
/// counted; throws when none has both classes. Deterministic for a given seed.
BootstrapResult bootstrap_metrics(const std::vector<int>& labels, const std::vector<double>& scores,
                                  const std::vector<std::string>& groups, const BootstrapOptions& options);

/// Youden's J: the threshold (a score) maximizing tpr - fpr; the highest such score on ties.
double youden_threshold(const std::vector<int>& labels, const std::vector<double>& scores);

/// The highest threshold (a score) whose sensitivity reaches `target` (0 < target <= 1).
double sensitivity_threshold(const std::vector<int>& labels, const std::vector<double>& scores, double target);

/// Applies `rule` (Youden or target sensitivity) and returns the threshold, a score to freeze.
double select_threshold(const std::vector<int>& labels, const std::vector<double>& scores,
                        const ThresholdRule& rule);

/// Parses "youden" or "sensitivity:T" / "sensitivity=T" (0 < T <= 1); throws std::invalid_argument.
ThresholdRule parse_threshold_rule(const std::string& text);

/// "youden" or "sensitivity:0.95", the inverse of parse_threshold_rule.
std::string threshold_rule_name(const ThresholdRule& rule);

/// Computes every figure at options.threshold, with Wilson and bootstrap intervals.
MetricsReport compute_report(const std::vector<int>& labels, const std::vector<double>& scores,
                             const std::vector<std::string>& groups, const ReportOptions& options);

/// Human-readable report, one figure per line with its interval: "AUROC 0.912 (95% CI 0.884-0.938)".
std::string format_report(const MetricsReport& report);

}  // namespace wristssl::metrics
