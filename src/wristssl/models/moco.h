#pragma once
// MoCo v2 (He et al. 2020; Chen et al. 2020, "Improved baselines"): a query encoder trained by gradient, a
// key encoder that follows it as a moving average, and a queue of past keys as negatives. The negatives no
// longer come from the batch, which is what makes contrastive learning work at the small batches a CPU
// affords (MoCo-CXR used it on chest radiographs).

#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include "wristssl/models/simclr.h"

namespace wristssl::models {

struct MoCoOptions {
  TORCH_ARG(int64_t, queue_size) = 1024;  // negatives kept (keys of past batches)
  TORCH_ARG(double, momentum) = 0.99;     // key <- m key + (1 - m) query after every step
  // MoCo's shuffle-BN without several devices: the keys are computed on a shuffled batch in this many
  // chunks, each with its own batch-norm statistics, so a query and its positive key never share them
  // (shared statistics let the encoder find the positive by the batch it came from). 1 = off; a chunk keeps
  // at least two images.
  TORCH_ARG(int64_t, key_splits) = 2;
};

/// query (trained) + key (momentum copy) + queue [queue_size, out_dim] of L2-normalised keys.
/// Registered as submodules and buffers, so a checkpoint of this module holds all of MoCo's state.
class MoCoImpl : public torch::nn::Cloneable<MoCoImpl> {
 public:
  /// Takes the query encoder as it is (already initialised); the key encoder starts as its copy and the
  /// queue as random unit vectors (torch's generator: seed it first for a reproducible run).
  MoCoImpl(SimCLR query, MoCoOptions options = {});
  void reset() override;

  /// Keys of x [N, C, H, W]: the key encoder, no gradient, in shuffled chunks (see key_splits), returned
  /// L2-normalised in x's order, as float32.
  torch::Tensor keys(const torch::Tensor& x);
  /// key <- momentum * key + (1 - momentum) * query, for every parameter (buffers stay the key's own).
  void momentum_update();
  /// Writes k [M, out_dim] (normalised) into the queue over its oldest entries, wrapping around.
  void enqueue(const torch::Tensor& k);

  MoCoOptions options;
  SimCLR query{nullptr}, key{nullptr};
  torch::Tensor queue;      // [queue_size, out_dim] float32
  torch::Tensor queue_ptr;  // [] int64: the next row to overwrite
};
TORCH_MODULE(MoCo);

}  // namespace wristssl::models
