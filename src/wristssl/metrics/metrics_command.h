#pragma once
// Library side of `wristssl metrics --scores FILE.csv [--threshold T] [--json OUT]`: read a score file,
// report every figure at a frozen threshold with its interval, optionally write the JSON report.

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace wristssl::metrics {

/// Options of the metrics command.
struct MetricsCommandOptions {
  std::string scores_csv;           // columns label (0/1), score; optional group; others ignored
  std::optional<double> threshold;  // the frozen operating threshold; 0.5 when absent
  std::string json_out;             // written atomically when not empty
  uint64_t seed = 0;
  int bootstrap = 2000;
  std::string threshold_rule = "youden";  // reported for information, never applied
  /// A second model's scores on the same images: the two AUROCs compared by DeLong's paired test
  /// and a paired (grouped) bootstrap. Rows are matched by their "path" column when both files
  /// have one, else by position; the labels must agree.
  std::string versus_csv;
  /// Boxes CSVs (metrics/localisation.h; e.g. each fold's boxes_test.csv): the localisation
  /// figures over their union, with intervals (grouped when the rows name groups). With no
  /// --scores, only these.
  std::vector<std::string> boxes_csv;
};

/// Labels, scores and (when the file has a group column) groups read from a score CSV.
struct ScoreTable {
  std::vector<int> labels;
  std::vector<double> scores;
  std::vector<std::string> groups;  // empty when the file has no group column
  std::vector<std::string> paths;   // empty when the file has no path column
};

/// `b`'s scores in the order of `a`'s rows (by path when both have paths, else by position).
/// Throws std::runtime_error naming the files when a row has no partner or the labels differ.
std::vector<double> paired_scores(const ScoreTable& a, const std::string& a_name,
                                  const ScoreTable& b, const std::string& b_name);

/// Reads a score CSV; throws std::runtime_error naming the file and line on a missing column, a score that
/// is not a finite number, a label that is not 0 or 1, or an empty group.
ScoreTable read_scores_csv(const std::string& path);

/// Runs the command: prints the report to `out`, writes options.json_out; returns the exit code (0).
/// Throws std::runtime_error (bad file, one class) or std::invalid_argument (bad options).
int run_metrics_command(const MetricsCommandOptions& options, std::ostream& out);

}  // namespace wristssl::metrics
