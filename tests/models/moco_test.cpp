#include "wristssl/models/moco.h"

#include <gtest/gtest.h>
#include <torch/nn/functional/normalization.h>
#include <torch/torch.h>
#include "seeded.h"

namespace wristssl::models {
namespace {

// The suite is MoCoTest: MoCo is the module under test.
class MoCoTest : public testing::Seeded {};

namespace F = torch::nn::functional;

// A small MoCo with weights drawn from seed 3.
MoCo small(int64_t queue, int64_t splits, double momentum = 0.9) {
  torch::manual_seed(3);
  return MoCo(SimCLR(ProjectionHeadOptions().out_dim(16)),
              MoCoOptions().queue_size(queue).key_splits(splits).momentum(momentum));
}

TEST_F(MoCoTest, TheKeyEncoderStartsAsTheQueryAndIsNotTrained) {
  MoCo m = small(8, 2);
  const auto qp = m->query->named_parameters(), kp = m->key->named_parameters();
  ASSERT_EQ(qp.size(), kp.size());
  for (size_t i = 0; i < qp.size(); ++i) {
    EXPECT_EQ(qp[i].key(), kp[i].key());
    EXPECT_TRUE(torch::equal(qp[i].value(), kp[i].value())) << qp[i].key();
    EXPECT_FALSE(kp[i].value().data_ptr() == qp[i].value().data_ptr()) << "a copy, not the same tensor";
    EXPECT_TRUE(qp[i].value().requires_grad());
    EXPECT_FALSE(kp[i].value().requires_grad());
  }
  // A checkpoint of the module holds the key encoder and the queue.
  const auto buffers = m->named_buffers(false);
  EXPECT_TRUE(buffers.contains("queue"));
  EXPECT_TRUE(buffers.contains("queue_ptr"));
  EXPECT_TRUE(m->named_parameters().contains("key.head.net.2.weight"));
  // The queue starts as unit vectors.
  EXPECT_EQ(m->queue.sizes(), (torch::IntArrayRef{8, 16}));
  EXPECT_TRUE(torch::allclose(m->queue.norm(2, 1), torch::ones({8})));
}

TEST_F(MoCoTest, MomentumUpdateIsTheMovingAverage) {
  MoCo m = small(8, 1, 0.9);
  std::vector<torch::Tensor> before;
  for (const auto& p : m->key->parameters()) before.push_back(p.detach().clone());
  {
    torch::NoGradGuard no_grad;
    for (auto& p : m->query->parameters()) p.add_(1.0);
  }
  m->momentum_update();
  const auto qp = m->query->parameters(), kp = m->key->parameters();
  for (size_t i = 0; i < kp.size(); ++i) {
    // key was equal to the old query: 0.9 old + 0.1 (old + 1) = old + 0.1
    EXPECT_TRUE(torch::allclose(kp[i], before[i] + 0.1, 1e-5, 1e-6)) << i;
    EXPECT_TRUE(torch::allclose(kp[i], 0.9 * before[i] + 0.1 * qp[i], 1e-5, 1e-6)) << i;
  }
}

TEST_F(MoCoTest, ShuffledKeysComeBackInTheBatchOrder) {
  MoCo m = small(8, 3);
  seed(4);
  const torch::Tensor x = torch::randn({7, 1, 32, 32});
  // With batch norm on running statistics the chunks cannot change the keys: only the order could.
  m->key->eval();
  const torch::Tensor k = m->keys(x);
  const torch::Tensor expected = F::normalize(m->key->forward(x).detach(), F::NormalizeFuncOptions().dim(1));
  EXPECT_TRUE(torch::allclose(k, expected, 1e-4, 1e-5));
  EXPECT_FALSE(k.requires_grad());
  // In training mode each chunk has its own batch statistics (shuffle-BN), so the keys differ from one
  // full-batch pass; with one split they are that pass.
  m->key->train();
  const torch::Tensor full = F::normalize(m->key->forward(x).detach(), F::NormalizeFuncOptions().dim(1));
  EXPECT_FALSE(torch::allclose(m->keys(x), full, 1e-3, 1e-4));
  m->options.key_splits(1);
  EXPECT_TRUE(torch::allclose(m->keys(x), full, 1e-4, 1e-5));
}

TEST_F(MoCoTest, TheQueueOverwritesItsOldestKeysAndWraps) {
  MoCo m = small(5, 1);
  const torch::Tensor a = torch::arange(3 * 16, torch::kFloat).reshape({3, 16});
  const torch::Tensor b = -torch::arange(3 * 16, torch::kFloat).reshape({3, 16});
  m->enqueue(a);
  EXPECT_EQ(m->queue_ptr.item<int64_t>(), 3);
  m->enqueue(b);  // rows 3, 4, then 0
  EXPECT_EQ(m->queue_ptr.item<int64_t>(), 1);
  EXPECT_TRUE(torch::equal(m->queue[0], b[2]));
  EXPECT_TRUE(torch::equal(m->queue[1], a[1]));
  EXPECT_TRUE(torch::equal(m->queue[2], a[2]));
  EXPECT_TRUE(torch::equal(m->queue[3], b[0]));
  EXPECT_TRUE(torch::equal(m->queue[4], b[1]));
  // More keys than room: the newest five stay.
  const torch::Tensor c = torch::arange(7 * 16, torch::kFloat).reshape({7, 16}) + 1000;
  m->enqueue(c);
  for (int64_t r = 0; r < 5; ++r) {
    EXPECT_TRUE(torch::equal(m->queue[(1 + r) % 5], c[2 + r])) << r;
  }
  EXPECT_THROW(m->enqueue(torch::zeros({2, 15})), c10::Error);
}

}  // namespace
}  // namespace wristssl::models
