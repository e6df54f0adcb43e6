#pragma once
// SimCLR: a ResNet-18 backbone and a projection head; the contrastive loss is applied to the head's
// output, and the backbone's 512-d features are what the classifier later uses.

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include <string>

#include "wristssl/models/resnet.h"

namespace wristssl::models {

struct ProjectionHeadOptions {
  TORCH_ARG(std::string, kind) = "mlp";  // "mlp": 512-512-128 with ReLU (SimCLR); "linear": the paper's
  TORCH_ARG(int64_t, in_dim) = 512;
  TORCH_ARG(int64_t, hidden_dim) = 512;
  TORCH_ARG(int64_t, out_dim) = 128;
};

/// h [N, in_dim] -> z [N, out_dim]; parameter names net.0 / net.2 (mlp) or net.0 (linear).
class ProjectionHeadImpl : public torch::nn::Cloneable<ProjectionHeadImpl> {
 public:
  explicit ProjectionHeadImpl(ProjectionHeadOptions options = {});
  void reset() override;
  torch::Tensor forward(const torch::Tensor& h);

  ProjectionHeadOptions options;
  torch::nn::Sequential net{nullptr};
};
TORCH_MODULE(ProjectionHead);

/// backbone (ResNet-18 without fc) + projection head.
class SimCLRImpl : public torch::nn::Cloneable<SimCLRImpl> {
 public:
  explicit SimCLRImpl(ProjectionHeadOptions head = {}, int64_t in_channels = 1);
  void reset() override;
  /// x [N, 1, H, W] -> z [N, out_dim] (not normalised; the loss normalises).
  torch::Tensor forward(const torch::Tensor& x);

  ProjectionHeadOptions head_options;
  int64_t in_channels;
  ResNet18 backbone{nullptr};
  ProjectionHead head{nullptr};
};
TORCH_MODULE(SimCLR);

}  // namespace wristssl::models
