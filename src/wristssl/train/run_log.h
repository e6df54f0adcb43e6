#pragma once
// What a run folder logs as training goes (steps.csv, metrics.csv, metrics.jsonl), kept consistent
// across a resume, and the per-epoch running means a mid-epoch checkpoint carries.

#include <cstdint>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace wristssl::train {

/// Means over the steps of an epoch so far; saved in mid-epoch checkpoints.
class RunningMeans {
 public:
  void add(const std::string& key, double value);
  double mean(const std::string& key) const;
  std::string to_json() const;
  static RunningMeans from_json(const std::string& text);

 private:
  std::map<std::string, std::pair<double, int64_t>> sums_;
};

/// steps.csv (per step), metrics.csv and metrics.jsonl (per epoch) in a run folder. On
/// construction, rows past the checkpoint (step > `step`, epoch > `epoch`) are dropped, so a
/// resumed run never duplicates lines written after the last checkpoint.
class RunLog {
 public:
  RunLog(const std::string& folder, int64_t step, int64_t epoch,
         std::vector<std::string> step_columns);
  void step(const std::vector<std::string>& values);
  void epoch(const nlohmann::json& metrics);
  void flush();

 private:
  std::string folder_;
  std::ofstream steps_;
  std::vector<std::string> metric_columns_;
};

/// "%.6g" of a number.
std::string format_number(double v);

}  // namespace wristssl::train
