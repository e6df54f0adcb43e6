#pragma once
// One checkpoint file per run, written atomically (temp file, fsync, rename) and checked when read:
// a magic, a format version and the SHA-256 of the payload guard against damaged or foreign files.

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <functional>
#include <stdexcept>
#include <string>

namespace wristssl::train {

/// A checkpoint that is damaged, foreign (not ours, or another kind of run) or from another version.
class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CheckpointState {
  std::string kind;            // "simclr", "classifier": a run refuses a checkpoint of another kind
  std::string config_json;     // the run's resolved options
  int64_t epoch = 0;           // completed epochs
  int64_t batch_in_epoch = 0;  // > 0: saved mid-epoch (on a signal); resume at this batch
  int64_t step = 0;            // optimizer steps so far
  std::string extra_json;      // trainer-specific state (partial-epoch sums, best score, ...)
};

/// Saves module parameters and buffers, the optimizer state, `state` and LibTorch's CPU generator.
void save_checkpoint(const std::string& path, torch::nn::Module& module, torch::optim::Optimizer* optimizer,
                     const CheckpointState& state);

/// Loads what save_checkpoint wrote into `module` and `optimizer` (may be null). Throws CheckpointError
/// naming the file when it is damaged, foreign, or of a kind other than `expected_kind`.
CheckpointState load_checkpoint(const std::string& path, torch::nn::Module& module, torch::optim::Optimizer* optimizer,
                                const std::string& expected_kind);

/// Saves only module weights (for handing a backbone to the next stage), with the same integrity guard.
void save_weights(const std::string& path, torch::nn::Module& module, const std::string& kind,
                  const std::string& config_json);

/// Loads weights saved by save_weights; returns the config JSON stored with them.
std::string load_weights(const std::string& path, torch::nn::Module& module, const std::string& expected_kind);

/// SHA-256 over the names and bytes of every parameter and buffer: equal fingerprints, equal weights.
std::string weights_fingerprint(torch::nn::Module& module);

/// When an epoch ends in a checkpoint, for pretraining and the classifier alike: after every epoch
/// unless epochs are so short that saving would cost more than `share` of the training time; then
/// once the training since the last save is 1 / `share` times the last save's duration. The first
/// save is always due (nothing timed yet); callers also save after the last epoch and on a stop.
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

}  // namespace wristssl::train
