#pragma once
// The fracture classifier: a ResNet-18 backbone (SimCLR-pretrained or random) and a linear head.

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "wristssl/models/resnet.h"

namespace wristssl::models {

/// x [N, 1, H, W] -> logits [N, num_classes]; backbone names match SimCLR's "backbone.*".
class ClassifierImpl : public torch::nn::Cloneable<ClassifierImpl> {
 public:
  explicit ClassifierImpl(int64_t num_classes = 2);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);
  /// Freezes (or unfreezes) the backbone's parameters.
  void freeze_backbone(bool frozen);

  int64_t num_classes;
  ResNet18 backbone{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(Classifier);

}  // namespace wristssl::models
