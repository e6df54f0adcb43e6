#include "wristssl/report/heatmap.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <vector>

namespace wristssl::report {
namespace {

// `got` against entries of Google's published 256-entry Turbo table (turbo_srgb_floats, values in
// [0, 1]): index 0, 40, 200 and 255, and the mean of 127 and 128 for v = 0.5.
void expect_near_table(std::array<uint8_t, 3> got, double r, double g, double b, const char* what) {
  EXPECT_NEAR(got[0], r * 255, 2.0) << what;
  EXPECT_NEAR(got[1], g * 255, 2.0) << what;
  EXPECT_NEAR(got[2], b * 255, 2.0) << what;
}

TEST(Heatmap, TurboMatchesThePublishedTable) {
  expect_near_table(colormap_turbo(0.0), 0.18995, 0.07176, 0.23217, "0: dark blue-violet");
  expect_near_table(colormap_turbo(0.5), (0.63323 + 0.64362) / 2, (0.99195 + 0.98999) / 2,
                    (0.23937 + 0.23356) / 2, "0.5: green-yellow");
  expect_near_table(colormap_turbo(1.0), 0.47960, 0.01583, 0.01055, "1: dark red");
  expect_near_table(colormap_turbo(40.0 / 255), 0.27543, 0.50115, 0.96594, "entry 40: blue");
  expect_near_table(colormap_turbo(200.0 / 255), 0.95801, 0.39958, 0.08831, "entry 200: orange");
  // Clamped outside [0, 1]; NaN reads as 0.
  EXPECT_EQ(colormap_turbo(-3.0), colormap_turbo(0.0));
  EXPECT_EQ(colormap_turbo(7.0), colormap_turbo(1.0));
  EXPECT_EQ(colormap_turbo(std::nan("")), colormap_turbo(0.0));
}

TEST(Heatmap, TurboIsContinuous) {
  // Neighbouring inputs 1/1024 apart never jump by more than a few levels (no seams between
  // samples).
  for (int i = 0; i < 1024; ++i) {
    const auto a = colormap_turbo(i / 1024.0), b = colormap_turbo((i + 1) / 1024.0);
    for (int c = 0; c < 3; ++c) ASSERT_LE(std::abs(a[c] - b[c]), 3) << i << " channel " << c;
  }
}

// A 6x4 ramp for grey and cam.
struct Inputs {
  int w = 6, h = 4;
  std::vector<float> grey, cam;
  Inputs() {
    for (int i = 0; i < w * h; ++i) {
      grey.push_back(static_cast<float>(i) / (w * h - 1));
      cam.push_back(static_cast<float>((i * 7) % (w * h)) / (w * h - 1));
    }
  }
};

uint8_t grey_byte(float v) { return static_cast<uint8_t>(std::lround(v * 255.0)); }

TEST(Heatmap, AlphaZeroIsTheGreyImage) {
  const Inputs in;
  const Overlay o = overlay_heatmap(in.grey, in.cam, in.w, in.h, 0.0f, false);
  ASSERT_EQ(o.width, in.w);
  ASSERT_EQ(o.height, in.h);
  ASSERT_EQ(o.rgb.size(), static_cast<size_t>(in.w * in.h * 3));
  for (size_t i = 0; i < in.grey.size(); ++i) {
    for (int c = 0; c < 3; ++c) ASSERT_EQ(o.rgb[i * 3 + c], grey_byte(in.grey[i])) << i;
  }
}

TEST(Heatmap, BlendFollowsTheFormula) {
  const int w = 5, h = 1;
  const std::vector<float> grey = {0.5f, 0.5f, 0.5f, 0.25f, NAN};
  const std::vector<float> cam = {0.0f, 0.1f, 0.2f, 1.0f, 0.9f};  // last: NaN grey reads as 0
  const float alpha = 0.45f;
  const Overlay o = overlay_heatmap(grey, cam, w, h, alpha, false);
  const double a[5] = {0.0, alpha * 0.5, alpha, alpha, alpha};  // ramp to alpha at cam 0.2
  const double g[5] = {127.5, 127.5, 127.5, 63.75, 0.0};
  for (int x = 0; x < w; ++x) {
    const auto heat = colormap_turbo(cam[static_cast<size_t>(x)]);
    for (int c = 0; c < 3; ++c) {
      const double want = (1 - a[x]) * g[x] + a[x] * heat[c];
      EXPECT_NEAR(o.rgb[static_cast<size_t>(x) * 3 + c], want, 0.51)
          << "pixel " << x << " channel " << c;
    }
  }
  // Where the map is cold the radiograph is untouched; NaN in the map is cold.
  EXPECT_EQ(o.rgb[0], 128);
  const Overlay nan_cam = overlay_heatmap({0.5f}, {NAN}, 1, 1, alpha, false);
  EXPECT_EQ(nan_cam.rgb, std::vector<uint8_t>(3, 128));
}

TEST(Heatmap, ScaleBarSitsOnTheRightWithTurboFromTopToBottom) {
  const int w = 10, h = 40;
  const std::vector<float> grey(w * h, 0.0f), cam(w * h, 0.0f);
  const Overlay o = overlay_heatmap(grey, cam, w, h);
  ASSERT_EQ(o.width, w + 4 + 12);
  ASSERT_EQ(o.height, h);
  auto px = [&](int x, int y) {
    const size_t i = (static_cast<size_t>(y) * o.width + x) * 3;
    return std::array<uint8_t, 3>{o.rgb[i], o.rgb[i + 1], o.rgb[i + 2]};
  };
  const std::array<uint8_t, 3> white{255, 255, 255}, border{128, 128, 128};
  for (int y = 0; y < h; ++y) {
    for (int x = w; x < w + 4; ++x) ASSERT_EQ(px(x, y), white) << "gap at " << x << "," << y;
    ASSERT_EQ(px(w + 4, y), border) << "left border, row " << y;
    ASSERT_EQ(px(w + 15, y), border) << "right border, row " << y;
  }
  for (int x = w + 4; x < w + 16; ++x) {
    EXPECT_EQ(px(x, 0), border) << "top border";
    EXPECT_EQ(px(x, h - 1), border) << "bottom border";
  }
  // Inside the border: turbo(1) in the first row, turbo(0) in the last, the whole width of the bar.
  for (int x = w + 5; x < w + 15; ++x) {
    EXPECT_EQ(px(x, 1), colormap_turbo(1.0)) << x;
    EXPECT_EQ(px(x, h - 2), colormap_turbo(0.0)) << x;
    EXPECT_EQ(px(x, h / 2), px(w + 5, h / 2)) << "one colour per row";
  }
  // The image part is untouched by the bar (black radiograph, cold map).
  EXPECT_EQ(px(w - 1, 0), (std::array<uint8_t, 3>{0, 0, 0}));
}

TEST(Heatmap, SizeMismatchThrows) {
  const Inputs in;
  EXPECT_NO_THROW(overlay_heatmap(in.grey, in.cam, in.w, in.h));
  EXPECT_THROW(overlay_heatmap(in.grey, in.cam, in.h, in.h), std::invalid_argument);
  std::vector<float> short_cam = in.cam;
  short_cam.pop_back();
  EXPECT_THROW(overlay_heatmap(in.grey, short_cam, in.w, in.h), std::invalid_argument);
  EXPECT_THROW(overlay_heatmap({}, {}, 0, 0), std::invalid_argument);
  EXPECT_THROW(overlay_heatmap(in.grey, in.cam, in.w, in.h, 1.5f), std::invalid_argument);
  EXPECT_THROW(overlay_heatmap(in.grey, in.cam, in.w, in.h, NAN), std::invalid_argument);
}

TEST(Heatmap, BoxesAreDrawnSolidOrDashedWithADarkRim) {
  Overlay o;
  o.width = 40, o.height = 30;
  o.rgb.assign(static_cast<size_t>(o.width) * o.height * 3, 128);
  auto px = [&](int x, int y) { return o.rgb[(static_cast<size_t>(y) * o.width + x) * 3]; };
  draw_box(o, 10, 5, 30, 25, {255, 255, 255}, false, 2);
  // Solid: every pixel of the 2 px band inside the rectangle is white, the rim outside black.
  for (int x = 10; x < 30; ++x) EXPECT_EQ(px(x, 5), 255) << x;
  for (int y = 5; y < 25; ++y) EXPECT_EQ(px(29, y), 255) << y;
  EXPECT_EQ(px(11, 6), 255);
  EXPECT_EQ(px(12, 7), 128);  // inside the band: untouched
  EXPECT_EQ(px(20, 15), 128);
  EXPECT_EQ(px(9, 15), 0);  // the rim, one pixel outside
  EXPECT_EQ(px(20, 4), 0);
  // Dashed: dashes of 6 px with gaps of 6 px along the top edge.
  o.rgb.assign(o.rgb.size(), 128);
  draw_box(o, 10, 5, 30, 25, {255, 255, 255}, true, 2);
  EXPECT_EQ(px(10, 5), 255);
  EXPECT_EQ(px(15, 5), 255);
  EXPECT_EQ(px(16, 5), 128);
  EXPECT_EQ(px(21, 5), 128);
  EXPECT_EQ(px(22, 5), 255);
  // Clipped at the image's edges; an empty box draws nothing.
  const std::vector<uint8_t> before = o.rgb;
  draw_box(o, 5, 5, 5, 20, {255, 0, 0});
  EXPECT_EQ(o.rgb, before);
  draw_box(o, -10, -10, 100, 100, {255, 0, 0});  // every line outside the image
  EXPECT_EQ(o.rgb, before);
  draw_box(o, -1, -1, 100, 100, {255, 0, 0}, false, 2);  // the second layer lands on row 0
  EXPECT_EQ(px(5, 0), 255);
  EXPECT_EQ(px(5, 1), 128);
}

}  // namespace
}  // namespace wristssl::report
