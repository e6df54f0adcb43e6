#include "wristssl/losses/nt_xent.h"

#include <torch/nn/functional/loss.h>
#include <torch/nn/functional/normalization.h>

#include <limits>

#include "wristssl/distributed/group.h"
#include "wristssl/util/autocast.h"

namespace wristssl::losses {

namespace F = torch::nn::functional;

namespace {

// Cross entropy of each anchor's row of logits against its positive, averaged over the anchors; decoupled
// (Yeh et al. 2022, DCL): the positive left out of the denominator, log sum_neg exp - positive.
torch::Tensor contrastive_ce(const torch::Tensor& logits, const torch::Tensor& targets, bool decoupled) {
  if (!decoupled) return F::cross_entropy(logits, targets);
  const torch::Tensor t = targets.unsqueeze(1);
  const torch::Tensor positive = logits.gather(1, t).squeeze(1);
  const torch::Tensor negatives = logits.scatter(1, t, -std::numeric_limits<float>::infinity());
  return (torch::logsumexp(negatives, 1) - positive).mean();
}

// Embeddings in float32 (bf16 / fp16 under autocast; double stays double, for the tests).
torch::Tensor fp32(const torch::Tensor& t) { return t.scalar_type() == torch::kDouble ? t : t.to(torch::kFloat); }

// Rows scaled to unit length, in float32: dot products of these are cosine similarities.
torch::Tensor unit_rows(const torch::Tensor& t) { return F::normalize(fp32(t), F::NormalizeFuncOptions().dim(1)); }

}  // namespace

torch::Tensor nt_xent(const torch::Tensor& z1, const torch::Tensor& z2, double temperature, bool decoupled) {
  TORCH_CHECK(z1.dim() == 2 && z1.sizes() == z2.sizes(), "nt_xent expects two [N, d] tensors of one shape, got ",
              z1.sizes(), " and ", z2.sizes());
  TORCH_CHECK(z1.size(0) >= 2, "nt_xent needs at least 2 images per batch (negatives), got ", z1.size(0));
  TORCH_CHECK(temperature > 0, "temperature must be > 0, got ", temperature);
  const int64_t n = z1.size(0);
  const util::AutocastGuard no_autocast(false, z1.device().type());
  // Outside autocast: the similarity logits and the log-sum-exp are done in float32.
  const torch::Tensor z = unit_rows(torch::cat({z1, z2}, 0));
  torch::Tensor logits = torch::matmul(z, z.t()) / temperature;  // [2N, 2N] cosine / tau
  const torch::Tensor self = torch::eye(2 * n, torch::TensorOptions().dtype(torch::kBool).device(z.device()));
  logits = logits.masked_fill(self, -std::numeric_limits<float>::infinity());
  const torch::Tensor idx = torch::arange(n, torch::TensorOptions().dtype(torch::kLong).device(z.device()));
  const torch::Tensor targets = torch::cat({idx + n, idx});  // anchor i in view 1 <-> i in view 2
  return contrastive_ce(logits, targets, decoupled);
}

torch::Tensor nt_xent_global(const torch::Tensor& z1, const torch::Tensor& z2, double temperature, bool decoupled) {
  TORCH_CHECK(z1.dim() == 2 && z1.sizes() == z2.sizes(), "nt_xent_global expects two [N, d] tensors of one shape");
  TORCH_CHECK(temperature > 0, "temperature must be > 0, got ", temperature);
  const int64_t n = z1.size(0);
  const int64_t world = distributed::world_size(), rank = distributed::rank();
  TORCH_CHECK(world * n >= 2, "nt_xent_global needs at least 2 images in the global batch");
  const util::AutocastGuard no_autocast(false, z1.device().type());
  // Every rank's embeddings, in rank order: view 1 of the global batch, then view 2, as one process would
  // order them. Gradients flow back to each rank's own rows.
  const torch::Tensor all1 = distributed::all_gather_with_grad(fp32(z1));
  const torch::Tensor all2 = distributed::all_gather_with_grad(fp32(z2));
  const int64_t g = world * n;
  const torch::Tensor z = unit_rows(torch::cat({all1, all2}, 0));
  const auto longs = torch::TensorOptions().dtype(torch::kLong).device(z.device());
  const torch::Tensor local = torch::arange(n, longs) + rank * n;  // this rank's rows in view 1
  const torch::Tensor anchors = torch::cat({local, local + g});
  torch::Tensor logits = torch::matmul(z.index_select(0, anchors), z.t()) / temperature;  // [2n, 2g]
  const torch::Tensor self = torch::zeros({2 * n, 2 * g}, torch::TensorOptions().dtype(torch::kBool).device(z.device()))
                                 .scatter_(1, anchors.unsqueeze(1), true);
  logits = logits.masked_fill(self, -std::numeric_limits<float>::infinity());
  const torch::Tensor targets = torch::cat({local + g, local});  // view 1 of i <-> view 2 of i
  return contrastive_ce(logits, targets, decoupled);
}

torch::Tensor info_nce_queue(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& queue,
                             double temperature) {
  TORCH_CHECK(q.dim() == 2 && q.sizes() == k.sizes(), "info_nce_queue expects queries and keys of one [N, d] shape, got ",
              q.sizes(), " and ", k.sizes());
  TORCH_CHECK(queue.dim() == 2 && queue.size(1) == q.size(1), "info_nce_queue: the queue must be [K, ", q.size(1),
              "], got ", queue.sizes());
  TORCH_CHECK(temperature > 0, "temperature must be > 0, got ", temperature);
  const util::AutocastGuard no_autocast(false, q.device().type());
  const torch::Tensor zq = unit_rows(q);
  const torch::Tensor zk = unit_rows(k.detach()).to(zq.scalar_type()), zn = unit_rows(queue.detach()).to(zq.scalar_type());
  const torch::Tensor positive = (zq * zk).sum(1, true);       // [N, 1]
  const torch::Tensor negatives = torch::matmul(zq, zn.t());   // [N, K]
  const torch::Tensor logits = torch::cat({positive, negatives}, 1) / temperature;
  const torch::Tensor targets = torch::zeros({q.size(0)}, torch::TensorOptions().dtype(torch::kLong).device(q.device()));
  return F::cross_entropy(logits, targets);
}

double embedding_std(const torch::Tensor& z) {
  torch::NoGradGuard no_grad;
  const torch::Tensor n = F::normalize(z.to(torch::kFloat), F::NormalizeFuncOptions().dim(1));
  return n.std(0).mean().item<double>();
}

}  // namespace wristssl::losses
