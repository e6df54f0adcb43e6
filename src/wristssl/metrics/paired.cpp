#include "wristssl/metrics/paired.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <stdexcept>
#include <unordered_map>

#include "wristssl/metrics/binary_metrics.h"

namespace wristssl::metrics {
namespace {

// Midranks (1-based; ties share the mean of their ranks) of `values`.
std::vector<double> midranks(const std::vector<double>& values) {
  const size_t n = values.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return values[a] < values[b]; });
  std::vector<double> rank(n);
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && values[order[j]] == values[order[i]]) ++j;
    const double mid = 0.5 * static_cast<double>(i + 1 + j);  // mean of ranks i+1 .. j
    for (size_t k = i; k < j; ++k) rank[order[k]] = mid;
    i = j;
  }
  return rank;
}

// The structural components of one classifier: V10 (per positive, the share of negatives it outscores,
// ties counting half) and V01 (per negative, the share of positives that outscore it), and the AUROC.
struct Components {
  std::vector<double> v10, v01;
  double auroc = 0;
};

Components components(const std::vector<int>& labels, const std::vector<double>& scores) {
  std::vector<double> pos, neg;
  for (size_t i = 0; i < labels.size(); ++i) (labels[i] == 1 ? pos : neg).push_back(scores[i]);
  const double m = static_cast<double>(pos.size()), n = static_cast<double>(neg.size());
  std::vector<double> all(pos);
  all.insert(all.end(), neg.begin(), neg.end());
  const std::vector<double> tz = midranks(all), tx = midranks(pos), ty = midranks(neg);
  Components c;
  double rank_sum = 0;
  for (size_t i = 0; i < pos.size(); ++i) {
    c.v10.push_back((tz[i] - tx[i]) / n);
    rank_sum += tz[i];
  }
  for (size_t j = 0; j < neg.size(); ++j) c.v01.push_back(1.0 - (tz[pos.size() + j] - ty[j]) / m);
  c.auroc = (rank_sum - m * (m + 1) / 2) / (m * n);
  return c;
}

double covariance(const std::vector<double>& a, const std::vector<double>& b) {
  const double k = static_cast<double>(a.size());
  if (a.size() < 2) return 0.0;
  const double ma = std::accumulate(a.begin(), a.end(), 0.0) / k, mb = std::accumulate(b.begin(), b.end(), 0.0) / k;
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (a[i] - ma) * (b[i] - mb);
  return s / (k - 1);
}

// AUROC with integer weights per image, from a precomputed order of tie blocks (ascending score).
struct Ranked {
  std::vector<size_t> order;  // images by ascending score
  std::vector<size_t> block_end;  // for each position in order, one past the last of its tie block
};

Ranked rank_scores(const std::vector<double>& scores) {
  Ranked r;
  r.order.resize(scores.size());
  std::iota(r.order.begin(), r.order.end(), size_t{0});
  std::sort(r.order.begin(), r.order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  r.block_end.resize(scores.size());
  for (size_t i = 0; i < r.order.size();) {
    size_t j = i;
    while (j < r.order.size() && scores[r.order[j]] == scores[r.order[i]]) ++j;
    for (size_t k = i; k < j; ++k) r.block_end[k] = j;
    i = j;
  }
  return r;
}

double weighted_auroc(const Ranked& r, const std::vector<int>& labels, const std::vector<int64_t>& w) {
  double below_neg = 0, pos_total = 0, neg_total = 0, sum = 0;
  for (size_t i = 0; i < r.order.size();) {
    const size_t end = r.block_end[i];
    double bp = 0, bn = 0;
    for (size_t k = i; k < end; ++k) {
      const size_t img = r.order[k];
      (labels[img] == 1 ? bp : bn) += static_cast<double>(w[img]);
    }
    sum += bp * (below_neg + 0.5 * bn);
    below_neg += bn;
    pos_total += bp;
    neg_total += bn;
    i = end;
  }
  return sum / (pos_total * neg_total);
}

void check_pair(const std::vector<int>& labels, const std::vector<double>& a, const std::vector<double>& b) {
  check_inputs(labels, a, true);
  check_inputs(labels, b, true);
}

}  // namespace

double two_sided_p(double z) { return std::erfc(std::fabs(z) / std::sqrt(2.0)); }

DeLongResult delong_paired(const std::vector<int>& labels, const std::vector<double>& scores_a,
                           const std::vector<double>& scores_b) {
  check_pair(labels, scores_a, scores_b);
  const Components a = components(labels, scores_a), b = components(labels, scores_b);
  const double m = static_cast<double>(a.v10.size()), n = static_cast<double>(a.v01.size());
  DeLongResult r;
  r.positives = static_cast<int64_t>(m);
  r.negatives = static_cast<int64_t>(n);
  r.auroc_a = a.auroc;
  r.auroc_b = b.auroc;
  r.var_a = covariance(a.v10, a.v10) / m + covariance(a.v01, a.v01) / n;
  r.var_b = covariance(b.v10, b.v10) / m + covariance(b.v01, b.v01) / n;
  r.covariance = covariance(a.v10, b.v10) / m + covariance(a.v01, b.v01) / n;
  r.difference = a.auroc - b.auroc;
  const double var = std::max(0.0, r.var_a + r.var_b - 2 * r.covariance);
  r.se = std::sqrt(var);
  if (r.se > 0) {
    r.z = r.difference / r.se;
    r.p_value = two_sided_p(r.z);
  } else {
    // Identical rankings: no difference to test (z = 0, p = 1); any other zero-variance case is exact.
    r.z = 0;
    r.p_value = r.difference == 0 ? 1.0 : 0.0;
  }
  r.lo = r.difference - 1.959963984540054 * r.se;
  r.hi = r.difference + 1.959963984540054 * r.se;
  return r;
}

double delong_variance(const std::vector<int>& labels, const std::vector<double>& scores) {
  check_inputs(labels, scores, true);
  const Components c = components(labels, scores);
  return covariance(c.v10, c.v10) / static_cast<double>(c.v10.size()) +
         covariance(c.v01, c.v01) / static_cast<double>(c.v01.size());
}

PairedBootstrap paired_bootstrap_auroc(const std::vector<int>& labels, const std::vector<double>& scores_a,
                                       const std::vector<double>& scores_b, const std::vector<std::string>& groups,
                                       int resamples, uint64_t seed) {
  check_pair(labels, scores_a, scores_b);
  if (!groups.empty() && groups.size() != labels.size()) {
    throw std::invalid_argument("metrics: " + std::to_string(groups.size()) + " groups for " +
                                std::to_string(labels.size()) + " images");
  }
  if (resamples < 1) throw std::invalid_argument("metrics: the paired bootstrap needs at least one resample");
  const size_t n = labels.size();
  std::vector<size_t> unit_of(n);
  size_t units = n;
  if (!groups.empty()) {
    std::unordered_map<std::string, size_t> index;
    for (size_t i = 0; i < n; ++i) unit_of[i] = index.emplace(groups[i], index.size()).first->second;
    units = index.size();
  } else {
    std::iota(unit_of.begin(), unit_of.end(), size_t{0});
  }
  const Ranked ra = rank_scores(scores_a), rb = rank_scores(scores_b);
  PairedBootstrap out;
  std::vector<int64_t> ones(n, 1);
  out.difference = weighted_auroc(ra, labels, ones) - weighted_auroc(rb, labels, ones);
  std::mt19937_64 rng(seed);
  std::vector<int64_t> unit_count(units), w(n);
  std::vector<double> diffs;
  int above = 0;
  for (int rep = 0; rep < resamples; ++rep) {
    std::fill(unit_count.begin(), unit_count.end(), 0);
    for (size_t k = 0; k < units; ++k) ++unit_count[uniform_index(rng, units)];
    int64_t wp = 0, wn = 0;
    for (size_t i = 0; i < n; ++i) {
      w[i] = unit_count[unit_of[i]];
      (labels[i] == 1 ? wp : wn) += w[i];
    }
    if (wp == 0 || wn == 0) {
      ++out.skipped;
      continue;
    }
    const double d = weighted_auroc(ra, labels, w) - weighted_auroc(rb, labels, w);
    diffs.push_back(d);
    above += d > 0;
  }
  out.used = static_cast<int>(diffs.size());
  if (out.used == 0) throw std::invalid_argument("metrics: no bootstrap resample had both classes");
  out.lo = percentile(diffs, 2.5);
  out.hi = percentile(diffs, 97.5);
  out.share_above_zero = static_cast<double>(above) / out.used;
  return out;
}

double t_quantile_975(int df) {
  if (df < 1) throw std::invalid_argument("metrics: t quantile needs df >= 1, got " + std::to_string(df));
  static const double kTable[30] = {12.7062047, 4.3026527, 3.1824463, 2.7764451, 2.5705818, 2.4469119,
                                    2.3646243, 2.3060041, 2.2621572, 2.2281389, 2.2009852, 2.1788128,
                                    2.1603687, 2.1447867, 2.1314495, 2.1199053, 2.1098156, 2.1009220,
                                    2.0930241, 2.0859634, 2.0796138, 2.0738731, 2.0686576, 2.0638986,
                                    2.0595386, 2.0555294, 2.0518305, 2.0484071, 2.0452296, 2.0422725};
  if (df <= 30) return kTable[df - 1];
  // Cornish-Fisher expansion around the normal quantile (error below 1e-5 for df > 30).
  const double z = 1.959963984540054, v = df;
  const double z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z;
  return z + (z3 + z) / (4 * v) + (5 * z5 + 16 * z3 + 3 * z) / (96 * v * v) +
         (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * v * v * v);
}

double normal_quantile(double p) {
  if (!(p > 0 && p < 1)) throw std::invalid_argument("metrics: the normal quantile needs 0 < p < 1, got " + std::to_string(p));
  // Acklam's rational approximation (relative error below 1.2e-9), then one Halley step on erfc.
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01,  -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double low = 0.02425;
  double x;
  if (p < low || p > 1 - low) {
    const double q = std::sqrt(-2 * std::log(p < low ? p : 1 - p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    if (p > 1 - low) x = -x;
  } else {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  const double u = e * 2.5066282746310002 * std::exp(x * x / 2);  // sqrt(2 pi)
  return x - u / (1 + x * u / 2);
}

MeanInterval mean_interval(const std::vector<double>& values) {
  if (values.empty()) throw std::invalid_argument("metrics: the mean of no values");
  MeanInterval r;
  r.n = static_cast<int>(values.size());
  r.mean = std::accumulate(values.begin(), values.end(), 0.0) / r.n;
  r.lo = r.hi = r.mean;
  if (r.n < 2) return r;
  double ss = 0;
  for (double v : values) ss += (v - r.mean) * (v - r.mean);
  r.sd = std::sqrt(ss / (r.n - 1));
  const double half = t_quantile_975(r.n - 1) * r.sd / std::sqrt(static_cast<double>(r.n));
  r.lo = r.mean - half;
  r.hi = r.mean + half;
  return r;
}

}  // namespace wristssl::metrics
