#pragma once
// Comparing two models scored on the same images: DeLong's test for two correlated AUROCs, a paired
// (grouped) bootstrap of the AUROC difference, and the t-interval of a mean across folds and seeds.
//
// Conventions as in binary_metrics.h: labels 0/1 (1 = positive), finite scores, higher = more positive;
// bad input throws std::invalid_argument naming the problem.

#include <cstdint>
#include <string>
#include <vector>

namespace wristssl::metrics {

/// DeLong, DeLong & Clarke-Pearson (1988), computed with midranks (Sun & Xu 2014): AUROC of a and b, the
/// difference a - b, its standard error from the structural components' covariance, the z statistic, the
/// two-sided p-value and the 95% normal interval of the difference.
struct DeLongResult {
  double auroc_a = 0, auroc_b = 0;
  double var_a = 0, var_b = 0, covariance = 0;  // of the two AUROC estimates
  double difference = 0, se = 0, z = 0, p_value = 1;
  double lo = 0, hi = 0;  // 95% interval of the difference
  int64_t positives = 0, negatives = 0;
};
DeLongResult delong_paired(const std::vector<int>& labels, const std::vector<double>& scores_a,
                           const std::vector<double>& scores_b);

/// DeLong's variance of one AUROC (the structural components' variance over m positives and n negatives).
double delong_variance(const std::vector<int>& labels, const std::vector<double>& scores);

/// Percentile bootstrap of AUROC(a) - AUROC(b) resampling the same units for both: whole groups (one name
/// per image) when `groups` is non-empty, else images. Resamples with one class are skipped.
struct PairedBootstrap {
  double difference = 0;  // on all the images
  double lo = 0, hi = 0;  // 95% percentile interval
  double share_above_zero = 0;  // of the resamples: a one-sided bootstrap "probability" a > b
  int used = 0, skipped = 0;
};
PairedBootstrap paired_bootstrap_auroc(const std::vector<int>& labels, const std::vector<double>& scores_a,
                                       const std::vector<double>& scores_b, const std::vector<std::string>& groups,
                                       int resamples, uint64_t seed);

/// The 97.5th percentile of Student's t with `df` degrees of freedom (df >= 1).
double t_quantile_975(int df);

/// The standard normal's quantile: z with P(Z <= z) = p, 0 < p < 1 (to about 1e-15). For intervals at
/// other levels than 95%, e.g. 1 - 0.05 / m when m comparisons share the 5% (Bonferroni).
double normal_quantile(double p);

/// Mean of `values` with its 95% t-interval (mean +- t * sd / sqrt(n)); lo = hi = mean for one value.
struct MeanInterval {
  double mean = 0, lo = 0, hi = 0, sd = 0;
  int n = 0;
};
MeanInterval mean_interval(const std::vector<double>& values);

/// The standard normal's upper tail probability doubled: the two-sided p-value of z.
double two_sided_p(double z);

}  // namespace wristssl::metrics
