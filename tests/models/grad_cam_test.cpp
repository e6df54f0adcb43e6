#include "wristssl/models/grad_cam.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "wristssl/util/threads.h"

namespace wristssl::models {
namespace {

constexpr int kSide = 96;  // layer4 is 3x3 at this size
constexpr int kMark = 10;  // the mark's side in pixels

// A textured background; positives carry a small bright square at (x, y) (its top-left corner).
torch::Tensor make_image(std::mt19937_64& rng, bool positive, int x, int y) {
  std::uniform_real_distribution<float> u(0, 1);
  const float fx = u(rng) * 0.2f, fy = u(rng) * 0.2f, ph = u(rng) * 6.28f;
  torch::Tensor img = torch::empty({kSide, kSide});
  auto a = img.accessor<float, 2>();
  std::normal_distribution<float> noise(0, 0.05f);
  for (int r = 0; r < kSide; ++r) {
    for (int c = 0; c < kSide; ++c)
      a[r][c] = 0.35f + 0.1f * std::sin(fx * c + fy * r + ph) + noise(rng);
  }
  if (positive) img.slice(0, y, y + kMark).slice(1, x, x + kMark) += 0.6f;
  return (img - 0.35f) / 0.2f;
}

Classifier train_on_marks(uint64_t seed) {
  torch::manual_seed(seed);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> pos(4, kSide - kMark - 4);
  Classifier model(2);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-3));
  model->train();
  for (int step = 0; step < 120; ++step) {
    std::vector<torch::Tensor> xs;
    std::vector<int64_t> ys;
    for (int k = 0; k < 32; ++k) {
      const bool p = k % 2 == 0;
      xs.push_back(make_image(rng, p, pos(rng), pos(rng)));
      ys.push_back(p);
    }
    const torch::Tensor x = torch::stack(xs).unsqueeze(1), y = torch::tensor(ys);
    const torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  model->eval();
  return model;
}

std::vector<double> ranks(const std::vector<float>& v) {
  std::vector<size_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j + 1 < idx.size() && v[idx[j + 1]] == v[idx[i]]) ++j;
    for (size_t k = i; k <= j; ++k) r[idx[k]] = (i + j) / 2.0;  // ties share their mean rank
    i = j + 1;
  }
  return r;
}

// Spearman's rank correlation (0 when either map is constant).
double spearman(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor ac = a.contiguous(), bc = b.contiguous();
  const std::vector<double> ra =
      ranks(std::vector<float>(ac.data_ptr<float>(), ac.data_ptr<float>() + ac.numel()));
  const std::vector<double> rb =
      ranks(std::vector<float>(bc.data_ptr<float>(), bc.data_ptr<float>() + bc.numel()));
  const double n = static_cast<double>(ra.size()),
               ma = std::accumulate(ra.begin(), ra.end(), 0.0) / n,
               mb = std::accumulate(rb.begin(), rb.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  return saa == 0 || sbb == 0 ? 0.0 : sab / std::sqrt(saa * sbb);
}

// One trained model serves both checks (training it is the slow part; ctest runs each TEST in its
// own process).
class GradCam : public ::testing::Test {
 protected:
  static Classifier& model() {
    static Classifier m = [] {
      util::set_threads(0);
      return train_on_marks(11);
    }();
    return m;
  }
  void maximum_falls_on_the_mark();
  void changes_when_the_weights_are_randomised();
};

TEST_F(GradCam, LocalisesTheMarkAndPassesTheRandomisationCheck) {
  {
    SCOPED_TRACE("localisation");
    maximum_falls_on_the_mark();
  }
  {
    SCOPED_TRACE("randomised weights (Adebayo et al. 2018)");
    changes_when_the_weights_are_randomised();
  }
}

// Marks centred on the 3x3 grid of layer4's cells: the map's maximum must fall on the mark.
void GradCam::maximum_falls_on_the_mark() {
  std::mt19937_64 rng(99);
  int hits = 0, total = 0, correct = 0;
  std::vector<torch::Tensor> xs;
  std::vector<std::pair<int, int>> where;
  for (int cy : {16, 48, 80}) {
    for (int cx : {16, 48, 80}) {
      where.emplace_back(cx - kMark / 2, cy - kMark / 2);
      xs.push_back(make_image(rng, true, cx - kMark / 2, cy - kMark / 2));
    }
  }
  const GradCamResult r = grad_cam(*model(), torch::stack(xs).unsqueeze(1));
  ASSERT_EQ(r.maps.sizes(), (std::vector<int64_t>{9, kSide, kSide}));
  EXPECT_LE(r.maps.max().item<float>(), 1.0f);
  EXPECT_GE(r.maps.min().item<float>(), 0.0f);
  for (int k = 0; k < 9; ++k) {
    // Bilinear upsampling makes a plateau at the top (a corner cell is flat out to the border), so
    // "the maximum falls on the mark" is read as: the map is at its maximum (>= 0.95) at the mark's
    // centre, and that hot region is small (under a fifth of the image).
    const auto [x, y] = where[k];
    const float at_mark = r.maps[k][y + kMark / 2][x + kMark / 2].item<float>();
    const double hot = (r.maps[k] >= 0.95f).to(torch::kFloat).mean().item<double>();
    const bool on = at_mark >= 0.95f && hot < 0.2;
    if (!on)
      std::printf("mark at (%d, %d): map %.3f there, %.1f%% of the image >= 0.95\n", x, y, at_mark,
                  100 * hot);
    hits += on;
    correct += r.margins[k].item<float>() > 0;
    ++total;
  }
  EXPECT_GE(correct, 8) << "the model did not learn the synthetic task";
  EXPECT_GE(hits, 8) << hits << " of " << total << " maxima on the mark";
}

// Adebayo et al. 2018: Grad-CAM of a model with randomised weights must differ from the trained
// one's.
void GradCam::changes_when_the_weights_are_randomised() {
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<int> pos(4, kSide - kMark - 4);
  std::vector<torch::Tensor> xs;
  for (int k = 0; k < 8; ++k) xs.push_back(make_image(rng, true, pos(rng), pos(rng)));
  const torch::Tensor x = torch::stack(xs).unsqueeze(1);
  const GradCamResult trained = grad_cam(*model(), x);
  torch::manual_seed(1234);
  Classifier random(2);
  random->eval();
  const GradCamResult rnd = grad_cam(*random, x);
  // Compare on a coarse grid (the maps are smooth), as Adebayo et al. do on whole maps.
  namespace F = torch::nn::functional;
  auto coarse = [](const torch::Tensor& m) {
    return F::avg_pool2d(m.unsqueeze(0), F::AvgPool2dFuncOptions(4)).squeeze(0);
  };
  double sum = 0, self = 0;
  for (int k = 0; k < 8; ++k) {
    sum += spearman(coarse(trained.maps[k]), coarse(rnd.maps[k]));
    self += spearman(coarse(trained.maps[k]), coarse(trained.maps[k]));
  }
  EXPECT_NEAR(self / 8, 1.0, 1e-9) << "the correlation itself is broken";
  EXPECT_LT(sum / 8, 0.5) << "mean rank correlation between trained and randomised maps "
                          << sum / 8;
  std::printf("mean Spearman correlation, trained vs randomised weights: %.3f\n", sum / 8);
}

}  // namespace
}  // namespace wristssl::models
