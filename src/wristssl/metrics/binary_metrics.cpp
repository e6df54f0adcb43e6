#include "wristssl/metrics/binary_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <stdexcept>
#include <unordered_map>

// JSON schema "wristssl.metrics/1" (MetricsReport::to_json). Keys are stable; new keys may be added.
// Thresholds that are +infinity (the first ROC / PR point: nothing predicted positive) are null.
//   schema                  "wristssl.metrics/1"
//   n, n_positive, n_negative   image counts (positive = label 1 = fracture)
//   n_groups                number of distinct groups (patients), or null when none were given
//   threshold               the operating threshold (positive when score >= threshold)
//   threshold_source        e.g. "given", "default: no --threshold given"
//   confidence              0.95
//   confusion               {tp, fp, tn, fn} at threshold
//   metrics                 {auroc, auprc, f1, accuracy, precision, recall, specificity, npv}, each
//                           {value, lo, hi, method}; method "bootstrap" (percentile) or "wilson"; wilson
//                           ones add {num, den} (den 0: undefined, value 0, interval [0, 1]).
//                           recall = sensitivity, precision = PPV.
//   roc                     [{fpr, tpr, threshold}] from (0, 0, null) to (1, 1, lowest score)
//   roc_band                [{fpr, tpr, lo, hi}]: TPR at fpr = k / (K - 1), full data and bootstrap 2.5 / 97.5
//   pr                      [{recall, precision, threshold}] from (0, 1, null), recall increasing
//   calibration             {ece, bins: [{lo, hi, count, mean_score, fraction_positive, fraction_lo,
//                           fraction_hi}]} (mean_score / fraction_* null for empty bins), or null when a
//                           score lies outside [0, 1]
//   bootstrap               {method: "percentile", unit: "group" | "image", units, resamples, used, skipped,
//                           seed}
//   threshold_rule          {rule: "youden" | "sensitivity:T", threshold, note}: the rule's choice on this
//                           same data, for information (optimistic if applied to it)

namespace wristssl::metrics {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::string num_str(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

// Items sorted by descending score, cut into blocks of equal score (ties form one block).
struct Ranking {
  std::vector<int> order;           // item indices by descending score, stable
  std::vector<size_t> block_end;    // block b is order[b == 0 ? 0 : block_end[b - 1], block_end[b])
  std::vector<double> block_score;  // the score shared by block b
};

Ranking rank_scores(const std::vector<double>& scores) {
  Ranking r;
  r.order.resize(scores.size());
  std::iota(r.order.begin(), r.order.end(), 0);
  std::stable_sort(r.order.begin(), r.order.end(), [&](int a, int b) { return scores[a] > scores[b]; });
  for (size_t i = 0; i < r.order.size(); ++i) {
    const double s = scores[r.order[i]];
    if (i + 1 == r.order.size() || scores[r.order[i + 1]] != s) {
      r.block_end.push_back(i + 1);
      r.block_score.push_back(s);
    }
  }
  return r;
}

// Positives and negatives per block, each item counted weights[i] times (once when weights is empty).
void block_counts(const Ranking& r, const std::vector<int>& labels, const std::vector<int64_t>& weights,
                  std::vector<int64_t>& pos, std::vector<int64_t>& neg) {
  const size_t blocks = r.block_end.size();
  pos.assign(blocks, 0);
  neg.assign(blocks, 0);
  size_t i = 0;
  for (size_t b = 0; b < blocks; ++b) {
    for (; i < r.block_end[b]; ++i) {
      const int item = r.order[i];
      const int64_t w = weights.empty() ? 1 : weights[item];
      (labels[item] == 1 ? pos[b] : neg[b]) += w;
    }
  }
}

// AUROC from block counts, exactly: 2U = sum over blocks of neg_b (2 tp_before + pos_b).
double auroc_from_blocks(const std::vector<int64_t>& pos, const std::vector<int64_t>& neg, int64_t n_pos,
                         int64_t n_neg) {
  int64_t twice_u = 0, tp = 0;
  for (size_t b = 0; b < pos.size(); ++b) {
    twice_u += neg[b] * (2 * tp + pos[b]);
    tp += pos[b];
  }
  return static_cast<double>(twice_u) / (2.0 * static_cast<double>(n_pos) * static_cast<double>(n_neg));
}

double auprc_from_blocks(const std::vector<int64_t>& pos, const std::vector<int64_t>& neg, int64_t n_pos) {
  double ap = 0.0;
  int64_t tp = 0, fp = 0;
  for (size_t b = 0; b < pos.size(); ++b) {
    tp += pos[b];
    fp += neg[b];
    if (pos[b] > 0) {
      ap += (static_cast<double>(pos[b]) / static_cast<double>(n_pos)) *
            (static_cast<double>(tp) / static_cast<double>(tp + fp));
    }
  }
  return ap;
}

void roc_from_blocks(const Ranking& r, const std::vector<int64_t>& pos, const std::vector<int64_t>& neg,
                     int64_t n_pos, int64_t n_neg, std::vector<RocPoint>& out) {
  out.clear();
  out.push_back({0.0, 0.0, kInf});
  int64_t tp = 0, fp = 0;
  for (size_t b = 0; b < pos.size(); ++b) {
    tp += pos[b];
    fp += neg[b];
    out.push_back({static_cast<double>(fp) / static_cast<double>(n_neg),
                   static_cast<double>(tp) / static_cast<double>(n_pos), r.block_score[b]});
  }
}

double f1_from_counts(int64_t tp, int64_t fp, int64_t fn) {
  const int64_t den = 2 * tp + fp + fn;
  return den == 0 ? 0.0 : static_cast<double>(2 * tp) / static_cast<double>(den);
}

Proportion proportion(int64_t num, int64_t den) {
  Proportion p;
  p.num = num;
  p.den = den;
  if (den == 0) {
    p.estimate = {0.0, 0.0, 1.0};
  } else {
    p.estimate = wilson_interval(num, den);
  }
  return p;
}

int64_t count_positive(const std::vector<int>& labels) {
  return std::count(labels.begin(), labels.end(), 1);
}

std::vector<double> fpr_grid(int points) {
  if (points < 2) throw std::invalid_argument("metrics: roc band needs at least 2 points, got " +
                                              std::to_string(points));
  std::vector<double> grid(points);
  for (int k = 0; k < points; ++k) grid[k] = static_cast<double>(k) / static_cast<double>(points - 1);
  return grid;
}

nlohmann::json threshold_json(double t) { return std::isinf(t) ? nlohmann::json(nullptr) : nlohmann::json(t); }

nlohmann::json estimate_json(const Estimate& e, const char* method) {
  return {{"value", e.value}, {"lo", e.lo}, {"hi", e.hi}, {"method", method}};
}

nlohmann::json proportion_json(const Proportion& p) {
  nlohmann::json j = estimate_json(p.estimate, "wilson");
  j["num"] = p.num;
  j["den"] = p.den;
  return j;
}

std::string estimate_line(const std::string& name, const Estimate& e) {
  char buf[160];
  std::snprintf(buf, sizeof(buf), "%s %.3f (95%% CI %.3f-%.3f)", name.c_str(), e.value, e.lo, e.hi);
  return buf;
}

std::string proportion_line(const std::string& name, const Proportion& p, const char* undefined_why) {
  if (p.den == 0) return name + " undefined (" + undefined_why + ")";
  return estimate_line(name, p.estimate) + "  [" + std::to_string(p.num) + "/" + std::to_string(p.den) + "]";
}

}  // namespace

uint64_t uniform_index(std::mt19937_64& rng, uint64_t n) {
  const uint64_t reject_below = (0 - n) % n;  // 2^64 mod n
  uint64_t x;
  do {
    x = rng();
  } while (x < reject_below);
  return x % n;
}


void check_inputs(const std::vector<int>& labels, const std::vector<double>& scores, bool need_both_classes) {
  if (labels.empty() && scores.empty()) throw std::invalid_argument("metrics: empty input (no labels, no scores)");
  if (labels.size() != scores.size()) {
    throw std::invalid_argument("metrics: " + std::to_string(labels.size()) + " labels but " +
                                std::to_string(scores.size()) + " scores");
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] != 0 && labels[i] != 1) {
      throw std::invalid_argument("metrics: label " + std::to_string(labels[i]) + " at index " + std::to_string(i) +
                                  " is not 0 or 1");
    }
    if (std::isnan(scores[i])) throw std::invalid_argument("metrics: score at index " + std::to_string(i) + " is NaN");
    if (std::isinf(scores[i])) {
      throw std::invalid_argument("metrics: score at index " + std::to_string(i) + " is infinite");
    }
  }
  if (need_both_classes) {
    const int64_t n_pos = count_positive(labels);
    if (n_pos == 0 || n_pos == static_cast<int64_t>(labels.size())) {
      throw std::invalid_argument("metrics: all " + std::to_string(labels.size()) + " labels are " +
                                  (n_pos == 0 ? "0" : "1") +
                                  "; ROC, AUROC, AUPRC, thresholds and the report need both classes");
    }
  }
}

Estimate wilson_interval(int64_t successes, int64_t trials) {
  if (trials <= 0 || successes < 0 || successes > trials) {
    throw std::invalid_argument("metrics: wilson_interval needs 0 <= successes <= trials and trials > 0, got " +
                                std::to_string(successes) + "/" + std::to_string(trials));
  }
  const double n = static_cast<double>(trials);
  const double p = static_cast<double>(successes) / n;
  const double z2 = kZ95 * kZ95;
  const double denom = 1.0 + z2 / n;
  const double center = (p + z2 / (2.0 * n)) / denom;
  const double half = kZ95 * std::sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom;
  // At 0 and n the bound is exactly 0 or 1; rounding would leave it a hair off.
  const double lo = successes == 0 ? 0.0 : std::max(0.0, center - half);
  const double hi = successes == trials ? 1.0 : std::min(1.0, center + half);
  return {p, lo, hi};
}

Confusion confusion_at(const std::vector<int>& labels, const std::vector<double>& scores, double threshold) {
  check_inputs(labels, scores, false);
  if (std::isnan(threshold)) throw std::invalid_argument("metrics: threshold is NaN");
  Confusion c;
  for (size_t i = 0; i < labels.size(); ++i) {
    const bool predicted = scores[i] >= threshold;
    if (labels[i] == 1) {
      ++(predicted ? c.tp : c.fn);
    } else {
      ++(predicted ? c.fp : c.tn);
    }
  }
  return c;
}

ThresholdMetrics threshold_metrics(const Confusion& c) {
  if (c.tp < 0 || c.fp < 0 || c.tn < 0 || c.fn < 0) throw std::invalid_argument("metrics: negative confusion count");
  ThresholdMetrics m;
  m.confusion = c;
  m.accuracy = proportion(c.tp + c.tn, c.tp + c.fp + c.tn + c.fn);
  m.precision = proportion(c.tp, c.tp + c.fp);
  m.recall = proportion(c.tp, c.tp + c.fn);
  m.specificity = proportion(c.tn, c.tn + c.fp);
  m.npv = proportion(c.tn, c.tn + c.fn);
  m.f1 = f1_from_counts(c.tp, c.fp, c.fn);
  return m;
}

ThresholdMetrics threshold_metrics(const std::vector<int>& labels, const std::vector<double>& scores,
                                   double threshold) {
  return threshold_metrics(confusion_at(labels, scores, threshold));
}

std::vector<RocPoint> roc_curve(const std::vector<int>& labels, const std::vector<double>& scores) {
  check_inputs(labels, scores, true);
  const Ranking r = rank_scores(scores);
  std::vector<int64_t> pos, neg;
  block_counts(r, labels, {}, pos, neg);
  const int64_t n_pos = count_positive(labels);
  std::vector<RocPoint> out;
  roc_from_blocks(r, pos, neg, n_pos, static_cast<int64_t>(labels.size()) - n_pos, out);
  return out;
}

double auroc(const std::vector<int>& labels, const std::vector<double>& scores) {
  check_inputs(labels, scores, true);
  const Ranking r = rank_scores(scores);
  std::vector<int64_t> pos, neg;
  block_counts(r, labels, {}, pos, neg);
  const int64_t n_pos = count_positive(labels);
  return auroc_from_blocks(pos, neg, n_pos, static_cast<int64_t>(labels.size()) - n_pos);
}

std::vector<PrPoint> pr_curve(const std::vector<int>& labels, const std::vector<double>& scores) {
  check_inputs(labels, scores, true);
  const Ranking r = rank_scores(scores);
  std::vector<int64_t> pos, neg;
  block_counts(r, labels, {}, pos, neg);
  const int64_t n_pos = count_positive(labels);
  std::vector<PrPoint> out;
  out.push_back({0.0, 1.0, kInf});
  int64_t tp = 0, fp = 0;
  for (size_t b = 0; b < pos.size(); ++b) {
    tp += pos[b];
    fp += neg[b];
    out.push_back({static_cast<double>(tp) / static_cast<double>(n_pos),
                   static_cast<double>(tp) / static_cast<double>(tp + fp), r.block_score[b]});
  }
  return out;
}

double auprc(const std::vector<int>& labels, const std::vector<double>& scores) {
  check_inputs(labels, scores, true);
  const Ranking r = rank_scores(scores);
  std::vector<int64_t> pos, neg;
  block_counts(r, labels, {}, pos, neg);
  return auprc_from_blocks(pos, neg, count_positive(labels));
}

std::vector<double> tpr_at_fpr(const std::vector<RocPoint>& roc, const std::vector<double>& fpr_grid) {
  if (roc.empty() || roc.front().fpr != 0.0) throw std::invalid_argument("metrics: ROC must start at fpr 0");
  std::vector<double> out;
  out.reserve(fpr_grid.size());
  size_t i = 0;  // the last vertex with fpr <= f
  double previous = -1.0;
  for (const double f : fpr_grid) {
    if (!(f >= 0.0 && f <= 1.0) || f < previous) {
      throw std::invalid_argument("metrics: FPR grid must be ascending within [0, 1], got " + num_str(f));
    }
    previous = f;
    while (i + 1 < roc.size() && roc[i + 1].fpr <= f) ++i;
    if (i + 1 < roc.size() && roc[i].fpr < f) {
      const RocPoint& a = roc[i];
      const RocPoint& b = roc[i + 1];
      out.push_back(a.tpr + (f - a.fpr) / (b.fpr - a.fpr) * (b.tpr - a.tpr));
    } else {
      out.push_back(roc[i].tpr);
    }
  }
  return out;
}

Calibration compute_calibration(const std::vector<int>& labels, const std::vector<double>& scores, int bins) {
  check_inputs(labels, scores, false);
  if (bins < 1) throw std::invalid_argument("metrics: calibration needs at least 1 bin, got " + std::to_string(bins));
  std::vector<double> score_sum(bins, 0.0);
  std::vector<int64_t> count(bins, 0), positives(bins, 0);
  for (size_t i = 0; i < scores.size(); ++i) {
    const double s = scores[i];
    if (s < 0.0 || s > 1.0) {
      throw std::invalid_argument("metrics: calibration needs scores in [0, 1], score at index " + std::to_string(i) +
                                  " is " + num_str(s));
    }
    const int b = std::min(static_cast<int>(std::floor(s * bins)), bins - 1);
    score_sum[b] += s;
    ++count[b];
    positives[b] += labels[i];
  }
  Calibration cal;
  const double n = static_cast<double>(scores.size());
  for (int b = 0; b < bins; ++b) {
    CalibrationBin bin;
    bin.lo = static_cast<double>(b) / bins;
    bin.hi = static_cast<double>(b + 1) / bins;
    bin.count = count[b];
    if (count[b] > 0) {
      bin.mean_score = score_sum[b] / static_cast<double>(count[b]);
      bin.fraction_positive = static_cast<double>(positives[b]) / static_cast<double>(count[b]);
      bin.fraction_interval = wilson_interval(positives[b], count[b]);
      cal.ece += static_cast<double>(count[b]) / n * std::abs(bin.mean_score - bin.fraction_positive);
    } else {
      bin.fraction_interval = {0.0, 0.0, 1.0};
    }
    cal.bins.push_back(bin);
  }
  return cal;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) throw std::invalid_argument("metrics: percentile of no values");
  if (!(p >= 0.0 && p <= 100.0)) throw std::invalid_argument("metrics: percentile " + num_str(p) + " not in [0, 100]");
  std::sort(values.begin(), values.end());
  const double h = static_cast<double>(values.size() - 1) * (p / 100.0);
  const size_t lo = std::min(static_cast<size_t>(std::floor(h)), values.size() - 1);
  const size_t hi = std::min(lo + 1, values.size() - 1);
  const double t = h - static_cast<double>(lo);
  const double a = values[lo], b = values[hi];
  // numpy's lerp: from the nearer end, so t = 1 gives b exactly.
  return t < 0.5 ? a + (b - a) * t : b - (b - a) * (1.0 - t);
}

BootstrapResult bootstrap_metrics(const std::vector<int>& labels, const std::vector<double>& scores,
                                  const std::vector<std::string>& groups, const BootstrapOptions& options) {
  check_inputs(labels, scores, true);
  if (options.resamples < 1) {
    throw std::invalid_argument("metrics: bootstrap needs at least 1 resample, got " +
                                std::to_string(options.resamples));
  }
  if (std::isnan(options.threshold)) throw std::invalid_argument("metrics: bootstrap threshold is NaN");
  if (!groups.empty() && groups.size() != labels.size()) {
    throw std::invalid_argument("metrics: " + std::to_string(groups.size()) + " groups but " +
                                std::to_string(labels.size()) + " labels");
  }
  const std::vector<double> grid = fpr_grid(options.roc_band_points);
  const size_t n = labels.size();
  const Ranking r = rank_scores(scores);
  const int64_t n_pos = count_positive(labels);
  const int64_t n_neg = static_cast<int64_t>(n) - n_pos;
  // Blocks with score >= threshold form a prefix of the descending order.
  const size_t blocks_above = static_cast<size_t>(
      std::count_if(r.block_score.begin(), r.block_score.end(), [&](double s) { return s >= options.threshold; }));

  // Unit of resampling per item: its group (numbered by first appearance), or itself.
  std::vector<int64_t> unit_of(n);
  int64_t units = 0;
  if (!groups.empty()) {
    std::unordered_map<std::string, int64_t> index;
    for (size_t i = 0; i < n; ++i) {
      auto it = index.emplace(groups[i], static_cast<int64_t>(index.size())).first;
      unit_of[i] = it->second;
    }
    units = static_cast<int64_t>(index.size());
  } else {
    std::iota(unit_of.begin(), unit_of.end(), int64_t{0});
    units = static_cast<int64_t>(n);
  }

  BootstrapResult result;
  result.grouped = !groups.empty();
  result.units = units;
  result.resamples = options.resamples;

  // Full-data figures.
  std::vector<int64_t> pos, neg;
  block_counts(r, labels, {}, pos, neg);
  std::vector<RocPoint> roc;
  roc_from_blocks(r, pos, neg, n_pos, n_neg, roc);
  result.auroc.value = auroc_from_blocks(pos, neg, n_pos, n_neg);
  result.auprc.value = auprc_from_blocks(pos, neg, n_pos);
  {
    int64_t tp = 0, fp = 0;
    for (size_t b = 0; b < blocks_above; ++b) tp += pos[b], fp += neg[b];
    result.f1.value = f1_from_counts(tp, fp, n_pos - tp);
  }
  const std::vector<double> full_band = tpr_at_fpr(roc, grid);

  std::mt19937_64 rng(options.seed);
  std::vector<int64_t> unit_count(units), weights(n);
  std::vector<double> aurocs, auprcs, f1s;
  std::vector<std::vector<double>> band(grid.size());
  for (int rep = 0; rep < options.resamples; ++rep) {
    std::fill(unit_count.begin(), unit_count.end(), 0);
    for (int64_t k = 0; k < units; ++k) ++unit_count[uniform_index(rng, static_cast<uint64_t>(units))];
    int64_t w_pos = 0;
    int64_t w_all = 0;
    for (size_t i = 0; i < n; ++i) {
      weights[i] = unit_count[unit_of[i]];
      w_all += weights[i];
      if (labels[i] == 1) w_pos += weights[i];
    }
    const int64_t w_neg = w_all - w_pos;
    if (w_pos == 0 || w_neg == 0) {
      ++result.skipped;
      continue;
    }
    block_counts(r, labels, weights, pos, neg);
    aurocs.push_back(auroc_from_blocks(pos, neg, w_pos, w_neg));
    auprcs.push_back(auprc_from_blocks(pos, neg, w_pos));
    int64_t tp = 0, fp = 0;
    for (size_t b = 0; b < blocks_above; ++b) tp += pos[b], fp += neg[b];
    f1s.push_back(f1_from_counts(tp, fp, w_pos - tp));
    roc_from_blocks(r, pos, neg, w_pos, w_neg, roc);
    const std::vector<double> tprs = tpr_at_fpr(roc, grid);
    for (size_t k = 0; k < grid.size(); ++k) band[k].push_back(tprs[k]);
  }
  result.used = static_cast<int>(aurocs.size());
  if (result.used == 0) {
    throw std::invalid_argument("metrics: none of " + std::to_string(options.resamples) +
                                " bootstrap resamples had both classes (" + std::to_string(units) +
                                (result.grouped ? " groups)" : " images)"));
  }
  result.auroc.lo = percentile(aurocs, 2.5);
  result.auroc.hi = percentile(aurocs, 97.5);
  result.auprc.lo = percentile(auprcs, 2.5);
  result.auprc.hi = percentile(auprcs, 97.5);
  result.f1.lo = percentile(f1s, 2.5);
  result.f1.hi = percentile(f1s, 97.5);
  for (size_t k = 0; k < grid.size(); ++k) {
    result.roc_band.push_back({grid[k], full_band[k], percentile(band[k], 2.5), percentile(band[k], 97.5)});
  }
  return result;
}

double youden_threshold(const std::vector<int>& labels, const std::vector<double>& scores) {
  check_inputs(labels, scores, true);
  const int64_t n_pos = count_positive(labels);
  const int64_t n_neg = static_cast<int64_t>(labels.size()) - n_pos;
  // J = tp / P - fp / N, compared exactly as tp N - fp P (floating J would break ties by rounding).
  const Ranking r = rank_scores(scores);
  std::vector<int64_t> pos, neg;
  block_counts(r, labels, {}, pos, neg);
  int64_t tp = 0, fp = 0, best = 0;
  double best_threshold = r.block_score.front();
  bool found = false;
  for (size_t b = 0; b < pos.size(); ++b) {
    tp += pos[b];
    fp += neg[b];
    const int64_t j = tp * n_neg - fp * n_pos;
    if (!found || j > best) {  // strict: the highest threshold wins ties
      best = j;
      best_threshold = r.block_score[b];
      found = true;
    }
  }
  return best_threshold;
}

double sensitivity_threshold(const std::vector<int>& labels, const std::vector<double>& scores, double target) {
  if (!(target > 0.0 && target <= 1.0)) {
    throw std::invalid_argument("metrics: target sensitivity " + num_str(target) + " not in (0, 1]");
  }
  for (const RocPoint& p : roc_curve(labels, scores)) {
    if (p.tpr >= target) return p.threshold;  // the first vertex (+inf) has tpr 0 < target
  }
  throw std::logic_error("metrics: ROC never reached tpr 1");  // unreachable: the last vertex has tpr 1
}

double select_threshold(const std::vector<int>& labels, const std::vector<double>& scores,
                        const ThresholdRule& rule) {
  return rule.kind == ThresholdRule::Kind::kYouden ? youden_threshold(labels, scores)
                                                   : sensitivity_threshold(labels, scores, rule.target);
}

ThresholdRule parse_threshold_rule(const std::string& text) {
  ThresholdRule rule;
  if (text == "youden") return rule;
  const std::string prefix = "sensitivity";
  if (text.size() > prefix.size() + 1 && text.compare(0, prefix.size(), prefix) == 0 &&
      (text[prefix.size()] == ':' || text[prefix.size()] == '=')) {
    const std::string value = text.substr(prefix.size() + 1);
    char* end = nullptr;
    const double t = std::strtod(value.c_str(), &end);
    if (end != value.c_str() && *end == '\0' && t > 0.0 && t <= 1.0) {
      rule.kind = ThresholdRule::Kind::kSensitivity;
      rule.target = t;
      return rule;
    }
  }
  throw std::invalid_argument("metrics: threshold rule '" + text +
                              "' is not 'youden' or 'sensitivity:T' with 0 < T <= 1");
}

std::string threshold_rule_name(const ThresholdRule& rule) {
  return rule.kind == ThresholdRule::Kind::kYouden ? "youden" : "sensitivity:" + num_str(rule.target);
}

MetricsReport compute_report(const std::vector<int>& labels, const std::vector<double>& scores,
                             const std::vector<std::string>& groups, const ReportOptions& options) {
  check_inputs(labels, scores, true);
  if (!std::isfinite(options.threshold)) {
    throw std::invalid_argument("metrics: threshold " + num_str(options.threshold) + " is not finite");
  }
  MetricsReport rep;
  rep.n = static_cast<int64_t>(labels.size());
  rep.n_positive = count_positive(labels);
  rep.n_negative = rep.n - rep.n_positive;
  rep.threshold = options.threshold;
  rep.threshold_source = options.threshold_source;
  rep.at_threshold = threshold_metrics(labels, scores, options.threshold);
  rep.roc = roc_curve(labels, scores);
  rep.pr = pr_curve(labels, scores);

  BootstrapOptions bo;
  bo.resamples = options.bootstrap;
  bo.seed = options.seed;
  bo.threshold = options.threshold;
  bo.roc_band_points = options.roc_band_points;
  const BootstrapResult boot = bootstrap_metrics(labels, scores, groups, bo);
  rep.n_groups = boot.grouped ? boot.units : 0;
  rep.auroc = boot.auroc;
  rep.auprc = boot.auprc;
  rep.f1 = boot.f1;
  rep.roc_band = boot.roc_band;
  rep.bootstrap_resamples = boot.resamples;
  rep.bootstrap_used = boot.used;
  rep.bootstrap_skipped = boot.skipped;
  rep.seed = options.seed;

  rep.has_calibration = std::all_of(scores.begin(), scores.end(), [](double s) { return s >= 0.0 && s <= 1.0; });
  if (rep.has_calibration) rep.calibration = compute_calibration(labels, scores, options.calibration_bins);
  rep.rule = options.rule;
  rep.rule_threshold = select_threshold(labels, scores, options.rule);
  return rep;
}

nlohmann::json MetricsReport::to_json() const {
  using nlohmann::json;
  const ThresholdMetrics& m = at_threshold;
  json j;
  j["schema"] = "wristssl.metrics/1";
  j["n"] = n;
  j["n_positive"] = n_positive;
  j["n_negative"] = n_negative;
  j["n_groups"] = n_groups > 0 ? json(n_groups) : json(nullptr);
  j["threshold"] = threshold;
  j["threshold_source"] = threshold_source;
  j["confidence"] = 0.95;
  j["confusion"] = {{"tp", m.confusion.tp}, {"fp", m.confusion.fp}, {"tn", m.confusion.tn}, {"fn", m.confusion.fn}};
  j["metrics"] = {{"auroc", estimate_json(auroc, "bootstrap")},
                  {"auprc", estimate_json(auprc, "bootstrap")},
                  {"f1", estimate_json(f1, "bootstrap")},
                  {"accuracy", proportion_json(m.accuracy)},
                  {"precision", proportion_json(m.precision)},
                  {"recall", proportion_json(m.recall)},
                  {"specificity", proportion_json(m.specificity)},
                  {"npv", proportion_json(m.npv)}};
  json roc_json = json::array();
  for (const RocPoint& p : roc) roc_json.push_back({{"fpr", p.fpr}, {"tpr", p.tpr}, {"threshold", threshold_json(p.threshold)}});
  j["roc"] = std::move(roc_json);
  json band_json = json::array();
  for (const RocBandPoint& p : roc_band) band_json.push_back({{"fpr", p.fpr}, {"tpr", p.tpr}, {"lo", p.lo}, {"hi", p.hi}});
  j["roc_band"] = std::move(band_json);
  json pr_json = json::array();
  for (const PrPoint& p : pr) {
    pr_json.push_back({{"recall", p.recall}, {"precision", p.precision}, {"threshold", threshold_json(p.threshold)}});
  }
  j["pr"] = std::move(pr_json);
  if (has_calibration) {
    json bins = json::array();
    for (const CalibrationBin& b : calibration.bins) {
      const bool empty = b.count == 0;
      bins.push_back({{"lo", b.lo},
                      {"hi", b.hi},
                      {"count", b.count},
                      {"mean_score", empty ? json(nullptr) : json(b.mean_score)},
                      {"fraction_positive", empty ? json(nullptr) : json(b.fraction_positive)},
                      {"fraction_lo", empty ? json(nullptr) : json(b.fraction_interval.lo)},
                      {"fraction_hi", empty ? json(nullptr) : json(b.fraction_interval.hi)}});
    }
    j["calibration"] = {{"ece", calibration.ece}, {"bins", std::move(bins)}};
  } else {
    j["calibration"] = nullptr;
  }
  j["bootstrap"] = {{"method", "percentile"},
                    {"unit", n_groups > 0 ? "group" : "image"},
                    {"units", n_groups > 0 ? n_groups : n},
                    {"resamples", bootstrap_resamples},
                    {"used", bootstrap_used},
                    {"skipped", bootstrap_skipped},
                    {"seed", seed}};
  j["threshold_rule"] = {{"rule", threshold_rule_name(rule)},
                         {"threshold", rule_threshold},
                         {"note", "chosen on this same data: optimistic if applied to it; choose on validation data"}};
  return j;
}

std::string format_report(const MetricsReport& r) {
  const ThresholdMetrics& m = r.at_threshold;
  std::string out;
  auto line = [&](const std::string& s) { out += s + "\n"; };
  line("Images " + std::to_string(r.n) + " (" + std::to_string(r.n_positive) + " fracture, " +
       std::to_string(r.n_negative) + " no fracture)" +
       (r.n_groups > 0 ? ", " + std::to_string(r.n_groups) + " groups" : std::string()));
  line(estimate_line("AUROC", r.auroc));
  line(estimate_line("AUPRC", r.auprc));
  line("At threshold " + num_str(r.threshold) + " (" + r.threshold_source + "; positive when score >= threshold):");
  line("  " + proportion_line("Sensitivity", m.recall, "no positives"));
  line("  " + proportion_line("Specificity", m.specificity, "no negatives"));
  line("  " + proportion_line("PPV (precision)", m.precision, "no predicted positives"));
  line("  " + proportion_line("NPV", m.npv, "no predicted negatives"));
  line("  " + proportion_line("Accuracy", m.accuracy, "no images"));
  line("  " + estimate_line("F1", r.f1));
  line("  Confusion TP " + std::to_string(m.confusion.tp) + "  FP " + std::to_string(m.confusion.fp) + "  TN " +
       std::to_string(m.confusion.tn) + "  FN " + std::to_string(m.confusion.fn));
  if (r.has_calibration) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "ECE %.3f (%zu equal-width bins)", r.calibration.ece, r.calibration.bins.size());
    line(buf);
  } else {
    line("ECE not computed (scores outside [0, 1])");
  }
  line("Threshold by " + threshold_rule_name(r.rule) + " on this data: " + num_str(r.rule_threshold) +
       " (for reference only: a threshold chosen on the data it is evaluated on is optimistic; choose it on "
       "validation data and apply it here)");
  line("Intervals 95%: Wilson for proportions; percentile bootstrap for AUROC, AUPRC, F1 (" +
       std::to_string(r.bootstrap_resamples) + " resamples of " +
       (r.n_groups > 0 ? std::to_string(r.n_groups) + " groups" : std::to_string(r.n) + " images") + ", seed " +
       std::to_string(r.seed) + ", " + std::to_string(r.bootstrap_skipped) + " skipped with one class)");
  return out;
}

}  // namespace wristssl::metrics
