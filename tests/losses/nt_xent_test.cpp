#include "wristssl/losses/nt_xent.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "seeded.h"
#include "wristssl/util/autocast.h"

namespace wristssl::losses {
namespace {

class NtXent : public testing::Seeded {};
class InfoNceQueue : public testing::Seeded {};
class EmbeddingStd : public testing::Seeded {};

// The definition, written out with loops in double: for each of the 2N anchors, the positive's
// softmax probability among the 2N - 1 others.
double reference_nt_xent(const torch::Tensor& z1, const torch::Tensor& z2, double tau, bool decoupled = false) {
  const torch::Tensor z = torch::cat({z1, z2}).to(torch::kDouble);
  const int64_t n2 = z.size(0), n = n2 / 2;
  auto cosine = [&](int64_t i, int64_t j) {
    return (z[i] * z[j]).sum().item<double>() / (z[i].norm().item<double>() * z[j].norm().item<double>());
  };
  double total = 0;
  for (int64_t i = 0; i < n2; ++i) {
    const int64_t pos = (i + n) % n2;
    double denom = 0;
    for (int64_t k = 0; k < n2; ++k) {
      if (k != i && !(decoupled && k == pos)) denom += std::exp(cosine(i, k) / tau);
    }
    total += -std::log(std::exp(cosine(i, pos) / tau) / denom);
  }
  return total / n2;
}

TEST_F(NtXent, MatchesTheDefinitionWrittenOut) {
  seed(1);
  const torch::Tensor z1 = torch::randn({5, 7}), z2 = torch::randn({5, 7});
  for (double tau : {0.1, 0.5, 1.0}) {
    EXPECT_NEAR(nt_xent(z1, z2, tau).item<double>(), reference_nt_xent(z1, z2, tau), 1e-5) << tau;
  }
}

TEST_F(NtXent, DecoupledLeavesThePositiveOutOfTheDenominator) {
  seed(2);
  const torch::Tensor z1 = torch::randn({6, 5}), z2 = torch::randn({6, 5});
  for (double tau : {0.2, 0.5}) {
    EXPECT_NEAR(nt_xent(z1, z2, tau, true).item<double>(), reference_nt_xent(z1, z2, tau, true), 1e-5) << tau;
    EXPECT_LT(nt_xent(z1, z2, tau, true).item<double>(), nt_xent(z1, z2, tau).item<double>());
  }
  // Hand-worked: the two-pair case below without the positive in the denominator: -log(e / 2) = log 2 - 1.
  const torch::Tensor a = torch::tensor({{1.0f, 0.0f}, {0.0f, 1.0f}});
  EXPECT_NEAR(nt_xent(a, a.clone(), 1.0, true).item<double>(), std::log(2.0) - 1, 1e-6);
}

TEST_F(NtXent, HandWorkedTwoPairs) {
  // z1 = [(1,0), (0,1)], z2 = [(1,0), (0,1)]: each anchor's positive has cosine 1, the two negatives
  // cosine 0. tau = 1: loss = -log(e / (e + 2)) = log(1 + 2/e) = 0.5514...
  const torch::Tensor a = torch::tensor({{1.0f, 0.0f}, {0.0f, 1.0f}});
  EXPECT_NEAR(nt_xent(a, a.clone(), 1.0).item<double>(), std::log(1 + 2 / std::exp(1.0)), 1e-6);
}

TEST_F(NtXent, RandomEmbeddingsGiveLogTwoNMinusOne) {
  seed(2);
  const int64_t n = 32;
  const double loss = nt_xent(torch::randn({n, 128}), torch::randn({n, 128}), 0.5).item<double>();
  EXPECT_NEAR(loss, std::log(2.0 * n - 1), 0.1);
}

TEST_F(NtXent, GradientMatchesFiniteDifferences) {
  seed(3);
  torch::Tensor z1 = torch::randn({3, 4}, torch::kDouble).requires_grad_(true);
  torch::Tensor z2 = torch::randn({3, 4}, torch::kDouble);
  nt_xent(z1, z2, 0.5).backward();
  const torch::Tensor grad = z1.grad().clone();
  torch::NoGradGuard no_grad;
  const double h = 1e-6;
  for (int64_t i = 0; i < 3; ++i) {
    for (int64_t j = 0; j < 4; ++j) {
      torch::Tensor zp = z1.detach().clone(), zm = z1.detach().clone();
      zp[i][j] += h;
      zm[i][j] -= h;
      const double fd = (reference_nt_xent(zp, z2, 0.5) - reference_nt_xent(zm, z2, 0.5)) / (2 * h);
      EXPECT_NEAR(grad[i][j].item<double>(), fd, 1e-6) << i << "," << j;
    }
  }
}

TEST_F(NtXent, StableUnderBf16AutocastAndLowTemperature) {
  seed(4);
  const torch::Tensor z1 = torch::randn({16, 128}), z2 = z1 + 0.01 * torch::randn({16, 128});
  const double fp32 = nt_xent(z1, z2, 0.05).item<double>();
  torch::Tensor bf;
  {
    const util::AutocastGuard ac(true, c10::kCPU);
    bf = nt_xent(z1.to(torch::kBFloat16), z2.to(torch::kBFloat16), 0.05);
  }
  EXPECT_EQ(bf.scalar_type(), torch::kFloat) << "the loss is computed in float32";
  EXPECT_TRUE(std::isfinite(bf.item<double>()));
  EXPECT_NEAR(bf.item<double>(), fp32, 0.05);
}

TEST_F(NtXent, RejectsBadShapes) {
  EXPECT_THROW(nt_xent(torch::randn({4, 8}), torch::randn({3, 8})), c10::Error);
  EXPECT_THROW(nt_xent(torch::randn({1, 8}), torch::randn({1, 8})), c10::Error);
  EXPECT_THROW(nt_xent(torch::randn({4, 8}), torch::randn({4, 8}), 0.0), c10::Error);
}

// MoCo's loss written out in double: for each query, the positive key's softmax probability among the
// positive and the K queue entries.
double reference_info_nce(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& queue, double tau) {
  const torch::Tensor qd = q.to(torch::kDouble), kd = k.to(torch::kDouble), nd = queue.to(torch::kDouble);
  auto cosine = [](const torch::Tensor& a, const torch::Tensor& b) {
    return (a * b).sum().item<double>() / (a.norm().item<double>() * b.norm().item<double>());
  };
  double total = 0;
  for (int64_t i = 0; i < qd.size(0); ++i) {
    const double pos = std::exp(cosine(qd[i], kd[i]) / tau);
    double denom = pos;
    for (int64_t j = 0; j < nd.size(0); ++j) denom += std::exp(cosine(qd[i], nd[j]) / tau);
    total += -std::log(pos / denom);
  }
  return total / qd.size(0);
}

TEST_F(InfoNceQueue, MatchesTheDefinitionWrittenOut) {
  seed(5);
  const torch::Tensor q = torch::randn({4, 6}), k = torch::randn({4, 6}), queue = torch::randn({9, 6});
  for (double tau : {0.07, 0.2, 1.0}) {
    EXPECT_NEAR(info_nce_queue(q, k, queue, tau).item<double>(), reference_info_nce(q, k, queue, tau), 1e-5) << tau;
  }
  // Hand-worked: q = k = (1, 0), one negative (0, 1), tau = 1: -log(e / (e + 1)) = log(1 + 1/e).
  const torch::Tensor a = torch::tensor({{1.0f, 0.0f}});
  EXPECT_NEAR(info_nce_queue(a, a.clone(), torch::tensor({{0.0f, 1.0f}}), 1.0).item<double>(),
              std::log(1 + 1 / std::exp(1.0)), 1e-6);
}

TEST_F(InfoNceQueue, GradientReachesTheQueriesOnly) {
  seed(6);
  const torch::Tensor q = torch::randn({3, 4}).requires_grad_(true);
  const torch::Tensor k = torch::randn({3, 4}).requires_grad_(true);
  const torch::Tensor queue = torch::randn({5, 4});
  info_nce_queue(q, k, queue, 0.2).backward();
  ASSERT_TRUE(q.grad().defined());
  EXPECT_GT(q.grad().abs().sum().item<double>(), 0);
  EXPECT_FALSE(k.grad().defined());
  // Under bf16 autocast the loss is still computed in float32, close to the fp32 value.
  const util::AutocastGuard bf16(true, torch::kCPU);
  EXPECT_EQ(info_nce_queue(q.to(torch::kBFloat16), k, queue, 0.2).scalar_type(), torch::kFloat);
}

TEST_F(EmbeddingStd, CollapseIsZeroSpreadIsAboutOneOverRootD) {
  seed(5);
  EXPECT_NEAR(embedding_std(torch::ones({64, 128})), 0.0, 1e-6);
  EXPECT_NEAR(embedding_std(torch::randn({4096, 128})), 1.0 / std::sqrt(128.0), 0.005);
}

}  // namespace
}  // namespace wristssl::losses
