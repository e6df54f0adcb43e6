#pragma once
// Channels-last that oneDNN actually sees.
//
// Tensor::contiguous(ChannelsLast) returns the tensor unchanged when it already counts as channels-last
// contiguous, and a contiguous [N, 1, H, W] tensor (or a [C_out, 1, k, k] weight) does: size-1 dimensions are
// ignored by that check. Its strides stay NCHW, so it still *suggests* the contiguous format, and a convolution
// decides its layout from what its input and weight suggest. The first convolution of a 1-channel ResNet then
// ran in NCHW, and so did batch norm, ReLU and max pooling after it, until the first channels-last weight forced
// a copy: measured on an Intel Xeon with AMX (2026-12-02), max pooling took 337 ms instead of 63 ms and copies
// 289 ms instead of 21 ms per training step, about a fifth of the step (PyTorch's Tensor.to(memory_format=...)
// goes by the suggested format and does restride).

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/utils.h>

namespace wristssl::util {

/// `t` with channels-last strides (a copy unless it already suggests channels-last); tensors that are not 4-D
/// are returned as they are.
inline at::Tensor channels_last(const at::Tensor& t) {
  if (t.dim() != 4 || t.suggest_memory_format() == at::MemoryFormat::ChannelsLast) return t;
  return at::empty_like(t, t.options(), at::MemoryFormat::ChannelsLast).copy_(t);
}

/// Converts the 4-D parameters of `module` to channels-last memory in place (set_data: the
/// optimiser and any hooks keep the same parameter objects).
inline void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(channels_last(p.data()));
  }
}

}  // namespace wristssl::util
