#include "wristssl/study/analysis.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include "wristssl/metrics/binary_metrics.h"
#include "wristssl/metrics/paired.h"

using nlohmann::json;

namespace wristssl::study {
namespace {

json interval_json(const metrics::MeanInterval& m) {
  return {{"mean", m.mean}, {"lo", m.lo}, {"hi", m.hi}, {"sd", m.sd}, {"n", m.n}};
}

// An arm's test scores at a fraction over the folds of a seed, by image path: every labelled
// (readable) image once.
std::unordered_map<std::string, Scored> out_of_fold(const StudyConfig& c, const CvResults& results,
                                                    const std::string& arm, double frac,
                                                    uint64_t s) {
  std::unordered_map<std::string, Scored> by_path;
  for (int f = 0; f < c.folds; ++f) {
    for (const auto& e : results.at({arm, frac, s, f})["scores"]) {
      by_path[e[0].get<std::string>()] = {e[0], e[1], e[2].get<int>(), e[3].get<double>()};
    }
  }
  return by_path;
}

// The out-of-fold AUROC of `arm` and, when `other` is not empty, the paired comparison with it on
// the images both scored: DeLong's test and a bootstrap resampling whole groups.
json pooled_paired(const StudyConfig& c, const CvResults& results, const std::string& arm,
                   const std::string& other, double frac, uint64_t s) {
  std::unordered_map<std::string, Scored> mine = out_of_fold(c, results, arm, frac, s);
  const std::unordered_map<std::string, Scored> theirs =
      other.empty() ? mine : out_of_fold(c, results, other, frac, s);
  std::vector<int> labels;
  std::vector<double> a, b;
  std::vector<std::string> groups;
  std::vector<std::string> paths;
  for (const auto& [path, x] : mine) paths.push_back(path);
  std::sort(paths.begin(), paths.end());  // a fixed order: the bootstrap is reproducible
  for (const auto& path : paths) {
    const auto it = theirs.find(path);
    if (it == theirs.end()) continue;
    labels.push_back(mine[path].label);
    a.push_back(mine[path].score);
    b.push_back(it->second.score);
    groups.push_back(mine[path].group);
  }
  json sj = {{"seed", s}, {"images", labels.size()}};
  try {
    sj["pooled_auroc"] = metrics::auroc(labels, a);
    if (!other.empty()) {
      const metrics::DeLongResult d = metrics::delong_paired(labels, a, b);
      sj["delong"] = {{"difference", d.difference},
                      {"lo", d.lo},
                      {"hi", d.hi},
                      {"se", d.se},
                      {"z", d.z},
                      {"p", d.p_value},
                      {"auroc", d.auroc_a},
                      {"auroc_baseline", d.auroc_b}};
      const metrics::PairedBootstrap pb =
          metrics::paired_bootstrap_auroc(labels, a, b, groups, c.bootstrap, s);
      sj["bootstrap"] = {{"difference", pb.difference},
                         {"lo", pb.lo},
                         {"hi", pb.hi},
                         {"share_above_zero", pb.share_above_zero},
                         {"resamples", pb.used},
                         {"grouped", true}};
    }
  } catch (const std::exception& e) {
    sj["error"] = e.what();  // e.g. one class only in a tiny sample
  }
  return sj;
}

// Per-fold test AUROC differences, arm minus other, over folds x seeds.
std::vector<double> fold_paired(const StudyConfig& c, const CvResults& results,
                                const std::string& arm, const std::string& other, double frac) {
  std::vector<double> diffs;
  for (uint64_t s : c.seeds) {
    for (int f = 0; f < c.folds; ++f) {
      const json& a = results.at({arm, frac, s, f});
      const json& b = results.at({other, frac, s, f});
      if (a["test_auroc"].is_null() || b["test_auroc"].is_null()) continue;
      diffs.push_back(a["test_auroc"].get<double>() - b["test_auroc"].get<double>());
    }
  }
  return diffs;
}

// Sensitivity and specificity at each run's frozen threshold, the runs' test confusions summed
// (every image once per seed), with Wilson intervals; null when a run has no confusion recorded.
json frozen_threshold(const StudyConfig& c, const CvResults& results, const std::string& name,
                      double frac) {
  int64_t tp = 0, fn = 0, tn = 0, fp = 0;
  for (uint64_t s : c.seeds) {
    for (int f = 0; f < c.folds; ++f) {
      const json& a = results.at({name, frac, s, f});
      if (!a.contains("confusion")) return nullptr;
      const json& m = a["confusion"];
      tp += m.at("tp").get<int64_t>();
      fn += m.at("fn").get<int64_t>();
      tn += m.at("tn").get<int64_t>();
      fp += m.at("fp").get<int64_t>();
    }
  }
  if (tp + fn == 0 || tn + fp == 0) return nullptr;
  auto estimate = [](int64_t k, int64_t n) {
    const metrics::Estimate e = metrics::wilson_interval(k, n);
    return json{{"value", e.value}, {"lo", e.lo}, {"hi", e.hi}, {"k", k}, {"n", n}};
  };
  return {{"sensitivity", estimate(tp, tp + fn)}, {"specificity", estimate(tn, tn + fp)}};
}

json arm_row(const StudyConfig& c, const CvResults& results, const std::string& name, double frac) {
  std::vector<double> aurocs;
  double seconds = 0;
  for (uint64_t s : c.seeds) {
    for (int f = 0; f < c.folds; ++f) {
      const json& a = results.at({name, frac, s, f});
      if (!a["test_auroc"].is_null()) aurocs.push_back(a["test_auroc"].get<double>());
      seconds += a.value("seconds", 0.0);
    }
  }
  json row = {{"arm", name}, {"fraction", frac}};
  const json frozen = frozen_threshold(c, results, name, frac);
  if (!frozen.is_null()) row["frozen_threshold"] = frozen;
  if (!aurocs.empty()) {
    json a = interval_json(metrics::mean_interval(aurocs));
    a["lo"] = std::max(0.0, a["lo"].get<double>());  // a t-interval knows no bounds; an AUROC does
    a["hi"] = std::min(1.0, a["hi"].get<double>());
    row["auroc"] = a;
  }
  const std::string& baseline = c.baseline_arm;
  if (name != baseline) {
    const std::vector<double> diffs = fold_paired(c, results, name, baseline, frac);
    if (!diffs.empty())
      row["fold_paired_difference"] = interval_json(metrics::mean_interval(diffs));
  }
  json per_seed = json::array();
  for (uint64_t s : c.seeds)
    per_seed.push_back(pooled_paired(c, results, name, name == baseline ? "" : baseline, frac, s));
  row["pooled"] = per_seed;
  row["seconds"] = seconds;
  return row;
}

}  // namespace

json arm_rows(const StudyConfig& c, const CvResults& results) {
  json rows = json::array();
  for (double frac : c.fractions) {
    for (const Arm& arm : c.arms) rows.push_back(arm_row(c, results, arm.name, frac));
  }
  return rows;
}

json comparisons(const StudyConfig& c, const CvResults& results) {
  json out = json::array();
  for (const auto& [arm, other] : c.compare) {
    for (double frac : c.fractions) {
      json cmp = {{"arm", arm}, {"against", other}, {"fraction", frac}};
      const std::vector<double> diffs = fold_paired(c, results, arm, other, frac);
      if (!diffs.empty())
        cmp["fold_paired_difference"] = interval_json(metrics::mean_interval(diffs));
      json per_seed = json::array();
      for (uint64_t s : c.seeds) per_seed.push_back(pooled_paired(c, results, arm, other, frac, s));
      cmp["pooled"] = per_seed;
      out.push_back(cmp);
    }
  }
  return out;
}

json verdicts(const StudyConfig& c, const json& rows) {
  json out = json::array();
  for (double frac : c.fractions) {
    const json* best = nullptr;
    int compared = 0;
    for (const auto& row : rows) {
      if (row["fraction"].get<double>() != frac || row["arm"] == c.baseline_arm ||
          !row.contains("auroc"))
        continue;
      ++compared;
      if (!best || row["auroc"]["mean"].get<double>() > (*best)["auroc"]["mean"].get<double>())
        best = &row;
    }
    if (!best || (*best)["pooled"].empty() || !(*best)["pooled"][0].contains("delong")) continue;
    const json& d = (*best)["pooled"][0]["delong"];
    const double diff = d["difference"].get<double>(), se = d["se"].get<double>();
    const double z = metrics::normal_quantile(1 - 0.025 / compared);
    const double lo = diff - z * se, hi = diff + z * se;
    out.push_back({{"fraction", frac},
                   {"best_arm", (*best)["arm"]},
                   {"difference", diff},
                   {"arms_compared", compared},
                   {"lo", lo},
                   {"hi", hi},
                   {"p", std::min(1.0, compared * d["p"].get<double>())},
                   {"lo_unadjusted", d["lo"]},
                   {"hi_unadjusted", d["hi"]},
                   {"p_unadjusted", d["p"]},
                   {"interval_excludes_zero", lo > 0 || hi < 0},
                   {"meets_target", diff >= 0.03 && lo > 0}});
  }
  return out;
}

}  // namespace wristssl::study
