#include "wristssl/data/augment.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

namespace wristssl::data {
namespace {

std::vector<uint16_t> gradient_image(int n) {
  std::vector<uint16_t> img(static_cast<size_t>(n) * n);
  for (int y = 0; y < n; ++y) {
    for (int x = 0; x < n; ++x) img[y * n + x] = static_cast<uint16_t>((x * 65535) / (n - 1));
  }
  return img;
}

TEST(Augment, NoneIsTheImageItself) {
  const auto img = gradient_image(32);
  std::vector<float> out(32 * 32);
  augment_view(img.data(), 32, out.data(), AugmentOptions::none(32), 1);
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], img[i] / 65535.0f, 1e-6) << i;
}

TEST(Augment, HorizontalFlipMirrors) {
  const auto img = gradient_image(32);
  AugmentOptions o = AugmentOptions::none(32);
  o.hflip_p = 1.0;
  std::vector<float> out(32 * 32);
  augment_view(img.data(), 32, out.data(), o, 1);
  for (int y = 0; y < 32; ++y) {
    for (int x = 0; x < 32; ++x) ASSERT_NEAR(out[y * 32 + x], img[y * 32 + 31 - x] / 65535.0f, 1e-6);
  }
}

TEST(Augment, SameSeedSameViewOtherSeedOtherView) {
  const auto img = gradient_image(64);
  const AugmentOptions o = AugmentOptions::xray(48);
  std::vector<float> a(48 * 48), b(48 * 48), c(48 * 48);
  augment_view(img.data(), 64, a.data(), o, mix_seed(7, 1, 2, 1));
  augment_view(img.data(), 64, b.data(), o, mix_seed(7, 1, 2, 1));
  augment_view(img.data(), 64, c.data(), o, mix_seed(7, 1, 2, 2));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  for (float v : a) {
    ASSERT_GE(v, 0.0f);
    ASSERT_LE(v, 1.0f);
  }
}

TEST(Augment, BrightnessShiftsTheMean) {
  std::vector<uint16_t> grey(32 * 32, 32768);
  AugmentOptions o = AugmentOptions::none(32);
  o.brightness = 0.2;
  double lo = 1, hi = 0;
  for (uint64_t s = 0; s < 50; ++s) {
    std::vector<float> out(32 * 32);
    augment_view(grey.data(), 32, out.data(), o, s);
    const double m = std::accumulate(out.begin(), out.end(), 0.0) / out.size();
    lo = std::min(lo, m);
    hi = std::max(hi, m);
    for (float v : out) ASSERT_NEAR(v, out[0], 1e-6) << "brightness is uniform";
  }
  EXPECT_LT(lo, 0.5 - 0.1);
  EXPECT_GT(hi, 0.5 + 0.1);
  EXPECT_GE(lo, 0.5 - 0.2 - 1e-3);
}

TEST(Augment, CropZoomsIn) {
  // A crop of at most a quarter of the area shows a narrower slice of the horizontal ramp.
  const auto img = gradient_image(64);
  AugmentOptions o = AugmentOptions::none(32);
  o.crop_scale_min = o.crop_scale_max = 0.25;
  std::vector<float> out(32 * 32);
  augment_view(img.data(), 64, out.data(), o, 3);
  const float span = out[16 * 32 + 31] - out[16 * 32 + 0];
  EXPECT_NEAR(span, 0.5f, 0.05f);
}

TEST(Augment, PresetsByName) {
  EXPECT_EQ(AugmentOptions::preset("paper", 64).crop_scale_min, 1.0);
  EXPECT_GT(AugmentOptions::preset("xray", 64).blur_p, 0.0);
  // xray-clean is xray without blur and noise, all else equal.
  const AugmentOptions x = AugmentOptions::preset("xray", 64), c = AugmentOptions::preset("xray-clean", 64);
  EXPECT_EQ(c.blur_p, 0.0);
  EXPECT_EQ(c.noise_p, 0.0);
  EXPECT_EQ(c.crop_scale_min, x.crop_scale_min);
  EXPECT_EQ(c.rotation_deg, x.rotation_deg);
  EXPECT_EQ(c.gamma_max, x.gamma_max);
  EXPECT_THROW(AugmentOptions::preset("colour", 64), std::runtime_error);
}

}  // namespace
}  // namespace wristssl::data
