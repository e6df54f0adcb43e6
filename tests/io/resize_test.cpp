#include "wristssl/io/resize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace wristssl::io {
namespace {

// The area of [a, b) x [c, d) in the input, integrated by brute force: each input pixel split in 8x8.
double brute_area(const std::vector<float>& in, int w, double x0, double x1, double y0, double y1) {
  constexpr int kSub = 8;
  double acc = 0, n = 0;
  for (int y = static_cast<int>(y0 * kSub); y < static_cast<int>(y1 * kSub + 1e-9); ++y) {
    for (int x = static_cast<int>(x0 * kSub); x < static_cast<int>(x1 * kSub + 1e-9); ++x) {
      acc += in[(y / kSub) * w + x / kSub];
      n += 1;
    }
  }
  return acc / n;
}

TEST(Resize, AreaDownscaleMatchesBruteForceIntegral) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0, 1);
  const int w = 20, h = 12, ow = 8, oh = 3;  // ratios 2.5 and 4 (scales land on 1/8 sub-pixels)
  std::vector<float> in(w * h);
  for (auto& v : in) v = u(rng);
  const auto out = resize_image(in, w, h, ow, oh);
  for (int y = 0; y < oh; ++y) {
    for (int x = 0; x < ow; ++x) {
      const double sx = double(w) / ow, sy = double(h) / oh;
      EXPECT_NEAR(out[y * ow + x], brute_area(in, w, x * sx, (x + 1) * sx, y * sy, (y + 1) * sy), 1e-5);
    }
  }
}

TEST(Resize, ConstantImageStaysConstantAndMeanIsKeptWhenShrinking) {
  std::vector<float> c(37 * 23, 0.25f);
  for (float v : resize_image(c, 37, 23, 16, 16)) EXPECT_NEAR(v, 0.25f, 1e-6);
  for (float v : resize_image(c, 37, 23, 64, 50)) EXPECT_NEAR(v, 0.25f, 1e-6);
  std::vector<float> ramp(40 * 40);
  for (int i = 0; i < 40 * 40; ++i) ramp[i] = (i % 40) / 39.0f;
  double m_in = 0, m_out = 0;
  for (float v : ramp) m_in += v / ramp.size();
  const auto small = resize_image(ramp, 40, 40, 10, 10);
  for (float v : small) m_out += v / small.size();
  EXPECT_NEAR(m_in, m_out, 1e-6);
}

TEST(Resize, BilinearUpscaleHalfPixelCentres) {
  // [0, 1] to 4 samples: centres at -0.25, 0.25, 0.75, 1.25 clamp to 0, 0.25, 0.75, 1.
  const auto out = resize_image({0.0f, 1.0f}, 2, 1, 4, 1);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_NEAR(out[0], 0.0f, 1e-6);
  EXPECT_NEAR(out[1], 0.25f, 1e-6);
  EXPECT_NEAR(out[2], 0.75f, 1e-6);
  EXPECT_NEAR(out[3], 1.0f, 1e-6);
}

TEST(Resize, LetterboxKeepsAspectAndCentres) {
  std::vector<float> in(40 * 20, 1.0f);  // 40 wide, 20 high
  int box[4];
  const auto out = resize_letterbox(in, 40, 20, 16, 0.0f, box);
  EXPECT_EQ(box[0], 0);
  EXPECT_EQ(box[1], 4);
  EXPECT_EQ(box[2], 16);
  EXPECT_EQ(box[3], 8);
  EXPECT_EQ(out[0], 0.0f);             // pad row
  EXPECT_NEAR(out[8 * 16 + 8], 1.0f, 1e-6);  // content
}

TEST(Resize, BadSizesThrow) { EXPECT_THROW(resize_image({1.0f}, 2, 2, 1, 1), std::invalid_argument); }

}  // namespace
}  // namespace wristssl::io
