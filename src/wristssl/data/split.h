#pragma once
// Train / validation / test splits grouped (no group in two splits), stratified by label and seeded,
// saved to a file so every later command reuses the same split.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "wristssl/data/dataset.h"

namespace wristssl::data {

enum class Part : int8_t { kTrain = 0, kVal = 1, kTest = 2 };

/// "train", "val", "test".
const char* part_name(Part part);

struct SplitOptions {
  double val_fraction = 0.15;
  double test_fraction = 0.15;
  uint64_t seed = 0;
};

/// One part per record of the dataset it was made for.
struct Split {
  SplitOptions options;
  std::vector<Part> parts;  // parts[i] for dataset.records[i]

  /// Indices of the records in `part`.
  std::vector<int> indices(Part part) const;
};

/// Assigns whole groups to parts so that each part's share of every label is close to its target
/// fraction. Deterministic for a given seed and dataset.
Split make_split(const Dataset& dataset, const SplitOptions& options);

/// Assigns whole groups of `indices` to bins (one bin per target share) so that every bin's share of every
/// label is close to its target; returns the bin of each index, in the order of `indices`. Deterministic
/// for a given seed. make_split, make_folds and fold_split are built on it.
std::vector<int> assign_groups(const Dataset& dataset, const std::vector<int>& indices,
                               const std::vector<double>& targets, uint64_t seed);

/// Grouped, stratified k-fold assignment: the fold (0 .. k-1) of every record; no group spans two folds.
std::vector<int> make_folds(const Dataset& dataset, int k, uint64_t seed);

/// The split of cross-validation fold `fold`: its records are the test part, and validation (grouped,
/// stratified, about `val_fraction` of the rest) is carved from the other folds, the remainder training.
Split fold_split(const Dataset& dataset, const std::vector<int>& folds, int fold, double val_fraction, uint64_t seed);

/// A grouped, stratified, seeded subset of `indices` holding about `fraction` of them (at least one
/// group per label present). Used for label-fraction experiments.
std::vector<int> subsample_groups(const Dataset& dataset, const std::vector<int>& indices, double fraction,
                                  uint64_t seed);

/// Writes the split as JSON (path, group, label, part per record), atomically.
void save_split(const std::string& path, const Dataset& dataset, const Split& split);

/// Reads a split file and maps it onto `dataset`; throws naming the file when records differ
/// (a path missing from the file, a changed label or group).
Split load_split(const std::string& path, const Dataset& dataset);

/// The part of every path in a split file, keyed by canonical_path (for data sets that overlap the split's).
std::map<std::string, Part> read_split_parts(const std::string& path);

/// The absolute, normalised form of a path (symlinks resolved where the file exists).
std::string canonical_path(const std::string& path);

}  // namespace wristssl::data
