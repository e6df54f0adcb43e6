#include "wristssl/infer/folded_resnet.h"

#include <cmath>
#include <stdexcept>

namespace wristssl::infer {
namespace {

constexpr int64_t kStageChannels[] = {64, 128, 256, 512};
constexpr size_t kBlocks = 8;

FoldedConv make_conv(std::string name, int64_t out, int64_t in, int64_t kernel, int64_t stride,
                     int64_t padding, bool allocate) {
  FoldedConv c;
  c.name = std::move(name);
  c.out_channels = out;
  c.in_channels = in;
  c.kernel = kernel;
  c.stride = stride;
  c.padding = padding;
  if (allocate) {
    c.weight.assign(static_cast<size_t>(out * in * kernel * kernel), 0.0f);
    c.bias.assign(static_cast<size_t>(out), 0.0f);
  }
  return c;
}

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::invalid_argument("validate: " + where + ": " + what);
}

void check_finite(const std::string& where, const char* what, const std::vector<float>& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      fail(where,
           std::string(what) + "[" + std::to_string(i) + "] is " + std::to_string(values[i]));
    }
  }
}

void check_size(const std::string& where, const char* what, size_t got, int64_t want,
                const std::string& shape) {
  if (got != static_cast<size_t>(want)) {
    fail(where, std::string(what) + " has " + std::to_string(got) + " values, expected " + shape +
                    " = " + std::to_string(want));
  }
}

void check_conv(const FoldedConv& got, const FoldedConv& want) {
  const std::string& where = want.name;
  if (got.name != want.name) fail(where, "named '" + got.name + "'");
  auto check_field = [&](const char* field, int64_t g, int64_t w) {
    if (g != w)
      fail(where, std::string(field) + " " + std::to_string(g) + ", expected " + std::to_string(w));
  };
  check_field("out_channels", got.out_channels, want.out_channels);
  check_field("in_channels", got.in_channels, want.in_channels);
  check_field("kernel", got.kernel, want.kernel);
  check_field("stride", got.stride, want.stride);
  check_field("padding", got.padding, want.padding);
  check_size(where, "weight", got.weight.size(),
             want.out_channels * want.in_channels * want.kernel * want.kernel,
             std::to_string(want.out_channels) + "*" + std::to_string(want.in_channels) + "*" +
                 std::to_string(want.kernel) + "*" + std::to_string(want.kernel));
  check_size(where, "bias", got.bias.size(), want.out_channels, "out_channels");
  check_finite(where, "weight", got.weight);
  check_finite(where, "bias", got.bias);
}

std::string block_name(size_t i) {
  return "layer" + std::to_string(i / 2 + 1) + "." + std::to_string(i % 2);
}

// The names and shapes of every layer; with `allocate` also zero weights of the right sizes
// (validate() needs only the shapes, not 45 MB of zeros).
FoldedResNet18 layout(int64_t in_channels, int64_t num_classes, bool allocate) {
  if (in_channels < 1) {
    throw std::invalid_argument("resnet18_layout: in_channels " + std::to_string(in_channels) +
                                " < 1");
  }
  if (num_classes < 1) {
    throw std::invalid_argument("resnet18_layout: num_classes " + std::to_string(num_classes) +
                                " < 1");
  }
  FoldedResNet18 net;
  net.in_channels = in_channels;
  net.num_classes = num_classes;
  net.conv1 = make_conv("conv1", kStageChannels[0], in_channels, 7, 2, 3, allocate);
  int64_t channels = kStageChannels[0];
  for (size_t i = 0; i < kBlocks; ++i) {
    const int64_t out = kStageChannels[i / 2];
    // The first block of layer2..4 halves the resolution and widens; its shortcut is a 1x1 conv.
    const int64_t stride = (i >= 2 && i % 2 == 0) ? 2 : 1;
    const std::string prefix = block_name(i);
    FoldedBlock b;
    b.conv1 = make_conv(prefix + ".conv1", out, channels, 3, stride, 1, allocate);
    b.conv2 = make_conv(prefix + ".conv2", out, out, 3, 1, 1, allocate);
    if (stride != 1 || channels != out) {
      b.downsample = make_conv(prefix + ".downsample.0", out, channels, 1, stride, 0, allocate);
    }
    net.blocks.push_back(std::move(b));
    channels = out;
  }
  if (allocate) {
    net.fc_weight.assign(static_cast<size_t>(num_classes * kResNet18Features), 0.0f);
    net.fc_bias.assign(static_cast<size_t>(num_classes), 0.0f);
  }
  return net;
}

}  // namespace

FoldedResNet18 resnet18_layout(int64_t in_channels, int64_t num_classes) {
  return layout(in_channels, num_classes, true);
}

void validate(const FoldedResNet18& net) {
  if (net.in_channels < 1) fail("input", "in_channels " + std::to_string(net.in_channels) + " < 1");
  if (net.num_classes < 1) fail("fc", "num_classes " + std::to_string(net.num_classes) + " < 1");
  const FoldedResNet18 want = layout(net.in_channels, net.num_classes, false);
  check_conv(net.conv1, want.conv1);
  if (net.blocks.size() != want.blocks.size()) {
    fail("blocks", std::to_string(net.blocks.size()) + " blocks, expected " +
                       std::to_string(want.blocks.size()) + " (layer1.0 ... layer4.1)");
  }
  for (size_t i = 0; i < want.blocks.size(); ++i) {
    const FoldedBlock& got = net.blocks[i];
    const FoldedBlock& w = want.blocks[i];
    check_conv(got.conv1, w.conv1);
    check_conv(got.conv2, w.conv2);
    if (w.downsample && !got.downsample) {
      fail(block_name(i), "downsample missing (stride " + std::to_string(w.downsample->stride) +
                              ", " + std::to_string(w.downsample->in_channels) + " -> " +
                              std::to_string(w.downsample->out_channels) + " channels)");
    }
    if (!w.downsample && got.downsample) {
      fail(block_name(i), "unexpected downsample '" + got.downsample->name +
                              "' (the shortcut is the identity here)");
    }
    if (w.downsample) check_conv(*got.downsample, *w.downsample);
  }
  check_size("fc", "fc_weight", net.fc_weight.size(), net.num_classes * kResNet18Features,
             std::to_string(net.num_classes) + "*" + std::to_string(kResNet18Features));
  check_size("fc", "fc_bias", net.fc_bias.size(), net.num_classes, "num_classes");
  check_finite("fc", "fc_weight", net.fc_weight);
  check_finite("fc", "fc_bias", net.fc_bias);
  if (net.pooling != "mean" && net.pooling != "lse")
    fail("pooling", "'" + net.pooling + "' is not mean or lse");
  if (net.pooling == "lse" && net.num_classes != 2) fail("pooling", "lse pooling needs 2 classes");
  if (net.pooling == "lse" && !(net.sharpness > 0)) fail("pooling", "lse sharpness must be > 0");
}

}  // namespace wristssl::infer
