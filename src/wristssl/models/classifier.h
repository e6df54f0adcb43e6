#pragma once
// The fracture classifier: a ResNet-18 backbone (SimCLR-pretrained or random) and a linear head.

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "wristssl/models/bundle.h"
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

/// Every parameter and running statistic of `model` as float32 tensors named as in the module
/// ("backbone.conv1.weight", ..., "head.bias"); batch-norm batch counters are left out.
std::vector<NamedTensor> bundle_tensors(ClassifierImpl& model);

/// Copies a bundle's tensors into `model`: every tensor bundle_tensors would write must be there with
/// its shape, and no other. Throws BundleError("tensors") naming the first that is missing, extra or
/// of another shape.
void load_bundle_tensors(ClassifierImpl& model, const Bundle& bundle);

/// A classifier built from a verified bundle (architecture "resnet18", 1 input channel), in eval mode.
Classifier classifier_from_bundle(const Bundle& bundle);

}  // namespace wristssl::models
