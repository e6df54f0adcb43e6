// One SimCLR step's gradients, distributed against one process: run under `wristssl launch --nproc
// 2`. Every rank builds the same model and the same global batch (seeded); rank r takes its half.
// The distributed gradients (embeddings gathered, batch norm synchronised, gradients averaged) must
// equal those of one process on the whole batch, which rank 0 computes afterwards on its own copy.
// Prints the largest difference; exits 1 when it exceeds 5e-5 of the gradient's scale (float32
// summation order).

#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <string>

#include "wristssl/distributed/group.h"
#include "wristssl/losses/nt_xent.h"
#include "wristssl/models/simclr.h"
#include "wristssl/util/memory_format.h"

using namespace wristssl;

int main(int argc, char** argv) {
  const bool channels_last = argc > 1 && std::string(argv[1]) == "--channels-last";
  distributed::Group* group = distributed::init();
  if (!group) {
    std::fprintf(stderr, "grad_check: run me under wristssl launch --nproc 2\n");
    return 2;
  }
  at::set_num_threads(1);
  const int64_t per_rank = 8, world = group->size(), rank = group->rank();
  torch::manual_seed(7);
  models::SimCLR model(models::ProjectionHeadOptions().kind("mlp"), 1);
  torch::manual_seed(11);
  const torch::Tensor v1 = torch::randn({per_rank * world, 1, 32, 32});
  const torch::Tensor v2 = torch::randn({per_rank * world, 1, 32, 32});

  // Distributed.
  if (channels_last) util::to_channels_last(*model);
  distributed::broadcast_module(*model);
  std::optional<distributed::SyncBatchNorm> sync_bn(std::in_place, true);
  model->train();
  torch::Tensor x = torch::cat(
      {v1.narrow(0, rank * per_rank, per_rank), v2.narrow(0, rank * per_rank, per_rank)});
  if (channels_last) x = util::channels_last(x);
  const torch::Tensor z = model->forward(x);
  const torch::Tensor loss =
      losses::nt_xent_global(z.narrow(0, 0, per_rank), z.narrow(0, per_rank, per_rank), 0.5);
  {
    distributed::GradientReducer reducer(
        *model, 4u << 20);  // small buckets: several overlap with the backward pass
    loss.backward();
    reducer.finish();
  }
  std::map<std::string, torch::Tensor> distributed;
  for (const auto& p : model->named_parameters()) distributed[p.key()] = p.value().grad().clone();
  const double dist_loss = distributed::sum_over_ranks({loss.item<double>()})[0] / world;
  sync_bn.reset();
  if (rank != 0) return 0;

  // One process, the whole batch, from the same initial weights.
  torch::manual_seed(7);
  models::SimCLR single(models::ProjectionHeadOptions().kind("mlp"), 1);
  single->train();
  if (channels_last) util::to_channels_last(*single);
  torch::Tensor xs = torch::cat({v1, v2});
  if (channels_last) xs = util::channels_last(xs);
  const torch::Tensor zs = single->forward(xs);
  const int64_t n = per_rank * world;
  const torch::Tensor ls = losses::nt_xent(zs.narrow(0, 0, n), zs.narrow(0, n, n), 0.5);
  ls.backward();
  std::printf("loss: distributed %.8f, one process %.8f\n", dist_loss, ls.item<double>());
  double worst = 0;
  std::string where;
  for (const auto& p : single->named_parameters()) {
    const torch::Tensor g = p.value().grad();
    const double scale = g.abs().max().item<double>() + 1e-12;
    const double d = (g - distributed[p.key()]).abs().max().item<double>() / scale;
    if (d > worst) {
      worst = d;
      where = p.key();
    }
  }
  std::printf("largest relative gradient difference: %.3g at %s\n", worst, where.c_str());
  return worst < 5e-5 && std::abs(dist_loss - ls.item<double>()) < 1e-6 ? 0 : 1;
}
