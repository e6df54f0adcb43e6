#pragma once
// The fracture classifier: a ResNet-18 backbone (SimCLR-pretrained or random) and a linear head.

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "wristssl/models/bundle.h"
#include "wristssl/models/resnet.h"

namespace wristssl::models {

/// How the last feature map [N, 512, h, w] becomes an image's logits.
///  - "mean": average over locations, then the linear head (the paper's ResNet; any class count);
///  - "lse": the head applied at every location gives a fracture log-odds map m = z1 - z0
///    [N, h, w] (the margin map), pooled by log-sum-exp, M = (1/r) log mean exp(r m), so that a
///    small fracture on a large image is not averaged away; logits [0, M]. r -> 0 gives back the
///    mean's margin, r -> infinity the maximum. Binary classifiers only. The pooling is part of
///    the model: the bundle records it and every path that scores an image applies it.
struct Pooling {
  std::string kind = "mean";
  double sharpness = 2.0;  // r of "lse"
  bool operator==(const Pooling& o) const { return kind == o.kind && sharpness == o.sharpness; }
  /// {"kind": ..., "sharpness": ...}; from_json reads it back (absent: mean) and throws on other
  /// kinds.
  nlohmann::json to_json() const;
  static Pooling from_json(const nlohmann::json& j);
};

/// x [N, 1, H, W] -> logits [N, num_classes]; backbone names match SimCLR's "backbone.*".
class ClassifierImpl : public torch::nn::Cloneable<ClassifierImpl> {
 public:
  explicit ClassifierImpl(int64_t num_classes = 2, Pooling pooling = {});
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);
  /// The logits of a feature map [N, 512, h, w] under the model's pooling.
  torch::Tensor logits_from_map(const torch::Tensor& feature_map);
  /// The per-location fracture log-odds [N, h, w] (binary models): the head's margin at each
  /// location.
  torch::Tensor margin_map(const torch::Tensor& feature_map);
  Pooling pooling;
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
