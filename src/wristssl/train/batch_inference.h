#pragma once
// Networks run over a dataset's items in batches without gradients (validation, evaluation, feature
// extraction), sharded over the ranks of a distributed job when asked.

#include <torch/torch.h>

#include <functional>
#include <vector>

#include "wristssl/data/pixel_source.h"

namespace wristssl::train {

/// How images reach a network at inference: the whole image resized to `out_size` (no
/// augmentation), normalised, on `device`, under bf16 autocast when asked.
struct InferenceInput {
  int out_size = 224;
  float mean = 0.5f, stdev = 0.25f;
  c10::Device device = c10::kCPU;
  bool bf16 = false;
  bool channels_last = false;
  int batch_size = 64;
  bool shard = false;  // distributed: each rank runs its share of the items, the results are
                       // gathered (every rank must call infer with the same items)
};

/// Runs `fn` on batches of `items` in order, without gradients; returns its outputs concatenated
/// along dimension 0 as float32 on the CPU. Putting the network in eval mode is the caller's
/// choice. With `in.shard` in a distributed job, rank r runs items r, r + W, ... and every rank
/// gets all the rows.
torch::Tensor infer(const data::PixelSource& pixels, const std::vector<int>& items,
                    const InferenceInput& in,
                    const std::function<torch::Tensor(const torch::Tensor&)>& fn);

}  // namespace wristssl::train
