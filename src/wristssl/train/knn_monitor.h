#pragma once
// The kNN monitor of self-supervised features: how well frozen backbone features separate labelled
// images, measured during pretraining.

#include <torch/torch.h>

#include <limits>
#include <vector>

#include "wristssl/data/pixel_source.h"
#include "wristssl/models/resnet.h"
#include "wristssl/train/batch_inference.h"

namespace wristssl::train {

struct KnnSets {
  std::vector<int> memory, query;
};
/// At most `max_images` in all (3/4 memory, 1/4 queries), evenly spaced, so the monitor is cheap.
KnnSets cap_knn_sets(const std::vector<int>& memory, const std::vector<int>& query, int max_images);

/// L2-normalised [N, 512] backbone features of `items` (eval mode).
torch::Tensor embed(models::ResNet18Impl& backbone, const data::PixelSource& pixels,
                    const std::vector<int>& items, const InferenceInput& in);

/// Weighted kNN (cosine similarity, k neighbours, votes exp(s / 0.07)) of `query` against `memory`
/// labels: the standard monitor of self-supervised features. Accuracy, and on two classes the AUROC
/// of the positive class's share of the votes (NaN otherwise): on imbalanced binary data accuracy
/// sits at the majority share and says nothing, the AUROC does. Leaves the backbone in eval mode.
struct KnnResult {
  double accuracy = 0;
  double auroc = std::numeric_limits<double>::quiet_NaN();
};
KnnResult knn_monitor(models::ResNet18Impl& backbone, const data::PixelSource& pixels,
                      const std::vector<int>& memory, const std::vector<int>& query,
                      const std::vector<int>& labels, int k, const InferenceInput& in);

}  // namespace wristssl::train
