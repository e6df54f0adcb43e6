#include "wristssl/models/simclr.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/linear.h>

namespace wristssl::models {

ProjectionHeadImpl::ProjectionHeadImpl(ProjectionHeadOptions o) : options(std::move(o)) { reset(); }

void ProjectionHeadImpl::reset() {
  TORCH_CHECK(options.kind() == "mlp" || options.kind() == "linear", "projection head kind must be mlp or linear, got '",
              options.kind(), "'");
  if (options.kind() == "mlp") {
    net = register_module("net", torch::nn::Sequential(torch::nn::Linear(options.in_dim(), options.hidden_dim()),
                                                       torch::nn::ReLU(),
                                                       torch::nn::Linear(options.hidden_dim(), options.out_dim())));
  } else {
    net = register_module("net", torch::nn::Sequential(torch::nn::Linear(options.in_dim(), options.out_dim())));
  }
}

torch::Tensor ProjectionHeadImpl::forward(const torch::Tensor& h) { return net->forward(h); }

SimCLRImpl::SimCLRImpl(ProjectionHeadOptions head_opts, int64_t channels)
    : head_options(std::move(head_opts)), in_channels(channels) {
  reset();
}

void SimCLRImpl::reset() {
  backbone = register_module("backbone", ResNet18(ResNetOptions().in_channels(in_channels).num_classes(0)));
  head = register_module("head", ProjectionHead(head_options));
}

torch::Tensor SimCLRImpl::forward(const torch::Tensor& x) { return head(backbone->features(x)); }

}  // namespace wristssl::models
