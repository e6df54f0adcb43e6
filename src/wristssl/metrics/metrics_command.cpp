#include "wristssl/metrics/metrics_command.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>

#include "wristssl/metrics/binary_metrics.h"
#include "wristssl/metrics/localisation.h"
#include "wristssl/metrics/paired.h"
#include "wristssl/util/csv.h"
#include "wristssl/util/fs.h"

namespace wristssl::metrics {
namespace {

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// The whole field as a finite double, or false.
bool parse_number(const std::string& field, double& value) {
  const std::string s = trim(field);
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  value = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && errno != ERANGE && std::isfinite(value);
}

}  // namespace

ScoreTable read_scores_csv(const std::string& path) {
  const util::CsvTable table = util::read_csv(path);
  const int label_col = table.require_column("label", path);
  const int score_col = table.require_column("score", path);
  const int group_col = table.column("group");
  const int path_col = table.column("path");
  ScoreTable out;
  for (size_t r = 0; r < table.rows.size(); ++r) {
    // One record per line after the header (the usual score file; blank lines or quoted newlines would
    // shift this).
    const std::string where = path + ":" + std::to_string(r + 2) + ": ";
    const auto& row = table.rows[r];
    double label = 0.0, score = 0.0;
    if (!parse_number(row[label_col], label) || (label != 0.0 && label != 1.0)) {
      throw std::runtime_error(where + "label '" + row[label_col] + "' is not 0 or 1");
    }
    if (!parse_number(row[score_col], score)) {
      throw std::runtime_error(where + "score '" + row[score_col] + "' is not a finite number");
    }
    out.labels.push_back(label == 1.0 ? 1 : 0);
    out.scores.push_back(score);
    if (path_col >= 0) out.paths.push_back(row[path_col]);
    if (group_col >= 0) {
      const std::string group = trim(row[group_col]);
      if (group.empty()) throw std::runtime_error(where + "empty group");
      out.groups.push_back(group);
    }
  }
  if (out.labels.empty()) throw std::runtime_error(path + ": no rows after the header");
  return out;
}

std::vector<double> paired_scores(const ScoreTable& a, const std::string& a_name,
                                  const ScoreTable& b, const std::string& b_name) {
  const bool by_path = !a.paths.empty() && !b.paths.empty();
  if (!by_path && a.labels.size() != b.labels.size()) {
    throw std::runtime_error(
        a_name + " and " + b_name + " hold " + std::to_string(a.labels.size()) + " and " +
        std::to_string(b.labels.size()) + " rows and no path column to match them by");
  }
  std::map<std::string, size_t> row_of;
  if (by_path) {
    for (size_t i = 0; i < b.paths.size(); ++i) row_of[b.paths[i]] = i;
  }
  std::vector<double> out;
  for (size_t i = 0; i < a.labels.size(); ++i) {
    size_t j = i;
    if (by_path) {
      const auto it = row_of.find(a.paths[i]);
      if (it == row_of.end())
        throw std::runtime_error(b_name + " has no row for " + a.paths[i] + " (in " + a_name + ")");
      j = it->second;
    }
    if (a.labels[i] != b.labels[j]) {
      throw std::runtime_error(a_name + " and " + b_name + " disagree on the label of row " +
                               std::to_string(i + 2) +
                               (by_path ? " (" + a.paths[i] + ")" : std::string()));
    }
    out.push_back(b.scores[j]);
  }
  return out;
}

namespace {

// `metrics --boxes`: the localisation figures over the files' union.
nlohmann::json localisation_of(const MetricsCommandOptions& options, std::ostream& out) {
  const std::vector<LocalisedImage> images = read_boxes_csv(options.boxes_csv);
  LocalisationOptions lo;
  lo.bootstrap = options.bootstrap;
  lo.seed = options.seed;
  LocalisationReport rep;
  try {
    rep = compute_localisation(images, lo);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(options.boxes_csv.front() +
                             (options.boxes_csv.size() > 1 ? " ...: " : ": ") + e.what());
  }
  out << "Boxes";
  for (const std::string& f : options.boxes_csv) out << " " << f;
  out << "\n" << format_localisation(rep);
  nlohmann::json j = rep.to_json();
  j["files"] = options.boxes_csv;
  return j;
}

}  // namespace

int run_metrics_command(const MetricsCommandOptions& options, std::ostream& out) {
  if (options.bootstrap < 1) {
    throw std::invalid_argument("metrics: bootstrap resamples must be >= 1, got " + std::to_string(options.bootstrap));
  }
  if (options.scores_csv.empty() && !options.boxes_csv.empty()) {
    const nlohmann::json j = {{"localisation", localisation_of(options, out)}};
    if (!options.json_out.empty()) util::atomic_write(options.json_out, j.dump(2) + "\n");
    return 0;
  }
  if (options.scores_csv.empty())
    throw std::invalid_argument(
        "metrics: no score file given (--scores FILE.csv, or --boxes FILE.csv)");
  if (options.threshold && !std::isfinite(*options.threshold)) {
    throw std::invalid_argument("metrics: threshold is not a finite number");
  }
  ReportOptions ro;
  ro.rule = parse_threshold_rule(options.threshold_rule);
  ro.threshold = options.threshold.value_or(0.5);
  ro.threshold_source = options.threshold ? "given" : "default: no --threshold given";
  ro.bootstrap = options.bootstrap;
  ro.seed = options.seed;

  const ScoreTable table = read_scores_csv(options.scores_csv);
  MetricsReport report;
  try {
    report = compute_report(table.labels, table.scores, table.groups, ro);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(options.scores_csv + ": " + e.what());
  }
  out << "Scores " << options.scores_csv << "\n" << format_report(report);
  nlohmann::json doc = report.to_json();
  if (!options.versus_csv.empty()) {
    const ScoreTable other = read_scores_csv(options.versus_csv);
    const std::vector<double> b =
        paired_scores(table, options.scores_csv, other, options.versus_csv);
    const DeLongResult d = delong_paired(table.labels, table.scores, b);
    const PairedBootstrap pb = paired_bootstrap_auroc(table.labels, table.scores, b, table.groups,
                                                      options.bootstrap, options.seed);
    char line[400];
    std::snprintf(line, sizeof(line),
                  "Paired against %s (%zu images):\n  AUROC %.4f vs %.4f, difference %+.4f\n"
                  "  DeLong 95%% CI [%+.4f, %+.4f], p = %.3g\n"
                  "  paired bootstrap%s 95%% CI [%+.4f, %+.4f] (%d resamples)\n",
                  options.versus_csv.c_str(), b.size(), d.auroc_a, d.auroc_b, d.difference, d.lo,
                  d.hi, d.p_value, table.groups.empty() ? "" : " (by group)", pb.lo, pb.hi,
                  pb.used);
    out << line;
    doc["versus"] = {{"scores", options.versus_csv},
                     {"auroc", d.auroc_a},
                     {"auroc_versus", d.auroc_b},
                     {"difference", d.difference},
                     {"delong", {{"lo", d.lo}, {"hi", d.hi}, {"se", d.se}, {"p", d.p_value}}},
                     {"bootstrap",
                      {{"lo", pb.lo},
                       {"hi", pb.hi},
                       {"resamples", pb.used},
                       {"grouped", !table.groups.empty()}}}};
  }
  if (!options.boxes_csv.empty()) doc["localisation"] = localisation_of(options, out);
  if (!options.json_out.empty()) {
    util::atomic_write(options.json_out, doc.dump(2) + "\n");
    out << "Wrote " << options.json_out << "\n";
  }
  return 0;
}

}  // namespace wristssl::metrics
