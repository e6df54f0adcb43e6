#include "wristssl/models/resnet.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>
#include <torch/serialize.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace wristssl::models {
namespace {

namespace F = torch::nn::functional;

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).bias(false));
}

void init_like_torchvision(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (auto& sub : m.modules(/*include_self=*/false)) {
    if (auto* c = sub->as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = sub->as<torch::nn::BatchNorm2d>()) {
      torch::nn::init::ones_(bn->weight);
      torch::nn::init::zeros_(bn->bias);
    }
  }
}

}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride)
    : in_planes_(in_planes), planes_(planes), stride_(stride) {
  reset();
}

void BasicBlockImpl::reset() {
  conv1 = register_module("conv1", conv(in_planes_, planes_, 3, stride_, 1));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes_));
  conv2 = register_module("conv2", conv(planes_, planes_, 3, 1, 1));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(planes_));
  if (stride_ != 1 || in_planes_ != planes_) {
    downsample = register_module(
        "downsample", torch::nn::Sequential(conv(in_planes_, planes_, 1, stride_, 0), torch::nn::BatchNorm2d(planes_)));
  }
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor out = torch::relu(apply_batch_norm(*bn1, conv1(x)));
  out = apply_batch_norm(*bn2, conv2(out));
  torch::Tensor shortcut = x;
  if (downsample) {  // "downsample.0" (conv) and "downsample.1" (batch norm), as torchvision names them
    shortcut = apply_batch_norm(*downsample->ptr(1)->as<torch::nn::BatchNorm2dImpl>(),
                                downsample->ptr(0)->as<torch::nn::Conv2dImpl>()->forward(x));
  }
  return torch::relu(out + shortcut);
}

ResNet18Impl::ResNet18Impl(ResNetOptions opts) : options(opts) { reset(); }

void ResNet18Impl::reset() {
  conv1 = register_module("conv1", conv(options.in_channels(), 64, 7, 2, 3));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(64));
  auto layer = [](int64_t in, int64_t out, int64_t stride) {
    return torch::nn::Sequential(BasicBlock(in, out, stride), BasicBlock(out, out, 1));
  };
  layer1 = register_module("layer1", layer(64, 64, 1));
  layer2 = register_module("layer2", layer(64, 128, 2));
  layer3 = register_module("layer3", layer(128, 256, 2));
  layer4 = register_module("layer4", layer(256, 512, 2));
  if (options.num_classes() > 0) fc = register_module("fc", torch::nn::Linear(kFeatureDim, options.num_classes()));
  init_like_torchvision(*this);
}

torch::Tensor ResNet18Impl::feature_map(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == options.in_channels(), "ResNet18 expects [N, ", options.in_channels(),
              ", H, W], got ", x.sizes());
  torch::Tensor h = torch::relu(apply_batch_norm(*bn1, conv1(x)));
  h = F::max_pool2d(h, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
  return layer4->forward(layer3->forward(layer2->forward(layer1->forward(h))));
}

torch::Tensor ResNet18Impl::features(const torch::Tensor& x) {
  return feature_map(x).mean({2, 3});  // adaptive average pool to 1x1, flattened: [N, 512]
}

torch::Tensor ResNet18Impl::forward(const torch::Tensor& x) {
  torch::Tensor f = features(x);
  return fc ? fc(f) : f;
}

namespace {
std::atomic<BatchNormFunction> g_batch_norm{nullptr};
}  // namespace

void set_batch_norm_function(BatchNormFunction f) { g_batch_norm = f; }

torch::Tensor apply_batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x) {
  const BatchNormFunction f = g_batch_norm.load();
  return f ? f(bn, x) : bn.forward(x);
}

int load_torchvision_weights(ResNet18Impl& model, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open weights " + path);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  c10::IValue v;
  try {
    v = torch::pickle_load(bytes);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": not a state dict saved by torch.save: " + std::string(e.what()).substr(0, 200));
  }
  TORCH_CHECK(v.isGenericDict(), path, ": expected a dict of tensors (a state_dict)");
  std::map<std::string, torch::Tensor> state;
  for (const auto& kv : v.toGenericDict()) state[kv.key().toStringRef()] = kv.value().toTensor();
  torch::NoGradGuard no_grad;
  int copied = 0;
  auto copy = [&](const std::string& name, torch::Tensor& dst) {
    if (name.rfind("fc.", 0) == 0 && !model.fc) return;
    auto it = state.find(name);
    if (it == state.end()) throw std::runtime_error(path + ": missing " + name);
    torch::Tensor src = it->second.to(torch::kFloat);
    if (name == "conv1.weight" && src.size(1) != dst.size(1) && dst.size(1) == 1) src = src.sum(1, true);
    if (src.sizes() != dst.sizes()) {
      throw std::runtime_error(path + ": " + name + " has shape " + c10::str(src.sizes()) + ", model expects " +
                               c10::str(dst.sizes()));
    }
    dst.copy_(src);
    ++copied;
  };
  for (auto& p : model.named_parameters()) copy(p.key(), p.value());
  for (auto& b : model.named_buffers()) copy(b.key(), b.value());
  return copied;
}

}  // namespace wristssl::models
