#pragma once
// NT-Xent (normalised temperature-scaled cross entropy), the SimCLR loss.

#include <torch/types.h>

namespace wristssl::losses {

/// Default temperature: SimCLR's 0.5 for batch sizes of a few dozen to a few hundred (Chen et al. 2020,
/// Table 5: 0.5 is best at batch 256-512 with the MLP head; small batches favour 0.2-0.5).
constexpr double kDefaultTemperature = 0.5;

/// z1, z2: [N, d] projections of two views of the same N images (row i of z1 and of z2 form a
/// positive pair; all other 2N-2 rows are negatives). Cosine similarity / temperature, self-similarity
/// masked out, cross entropy in both directions, averaged over the 2N anchors. Computed in float32
/// whatever the input dtype (stable under bf16 autocast). A random model gives about ln(2N - 1).
/// `decoupled`: DCL (Yeh et al. 2022), the positive pair left out of each anchor's denominator, which takes
/// away the small-batch penalty of NT-Xent's positive-negative coupling.
torch::Tensor nt_xent(const torch::Tensor& z1, const torch::Tensor& z2, double temperature = kDefaultTemperature,
                      bool decoupled = false);

/// Distributed NT-Xent: this rank's pairs (z1[i], z2[i]) as anchors against the embeddings of every rank's
/// batch (gathered with their gradients). The mean over the ranks equals nt_xent over the global batch, so
/// with gradients averaged over the ranks a step is the one-process step with the global batch. Without a
/// process group it is nt_xent.
torch::Tensor nt_xent_global(const torch::Tensor& z1, const torch::Tensor& z2, double temperature,
                             bool decoupled = false);

/// MoCo's InfoNCE: query q[i] [N, d] against its positive key k[i] and the negatives in queue [K, d], cosine
/// similarity / temperature, cross entropy with the positive as the target, averaged over the N queries, in
/// float32. No gradient flows into k or the queue (the key encoder is a moving average, not trained).
torch::Tensor info_nce_queue(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& queue,
                             double temperature);

/// Mean over dimensions of the per-dimension standard deviation of L2-normalised embeddings [N, d]:
/// about 1/sqrt(d) for well-spread embeddings, near 0 when they collapse to one point.
double embedding_std(const torch::Tensor& z);

}  // namespace wristssl::losses
