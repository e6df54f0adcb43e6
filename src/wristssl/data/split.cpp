#include "wristssl/data/split.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <unordered_map>

#include "wristssl/data/augment.h"
#include "wristssl/util/fs.h"

namespace wristssl::data {
namespace {

constexpr int kSplitFileVersion = 1;

struct Group {
  std::vector<int> members;
  std::map<int, int> label_counts;
};

// Groups in a seeded order: shuffled, then largest first (big groups are hardest to place).
std::vector<Group> ordered_groups(const Dataset& ds, const std::vector<int>& indices, uint64_t seed) {
  std::unordered_map<std::string, int> index;
  std::vector<Group> groups;
  for (int i : indices) {
    const Record& r = ds.records[i];
    auto [it, inserted] = index.emplace(r.group, static_cast<int>(groups.size()));
    if (inserted) groups.emplace_back();
    groups[it->second].members.push_back(i);
    ++groups[it->second].label_counts[r.label];
  }
  std::mt19937_64 rng(seed);
  std::shuffle(groups.begin(), groups.end(), rng);
  std::stable_sort(groups.begin(), groups.end(),
                   [](const Group& a, const Group& b) { return a.members.size() > b.members.size(); });
  return groups;
}

}  // namespace

const char* part_name(Part part) {
  switch (part) {
    case Part::kTrain: return "train";
    case Part::kVal: return "val";
    case Part::kTest: return "test";
  }
  return "?";
}

std::vector<int> Split::indices(Part part) const {
  std::vector<int> out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i] == part) out.push_back(static_cast<int>(i));
  }
  return out;
}

std::vector<int> assign_groups(const Dataset& ds, const std::vector<int>& indices, const std::vector<double>& targets,
                               uint64_t seed) {
  std::map<int, int> totals;
  for (int i : indices) ++totals[ds.records[i].label];
  const std::vector<Group> groups = ordered_groups(ds, indices, seed);
  std::vector<std::map<int, double>> current(targets.size());
  std::unordered_map<int, int> bin_of;
  for (const Group& g : groups) {
    // Squared shortfall from the target share, per label and bin, relative to the label's total.
    size_t best = 0;
    double best_delta = 0;
    for (size_t s = 0; s < targets.size(); ++s) {
      double delta = 0;
      for (const auto& [label, n] : g.label_counts) {
        const double goal = targets[s] * totals.at(label);
        const double before = current[s][label] - goal, after = before + n;
        delta += (after * after - before * before) / (double(totals.at(label)) * totals.at(label));
      }
      if (s == 0 || delta < best_delta) {
        best = s;
        best_delta = delta;
      }
    }
    for (const auto& [label, n] : g.label_counts) current[best][label] += n;
    for (int i : g.members) bin_of[i] = static_cast<int>(best);
  }
  std::vector<int> out;
  out.reserve(indices.size());
  for (int i : indices) out.push_back(bin_of.at(i));
  return out;
}

Split make_split(const Dataset& ds, const SplitOptions& o) {
  if (o.val_fraction < 0 || o.test_fraction < 0 || o.val_fraction + o.test_fraction >= 1) {
    throw std::runtime_error("split fractions val=" + std::to_string(o.val_fraction) +
                             " test=" + std::to_string(o.test_fraction) + " must be >= 0 and sum below 1");
  }
  std::vector<int> all(ds.records.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  const std::vector<int> bins =
      assign_groups(ds, all, {1.0 - o.val_fraction - o.test_fraction, o.val_fraction, o.test_fraction}, o.seed);
  Split split;
  split.options = o;
  split.parts.resize(ds.records.size());
  for (size_t i = 0; i < all.size(); ++i) split.parts[i] = static_cast<Part>(bins[i]);
  return split;
}

std::vector<int> make_folds(const Dataset& ds, int k, uint64_t seed) {
  if (k < 2) throw std::runtime_error("cross-validation needs at least 2 folds, not " + std::to_string(k));
  std::vector<int> all(ds.records.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  return assign_groups(ds, all, std::vector<double>(k, 1.0 / k), seed);
}

Split fold_split(const Dataset& ds, const std::vector<int>& folds, int fold, double val_fraction, uint64_t seed) {
  if (folds.size() != ds.records.size()) throw std::runtime_error("fold_split: one fold per record is needed");
  if (val_fraction <= 0 || val_fraction >= 1) {
    throw std::runtime_error("validation fraction " + std::to_string(val_fraction) + " must be in (0, 1)");
  }
  std::vector<int> rest;
  Split split;
  split.options = {val_fraction, 0.0, seed};
  split.parts.assign(ds.records.size(), Part::kTest);
  for (size_t i = 0; i < folds.size(); ++i) {
    if (folds[i] != fold) rest.push_back(static_cast<int>(i));
  }
  const std::vector<int> bins = assign_groups(ds, rest, {1.0 - val_fraction, val_fraction}, mix_seed(seed, static_cast<uint64_t>(fold), 0xF01DULL));
  for (size_t j = 0; j < rest.size(); ++j) split.parts[rest[j]] = bins[j] == 0 ? Part::kTrain : Part::kVal;
  split.options.test_fraction = 1.0 - static_cast<double>(rest.size()) / std::max<size_t>(1, ds.records.size());
  return split;
}

std::vector<int> subsample_groups(const Dataset& ds, const std::vector<int>& indices, double fraction,
                                  uint64_t seed) {
  if (fraction <= 0 || fraction > 1) {
    throw std::runtime_error("label fraction " + std::to_string(fraction) + " must be in (0, 1]");
  }
  if (fraction == 1) return indices;
  std::map<int, int> totals;
  for (int i : indices) ++totals[ds.records[i].label];
  std::map<int, double> taken;
  std::vector<int> out;
  for (const Group& g : ordered_groups(ds, indices, seed ^ 0x5eed5eedULL)) {
    // A group joins when it moves every label it holds no further past its quota than it was short.
    bool take = false;
    for (const auto& [label, n] : g.label_counts) {
      const double quota = std::max(1.0, fraction * totals[label]);
      if (taken[label] < quota && taken[label] + n <= quota + 0.5 * n) take = true;
    }
    if (!take) continue;
    for (const auto& [label, n] : g.label_counts) taken[label] += n;
    out.insert(out.end(), g.members.begin(), g.members.end());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void save_split(const std::string& path, const Dataset& ds, const Split& split) {
  nlohmann::json j;
  j["version"] = kSplitFileVersion;
  j["seed"] = split.options.seed;
  j["val_fraction"] = split.options.val_fraction;
  j["test_fraction"] = split.options.test_fraction;
  j["source"] = ds.source;
  j["class_names"] = ds.class_names;
  auto& records = j["records"] = nlohmann::json::array();
  for (size_t i = 0; i < ds.records.size(); ++i) {
    const Record& r = ds.records[i];
    records.push_back({{"path", r.path}, {"group", r.group}, {"label", r.label},
                       {"part", part_name(split.parts[i])}});
  }
  util::atomic_write(path, j.dump(1));
}

Split load_split(const std::string& path, const Dataset& ds) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(util::read_text(path));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": not a split file: " + e.what());
  }
  if (j.value("version", 0) != kSplitFileVersion || !j.contains("records")) {
    throw std::runtime_error(path + ": not a wristssl split file (version " + std::to_string(kSplitFileVersion) +
                             ")");
  }
  std::unordered_map<std::string, const nlohmann::json*> by_path;
  for (const auto& r : j["records"]) by_path[r.at("path").get<std::string>()] = &r;
  Split split;
  split.options.seed = j.value("seed", uint64_t{0});
  split.options.val_fraction = j.value("val_fraction", 0.0);
  split.options.test_fraction = j.value("test_fraction", 0.0);
  split.parts.resize(ds.records.size());
  for (size_t i = 0; i < ds.records.size(); ++i) {
    const Record& r = ds.records[i];
    const auto it = by_path.find(r.path);
    if (it == by_path.end()) {
      throw std::runtime_error(path + ": the data has " + r.path +
                               ", which the split file does not list; the data changed since the split was "
                               "made (delete the split file to make a new one)");
    }
    const auto& e = *it->second;
    if (e.at("label").get<int>() != r.label || e.at("group").get<std::string>() != r.group) {
      throw std::runtime_error(path + ": label or group of " + r.path + " changed since the split was made");
    }
    const std::string part = e.at("part").get<std::string>();
    split.parts[i] = part == "train" ? Part::kTrain : part == "val" ? Part::kVal : Part::kTest;
  }
  return split;
}

std::string canonical_path(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path p = std::filesystem::weakly_canonical(path, ec);
  return ec ? std::filesystem::absolute(path).lexically_normal().string() : p.string();
}

std::map<std::string, Part> read_split_parts(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(util::read_text(path));
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": not a split file: " + e.what());
  }
  if (j.value("version", 0) != kSplitFileVersion || !j.contains("records")) {
    throw std::runtime_error(path + ": not a wristssl split file");
  }
  std::map<std::string, Part> parts;
  for (const auto& r : j["records"]) {
    const std::string part = r.at("part").get<std::string>();
    parts[canonical_path(r.at("path").get<std::string>())] =
        part == "train" ? Part::kTrain : part == "val" ? Part::kVal : Part::kTest;
  }
  return parts;
}

}  // namespace wristssl::data
