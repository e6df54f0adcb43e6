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

// A black image with one bright box: a view guided to that box must show it, and its mask must mark
// where it shows.
TEST(GuidedCrop, AFracturedCropHoldsItsBox) {
  const int n = 320, out = 96;
  const Box box{0.80, 0.10, 0.86,
                0.15};  // small, near a corner: a random crop would mostly miss it
  std::vector<uint16_t> img(static_cast<size_t>(n) * n, 0);
  for (int y = 0; y < n; ++y) {
    for (int x = 0; x < n; ++x) {
      const double u = (x + 0.5) / n, v = (y + 0.5) / n;
      if (u >= box.x0 && u <= box.x1 && v >= box.y0 && v <= box.y1)
        img[static_cast<size_t>(y) * n + x] = 65535;
    }
  }
  AugmentOptions o = AugmentOptions::classifier(out);
  o.pixel_scale_min = 0.8;
  o.pixel_scale_max = 1.25;
  o.translate = 0;
  o.brightness = o.contrast = 0;  // keep the box's pixels at 1
  const std::vector<Box> boxes{box};
  int unguided_hits = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    std::vector<float> view(out * out), mask(out * out, -1);
    CropGuide g;
    g.boxes = &boxes;
    g.mask = mask.data();
    augment_view(img.data(), n, view.data(), o, seed, g);
    int bright = 0, agree = 0;
    for (int k = 0; k < out * out; ++k) {
      bright += view[k] > 0.5f;
      agree += (view[k] > 0.5f) == (mask[k] > 0.5f);
      ASSERT_TRUE(mask[k] == 0.0f || mask[k] == 1.0f);
    }
    // The box is about 19 x 16 source pixels: at 0.8-1.25 source pixels per output pixel it covers
    // well over 100 output pixels, all inside the crop.
    ASSERT_GT(bright, 100) << "seed " << seed << ": the crop missed its box";
    EXPECT_GT(agree, out * out - 150) << "seed " << seed << ": the mask is not where the box shows";
    std::vector<float> plain(out * out);
    augment_view(img.data(), n, plain.data(), o, seed);
    int b2 = 0;
    for (float v : plain) b2 += v > 0.5f;
    unguided_hits += b2 > 100;
  }
  EXPECT_LT(unguided_hits, 100);  // without the guide, most crops of that size miss the box
}

TEST(GuidedCrop, WithoutBoxesTheCropFallsOnBone) {
  // Left quarter bright (bone), the rest black (background).
  const int n = 256, out = 64;
  std::vector<uint16_t> img(static_cast<size_t>(n) * n, 0);
  for (int y = 0; y < n; ++y) {
    for (int x = 0; x < n / 4; ++x) img[static_cast<size_t>(y) * n + x] = 60000;
  }
  AugmentOptions o = AugmentOptions::none(out);
  o.pixel_scale_min = o.pixel_scale_max = 1.0;
  double guided = 0, plain = 0;
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    std::vector<float> a(out * out), b(out * out);
    CropGuide g;
    g.bone_candidates = 4;
    augment_view(img.data(), n, a.data(), o, seed, g);
    augment_view(img.data(), n, b.data(), o, seed);
    guided += std::accumulate(a.begin(), a.end(), 0.0) / a.size();
    plain += std::accumulate(b.begin(), b.end(), 0.0) / b.size();
  }
  EXPECT_GT(guided / 100, 1.5 * plain / 100)
      << "guided " << guided / 100 << ", random " << plain / 100;
}

TEST(GuidedCrop, AnEmptyGuideChangesNothing) {
  const auto img = gradient_image(64);
  const AugmentOptions o = AugmentOptions::xray(48);
  std::vector<float> a(48 * 48), b(48 * 48);
  augment_view(img.data(), 64, a.data(), o, 77);
  augment_view(img.data(), 64, b.data(), o, 77, CropGuide{});
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace wristssl::data
