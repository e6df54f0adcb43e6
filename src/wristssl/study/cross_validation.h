#pragma once
// The study's cross-validation: grouped, stratified folds per seed, written once, and the
// classifier runs (seeds x folds x label fractions x arms), each resumable, a finished one never
// redone.

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "wristssl/data/dataset.h"
#include "wristssl/study/config.h"

namespace wristssl::study {

/// One scored test image of one classifier run.
struct Scored {
  std::string path, group;
  int label = 0;
  double score = 0;  // the model's log-odds (margin): AUROC and DeLong use its order
};

/// One run's result (OUT/cv/ARM/seedS-foldF-Ppct/done.json): its test AUROC, the fold's scores and
/// timings.
using RunKey = std::tuple<std::string, double, uint64_t, int>;  // arm, fraction, seed, fold
using CvResults = std::map<RunKey, nlohmann::json>;

/// The accumulated wall time per stage, kept across invocations (a resumed study adds to it).
class Timing {
 public:
  explicit Timing(std::string path);
  void add(const std::string& stage, double seconds);
  const nlohmann::json& all() const { return j_; }

 private:
  std::string path_;
  nlohmann::json j_ = nlohmann::json::object();
};

/// "10pct" for 0.1: the fraction's part of a run folder's name.
std::string percent_name(double fraction);

/// OUT/splits/seedS-foldF.json: the split file of fold `fold` of seed `seed`.
std::string fold_split_path(const StudyConfig& config, uint64_t seed, int fold);

/// Per seed: whole groups per fold, stratified by label; writes OUT/splits/folds-seedS.json and
/// each fold's split file (test = the fold, validation carved from the others, grouped) unless it
/// exists.
void write_folds(const StudyConfig& config, const data::Dataset& labelled);

/// Indices of `pool` records that may be pretrained on: not a labelled image (same canonical path)
/// and not in a group that holds one (groups compared by name when both datasets have a group
/// column). Writes the names of the excluded records' reasons to `excluded` when given.
std::vector<int> pretraining_pool(const data::Dataset& pool, const data::Dataset& labelled,
                                  bool compare_groups,
                                  std::vector<std::string>* excluded = nullptr);

/// The classifier options of `arm` at `fraction` in folder `dir` on split `split` with seed `seed`:
/// the arm's recipe on the study's data, cache and image size, its epochs after the epochs rule,
/// and the backbone of its pretraining (`backbones`: pretraining name -> backbone.pt).
train::ClassifierOptions arm_run_options(const StudyConfig& config, const Arm& arm,
                                         const std::string& dir, const std::string& split,
                                         double fraction, uint64_t seed,
                                         const std::map<std::string, std::string>& backbones,
                                         int threads);

/// Removes a finished run's checkpoint: it only served to resume the run, whose weights are in
/// model.pt and the bundle. About 90 MB each (weights and momentum), 5.4 GB over the 60 runs of
/// configs/study_fracatlas.json (docs/experiments.md).
void drop_checkpoint(const std::string& dir);

/// Seconds since `t0`.
double seconds_since(std::chrono::steady_clock::time_point t0);

/// Every cross-validation run, resuming: a run with done.json is read, not redone. Throws on a stop
/// (SIGINT, SIGTERM) after the run in progress has checkpointed: rerunning the command continues.
CvResults run_cross_validation(const StudyConfig& config,
                               const std::map<std::string, std::string>& backbones, int threads,
                               Timing& timing);

}  // namespace wristssl::study
