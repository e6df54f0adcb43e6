#include "wristssl/train/run_log.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "wristssl/util/fs.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wristssl::train {

void RunningMeans::add(const std::string& key, double value) {
  auto& s = sums_[key];
  s.first += value;
  s.second += 1;
}

double RunningMeans::mean(const std::string& key) const {
  const auto it = sums_.find(key);
  return it == sums_.end() || it->second.second == 0 ? 0.0 : it->second.first / it->second.second;
}

std::string RunningMeans::to_json() const {
  json j = json::object();
  for (const auto& [k, s] : sums_) j[k] = {s.first, s.second};
  return j.dump();
}

RunningMeans RunningMeans::from_json(const std::string& text) {
  RunningMeans r;
  if (text.empty()) return r;
  const json parsed = json::parse(text);  // named: items() of a temporary would dangle in the loop
  for (const auto& [k, v] : parsed.items()) r.sums_[k] = {v[0].get<double>(), v[1].get<int64_t>()};
  return r;
}

std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

namespace {

// Keeps the header and the rows whose first column (a number) is <= limit.
void truncate_csv(const std::string& path, int64_t limit) {
  if (!fs::exists(path)) return;
  std::istringstream in(util::read_text(path));
  std::string line, out;
  bool header = true;
  while (std::getline(in, line)) {
    if (header || (!line.empty() && std::stoll(line.substr(0, line.find(','))) <= limit))
      out += line + "\n";
    header = false;
  }
  util::atomic_write(path, out);
}

void truncate_jsonl(const std::string& path, int64_t max_epoch) {
  if (!fs::exists(path)) return;
  std::istringstream in(util::read_text(path));
  std::string line, out;
  while (std::getline(in, line)) {
    if (!line.empty() && json::parse(line).value("epoch", int64_t{0}) <= max_epoch)
      out += line + "\n";
  }
  util::atomic_write(path, out);
}

}  // namespace

RunLog::RunLog(const std::string& folder, int64_t step, int64_t epoch,
               std::vector<std::string> step_columns)
    : folder_(folder) {
  const std::string steps = folder + "/steps.csv";
  truncate_csv(steps, step);
  truncate_csv(folder + "/metrics.csv", epoch);
  truncate_jsonl(folder + "/metrics.jsonl", epoch);
  const bool fresh = !fs::exists(steps) || fs::file_size(steps) == 0;
  steps_.open(steps, std::ios::app);
  if (!steps_) throw std::runtime_error("cannot write " + steps);
  if (fresh) {
    for (size_t i = 0; i < step_columns.size(); ++i) steps_ << (i ? "," : "") << step_columns[i];
    steps_ << "\n";
  }
}

void RunLog::step(const std::vector<std::string>& values) {
  for (size_t i = 0; i < values.size(); ++i) steps_ << (i ? "," : "") << values[i];
  steps_ << "\n";
}

void RunLog::epoch(const json& metrics) {
  flush();
  // metrics.jsonl: one JSON object per epoch; metrics.csv: the scalar columns of the first row
  // written.
  const std::string jsonl = folder_ + "/metrics.jsonl";
  std::string text = fs::exists(jsonl) ? util::read_text(jsonl) : "";
  util::atomic_write(jsonl, text + metrics.dump() + "\n");
  const std::string csv = folder_ + "/metrics.csv";
  std::string table = fs::exists(csv) ? util::read_text(csv) : "";
  if (table.empty()) {
    metric_columns_.clear();
    for (const auto& [k, v] : metrics.items()) {
      if (v.is_number() || v.is_string()) metric_columns_.push_back(k);
    }
    std::sort(metric_columns_.begin(), metric_columns_.end(),
              [](const std::string& a, const std::string& b) {
                return (a == "epoch") > (b == "epoch") || (a != "epoch" && b != "epoch" && a < b);
              });
    for (size_t i = 0; i < metric_columns_.size(); ++i)
      table += (i ? "," : "") + metric_columns_[i];
    table += "\n";
  } else if (metric_columns_.empty()) {
    std::istringstream head(table.substr(0, table.find('\n')));
    for (std::string c; std::getline(head, c, ',');) metric_columns_.push_back(c);
  }
  for (size_t i = 0; i < metric_columns_.size(); ++i) {
    const json v = metrics.value(metric_columns_[i], json());
    table += (i ? "," : "") + (v.is_number()   ? format_number(v.get<double>())
                               : v.is_string() ? v.get<std::string>()
                                               : "");
  }
  util::atomic_write(csv, table + "\n");
}

void RunLog::flush() { steps_.flush(); }

}  // namespace wristssl::train
