#include "wristssl/models/classifier.h"

namespace wristssl::models {

ClassifierImpl::ClassifierImpl(int64_t n) : num_classes(n) { reset(); }

void ClassifierImpl::reset() {
  TORCH_CHECK(num_classes >= 2, "a classifier needs at least 2 classes, got ", num_classes);
  backbone = register_module("backbone", ResNet18(ResNetOptions().in_channels(1).num_classes(0)));
  head = register_module("head", torch::nn::Linear(ResNet18Impl::kFeatureDim, num_classes));
}

torch::Tensor ClassifierImpl::forward(const torch::Tensor& x) { return head(backbone->features(x)); }

void ClassifierImpl::freeze_backbone(bool frozen) {
  for (auto& p : backbone->parameters()) p.set_requires_grad(!frozen);
}

}  // namespace wristssl::models
