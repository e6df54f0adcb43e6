#include "wristssl/train/schedule.h"

#include <torch/optim/sgd.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace wristssl::train {

double LrSchedule::at(int64_t step) const {
  if (warmup_steps > 0 && step < warmup_steps)
    return peak * static_cast<double>(step + 1) / warmup_steps;
  const double span = std::max<int64_t>(1, total_steps - warmup_steps);
  const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
  return min + 0.5 * (peak - min) * (1 + std::cos(M_PI * progress));
}

void set_lr(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups())
    static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
}

void apply_lars(torch::optim::Optimizer& optimizer, double weight_decay, double eta) {
  torch::NoGradGuard no_grad;
  for (auto& group : optimizer.param_groups()) {
    for (auto& p : group.params()) {
      if (!p.grad().defined() || p.dim() <= 1) continue;
      torch::Tensor g = p.grad() + weight_decay * p;
      const double wn = p.norm().item<double>(), gn = g.norm().item<double>();
      const double trust = (wn > 0 && gn > 0) ? eta * wn / gn : 1.0;
      p.mutable_grad() = g * trust;
    }
  }
}

}  // namespace wristssl::train
