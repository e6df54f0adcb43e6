#pragma once
// `wristssl tune`: measures the training step on this machine for each compute configuration (threads x
// precision) and stores the fastest as this machine's defaults (util/tuned.h). Long pretraining runs on an
// untuned machine run it themselves first.

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "wristssl/models/simclr.h"

namespace wristssl::train {

/// The SimCLR training step that `tune` and bench/bench_simclr.cpp time: ResNet-18 with the MLP head (1 input
/// channel), NT-Xent at temperature 0.5, SGD (lr 0.01, momentum 0.9, weight decay 1e-4), optionally bf16 autocast
/// and channels-last.
struct TimedSimclrStep {
  TimedSimclrStep(bool bf16, bool channels_last);
  /// One step on the two views [B, 1, H, W]; waits for its loss.
  void operator()(const torch::Tensor& v1, const torch::Tensor& v2);

  models::SimCLR model{models::ProjectionHeadOptions(), 1};
  torch::optim::SGD opt{model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(1e-4)};
  bool bf16, channels_last;
};

struct TuneOptions {
  int size = 224;   // view side of the measured step
  int batch = 16;   // images per step (2 views each)
  int steps = 2;    // timed steps per configuration, after one untimed
  bool store = true;
};

/// Measures every configuration, prints a table to stderr, stores the choice unless !store, and returns the
/// stored entry: {"date", "size", "batch", "steps", "tried": [{threads, precision, views_per_s}], "choice"}.
/// Leaves LibTorch's thread count at the chosen value.
nlohmann::json run_tune(const TuneOptions& options);

/// Whether a pretraining run of this size on an untuned machine should tune first: on CPU, with the defaults
/// (threads 0, precision auto), WRISTSSL_TUNE not "off", and at least `min_views` augmented views to train on.
bool should_tune_first(int threads, const std::string& precision, double views, double min_views = 100000);

}  // namespace wristssl::train
