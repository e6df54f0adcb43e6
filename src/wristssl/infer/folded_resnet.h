#pragma once
// ResNet-18 in inference form: batch norm folded into the convolutions, plain float weights and no
// LibTorch, so that exporters (ONNX) build and test without it.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace wristssl::infer {

/// A convolution with batch norm folded in: y = conv(x, weight, stride, padding) + bias.
struct FoldedConv {
  std::string name;  // "conv1", "layer1.0.conv1", "layer2.0.downsample.0", ...
  int64_t out_channels = 0, in_channels = 0, kernel = 0, stride = 1, padding = 0;
  std::vector<float> weight;  // [out, in, kernel, kernel], row-major
  std::vector<float> bias;    // [out]
};

/// torchvision BasicBlock: relu(conv2(relu(conv1(x))) + (downsample ? downsample(x) : x)).
struct FoldedBlock {
  FoldedConv conv1, conv2;
  std::optional<FoldedConv> downsample;
};

/// ResNet-18 in inference form: conv1 (7x7/2, pad 3) -> relu -> maxpool 3x3/2 pad 1 -> 8 blocks
/// (layer1.0, layer1.1, ..., layer4.1) -> global average pool -> fc. Input [N, in_channels, H, W].
struct FoldedResNet18 {
  int64_t in_channels = 1;
  FoldedConv conv1;
  std::vector<FoldedBlock> blocks;  // 8
  int64_t num_classes = 2;
  std::vector<float> fc_weight;  // [num_classes, 512]
  std::vector<float> fc_bias;    // [num_classes]
  // How the last feature map becomes logits (models::Pooling): "mean" (average, then fc) or
  // "lse" (fc's margin at every location, log-sum-exp pooled with this sharpness; logits [0, M]).
  std::string pooling = "mean";
  double sharpness = 2.0;
};

/// Width of the features that reach fc (layer4's channels).
inline constexpr int64_t kResNet18Features = 512;

/// A network with every name, shape, stride and padding set as validate() expects and all weights
/// zero: a skeleton to fill in. Throws std::invalid_argument when a count is below 1.
FoldedResNet18 resnet18_layout(int64_t in_channels, int64_t num_classes);

/// Checks shapes and sizes; throws std::invalid_argument naming the layer and the mismatch.
/// Each convolution must match resnet18_layout(net.in_channels, net.num_classes) in name, channels,
/// kernel, stride and padding, hold out * in * kernel * kernel weights and out biases, and every
/// value must be finite (a NaN from folding a zero-variance batch norm shows up here, not at
/// inference).
void validate(const FoldedResNet18& net);

}  // namespace wristssl::infer
