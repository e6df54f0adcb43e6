#include "wristssl/models/moco.h"

#include <torch/nn/functional/normalization.h>
#include <torch/torch.h>

namespace wristssl::models {

namespace F = torch::nn::functional;

MoCoImpl::MoCoImpl(SimCLR q, MoCoOptions o) : options(o), query(std::move(q)) { reset(); }

void MoCoImpl::reset() {
  TORCH_CHECK(options.queue_size() >= 1, "MoCo queue size must be >= 1, got ", options.queue_size());
  TORCH_CHECK(options.momentum() >= 0 && options.momentum() < 1, "MoCo momentum must be in [0, 1), got ",
              options.momentum());
  TORCH_CHECK(options.key_splits() >= 1, "MoCo key splits must be >= 1, got ", options.key_splits());
  query = register_module("query", query);
  key = register_module("key", std::dynamic_pointer_cast<SimCLRImpl>(query->clone()));
  for (auto& p : key->parameters()) p.set_requires_grad(false);
  const auto device = query->parameters().front().device();
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(device);
  queue = register_buffer(
      "queue", F::normalize(torch::randn({options.queue_size(), query->head_options.out_dim()}, f32),
                            F::NormalizeFuncOptions().dim(1)));
  queue_ptr = register_buffer("queue_ptr", torch::zeros({}, torch::TensorOptions().dtype(torch::kLong)));
}

torch::Tensor MoCoImpl::keys(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  const int64_t n = x.size(0);
  // Chunks of near-equal size, at least two images each (batch norm needs two in training mode).
  const int64_t splits = std::min<int64_t>(options.key_splits(), n / 2);
  torch::Tensor k;
  if (splits <= 1) {
    k = key->forward(x);
  } else {
    const torch::Tensor perm = torch::randperm(n, torch::TensorOptions().dtype(torch::kLong).device(x.device()));
    const torch::Tensor shuffled = x.index_select(0, perm);
    std::vector<torch::Tensor> parts;
    for (const torch::Tensor& chunk : shuffled.tensor_split(splits, 0)) parts.push_back(key->forward(chunk));
    torch::Tensor out = torch::cat(parts, 0);
    k = torch::empty_like(out).index_copy_(0, perm, out);  // back to x's order
  }
  return F::normalize(k.to(torch::kFloat), F::NormalizeFuncOptions().dim(1));
}

void MoCoImpl::momentum_update() {
  torch::NoGradGuard no_grad;
  const double m = options.momentum();
  const auto qp = query->parameters();
  const auto kp = key->parameters();
  for (size_t i = 0; i < kp.size(); ++i) kp[i].mul_(m).add_(qp[i].detach(), 1.0 - m);
}

void MoCoImpl::enqueue(const torch::Tensor& k) {
  torch::NoGradGuard no_grad;
  TORCH_CHECK(k.dim() == 2 && k.size(1) == queue.size(1), "MoCo enqueue expects [M, ", queue.size(1), "] keys, got ",
              k.sizes());
  const int64_t size = queue.size(0);
  torch::Tensor rows = k.to(queue.dtype());
  if (rows.size(0) > size) rows = rows.narrow(0, rows.size(0) - size, size);  // only the newest fit
  const int64_t ptr = queue_ptr.item<int64_t>();
  const torch::Tensor where =
      (torch::arange(rows.size(0), torch::TensorOptions().dtype(torch::kLong).device(queue.device())) + ptr) % size;
  queue.index_copy_(0, where, rows);
  queue_ptr.fill_((ptr + rows.size(0)) % size);
}

}  // namespace wristssl::models
