#pragma once
// Pieces every trainer shares: option (de)serialisation, the learning-rate schedule, LARS, run logs
// that survive a resume, channels-last conversion and the kNN feature monitor.

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "wristssl/data/dataset.h"
#include "wristssl/data/pixel_source.h"
#include "wristssl/models/resnet.h"

namespace wristssl::train {

nlohmann::json data_options_to_json(const data::DatasetOptions& o);
void data_options_from_json(const nlohmann::json& j, data::DatasetOptions& o);

/// Linear warmup to `peak` over `warmup_steps`, then cosine decay to `min` at `total_steps`.
struct LrSchedule {
  double peak = 0.01, min = 0.0;
  int64_t warmup_steps = 0, total_steps = 1;
  /// Learning rate for optimizer step `step` (0-based).
  double at(int64_t step) const;
};

/// Sets the learning rate of every parameter group of an SGD optimizer.
void set_lr(torch::optim::Optimizer& optimizer, double lr);

/// LARS (You et al. 2017): for weight tensors (dim > 1), g <- eta * |w| / |g + wd w| * (g + wd w);
/// biases and batch-norm parameters are left without weight decay or adaptation.
void apply_lars(torch::optim::Optimizer& optimizer, double weight_decay, double eta = 0.001);

/// Converts 4-D parameters and buffers to channels-last memory (in place, keeping identities).
void to_channels_last(torch::nn::Module& module);

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

/// Distributed: refuses, on every rank and naming the option, ranks whose `config` differs on `keys` or whose
/// training set has another size (they would train different models). Nothing without a group.
void require_same_run(const nlohmann::json& config, const std::vector<std::string>& keys, size_t training_images);
/// The same for a command's array of run keys (kRunKeys), as check_same_run takes them.
template <size_t N>
void require_same_run(const nlohmann::json& config, const char* const (&keys)[N], size_t training_images) {
  require_same_run(config, std::vector<std::string>(std::begin(keys), std::end(keys)), training_images);
}

/// Throws naming the checkpoint and each differing option when `saved` and `now` differ on `keys`. A key
/// that a checkpoint lacks (added later) matches when `now` holds its default (`defaults`, the options'
/// JSON with nothing set), which keeps the behaviour the checkpoint was made with.
template <size_t N>
void check_same_run(const nlohmann::json& saved, const nlohmann::json& now, const char* const (&keys)[N],
                    const std::string& checkpoint, const nlohmann::json& defaults = nlohmann::json::object()) {
  std::string diff;
  for (const char* k : keys) {
    // Keys added after a checkpoint was made hold their old meaning there: sync_bn off, world_size 1, or
    // the option's default.
    const nlohmann::json v = now.value(k, nlohmann::json());
    if (!saved.contains(k) && (v == false || v == 1 || (defaults.contains(k) && defaults[k] == v))) continue;
    if (saved.value(k, nlohmann::json()) != v) {
      diff += std::string(diff.empty() ? "" : ", ") + k + ": " + saved.value(k, nlohmann::json()).dump() + " -> " +
              now.value(k, nlohmann::json()).dump();
    }
  }
  if (!diff.empty()) {
    throw std::runtime_error(checkpoint + " was made with other options (" + diff +
                             "); use another --out, or delete the checkpoint to start over");
  }
}

/// steps.csv (per step), metrics.csv and metrics.jsonl (per epoch) in a run folder. On construction,
/// rows past the checkpoint (step > `step`, epoch > `epoch`) are dropped, so a resumed run never
/// duplicates lines written after the last checkpoint.
class RunLog {
 public:
  RunLog(const std::string& folder, int64_t step, int64_t epoch, std::vector<std::string> step_columns);
  void step(const std::vector<std::string>& values);
  void epoch(const nlohmann::json& metrics);
  void flush();

 private:
  std::string folder_;
  std::ofstream steps_;
  std::vector<std::string> metric_columns_;
};

/// When an epoch ends in a checkpoint, for pretraining and the classifier alike: after every epoch unless
/// epochs are so short that saving would cost more than `share` of the training time; then once the
/// training since the last save is 1 / `share` times the last save's duration. The first save is always
/// due (nothing timed yet); callers also save after the last epoch and on a stop.
class CheckpointPacer {
 public:
  explicit CheckpointPacer(double share) : share_(share) {}
  /// Adds an epoch's training time.
  void trained(double seconds) { since_save_ += seconds; }
  bool due() const { return save_seconds_ <= share_ * since_save_; }
  /// Runs `write` (the save) and times it.
  void save(const std::function<void()>& write);
  /// How long the last save took.
  double save_seconds() const { return save_seconds_; }

 private:
  double share_;
  double since_save_ = 0, save_seconds_ = 0;
};

/// "%.6g" of a number.
std::string format_number(double v);

struct KnnSets {
  std::vector<int> memory, query;
};
/// At most `max_images` in all (3/4 memory, 1/4 queries), evenly spaced, so the monitor is cheap.
KnnSets cap_knn_sets(const std::vector<int>& memory, const std::vector<int>& query, int max_images);

/// How images reach a network at inference: the whole image resized to `out_size` (no augmentation),
/// normalised, on `device`, under bf16 autocast when asked.
struct InferenceInput {
  int out_size = 224;
  float mean = 0.5f, stdev = 0.25f;
  c10::Device device = c10::kCPU;
  bool bf16 = false;
  bool channels_last = false;
  int batch_size = 64;
  bool shard = false;  // distributed: each rank runs its share of the items, the results are gathered (every
                       // rank must call infer with the same items)
};

/// Runs `fn` on batches of `items` in order, without gradients; returns its outputs concatenated along
/// dimension 0 as float32 on the CPU. Putting the network in eval mode is the caller's choice. With
/// `in.shard` in a distributed job, rank r runs items r, r + W, ... and every rank gets all the rows.
torch::Tensor infer(const data::PixelSource& pixels, const std::vector<int>& items, const InferenceInput& in,
                    const std::function<torch::Tensor(const torch::Tensor&)>& fn);

/// L2-normalised [N, 512] backbone features of `items` (eval mode).
torch::Tensor embed(models::ResNet18Impl& backbone, const data::PixelSource& pixels, const std::vector<int>& items,
                    const InferenceInput& in);

/// Weighted kNN (cosine similarity, k neighbours, votes exp(s / 0.07)) of `query` against `memory` labels:
/// the standard monitor of self-supervised features. Accuracy, and on two classes the AUROC of the positive
/// class's share of the votes (NaN otherwise): on imbalanced binary data accuracy sits at the majority share
/// and says nothing, the AUROC does. Leaves the backbone in eval mode.
struct KnnResult {
  double accuracy = 0;
  double auroc = std::numeric_limits<double>::quiet_NaN();
};
KnnResult knn_monitor(models::ResNet18Impl& backbone, const data::PixelSource& pixels, const std::vector<int>& memory,
                      const std::vector<int>& query, const std::vector<int>& labels, int k, const InferenceInput& in);

}  // namespace wristssl::train
