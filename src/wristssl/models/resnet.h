#pragma once
// ResNet-18 with torchvision's structure and parameter names (conv1, bn1, layer1.0.conv1, ...,
// layer1.0.downsample.0, fc), so weights move between C++ and Python state dicts.

#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <string>

namespace wristssl::models {

/// Two 3x3 convolutions with a residual connection (torchvision BasicBlock).
class BasicBlockImpl : public torch::nn::Cloneable<BasicBlockImpl> {
 public:
  BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride);
  void reset() override;
  /// x: [N, in_planes, H, W] -> [N, planes, H / stride, W / stride]
  torch::Tensor forward(const torch::Tensor& x);

  int64_t in_planes_, planes_, stride_;
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BasicBlock);

struct ResNetOptions {
  TORCH_ARG(int64_t, in_channels) = 1;  // radiographs are grey
  TORCH_ARG(int64_t, num_classes) = 0;  // 0: no fc (a backbone returning 512-d features)
};

/// ResNet-18: [N, C, H, W] -> features [N, 512] (and logits [N, num_classes] when it has an fc).
class ResNet18Impl : public torch::nn::Cloneable<ResNet18Impl> {
 public:
  explicit ResNet18Impl(ResNetOptions options = {});
  void reset() override;
  /// Global-average-pooled features [N, 512].
  torch::Tensor features(const torch::Tensor& x);
  /// The last convolutional feature map [N, 512, H/32, W/32] (for Grad-CAM).
  torch::Tensor feature_map(const torch::Tensor& x);
  /// Features, or logits when num_classes > 0.
  torch::Tensor forward(const torch::Tensor& x);

  static constexpr int64_t kFeatureDim = 512;
  ResNetOptions options;
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(ResNet18);

/// How the network's batch-norm layers run: nullptr (the default) calls the layer itself; distributed
/// training with --sync-bn installs a function that normalises over the global batch (dist/group.h).
using BatchNormFunction = torch::Tensor (*)(torch::nn::BatchNorm2dImpl&, const torch::Tensor&);
void set_batch_norm_function(BatchNormFunction f);
/// A batch-norm layer through the installed function.
torch::Tensor apply_batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x);

/// Copies tensors named like the module's parameters and buffers from `state` (a torchvision state
/// dict read with read_state_dict). A 3-channel conv1 is summed over its input channels for a
/// 1-channel model. Keys of the fc are skipped when the module has none. Returns the number of
/// tensors copied; throws naming the first missing key or shape mismatch.
int load_torchvision_weights(ResNet18Impl& model, const std::string& path);

}  // namespace wristssl::models
