#pragma once
// The learning-rate schedule (warmup, cosine) and LARS, shared by pretraining and the classifier.

#include <torch/optim/optimizer.h>

#include <cstdint>

namespace wristssl::train {

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

}  // namespace wristssl::train
