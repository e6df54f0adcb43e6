#include "wristssl/report/heatmap.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace wristssl::report {
namespace {

// Turbo sampled at v = k / 64 (k = 0..64) from Google's published 256-entry sRGB table (Apache-2.0,
// Anton Mikhailov, 2019) and rounded to 8 bits; linear interpolation between these samples stays
// within 0.91 / 255 of every table entry.
constexpr uint8_t kTurbo[65][3] = {
    {48, 18, 59},   {53, 30, 88},   {57, 42, 115},  {61, 53, 139},  {64, 64, 161},   {66, 75, 181},
    {68, 86, 199},  {70, 97, 214},  {70, 107, 227}, {71, 117, 238}, {70, 127, 246},  {69, 137, 252},
    {66, 147, 255}, {61, 157, 254}, {55, 167, 250}, {48, 177, 244}, {41, 187, 236},  {34, 196, 227},
    {29, 205, 216}, {25, 213, 206}, {24, 220, 195}, {25, 227, 185}, {30, 232, 176},  {38, 237, 165},
    {49, 242, 153}, {62, 246, 140}, {76, 249, 126}, {92, 251, 113}, {107, 253, 100}, {123, 254, 88},
    {138, 255, 77}, {151, 254, 67}, {163, 253, 60}, {173, 250, 56}, {184, 247, 53},  {194, 242, 52},
    {204, 237, 52}, {213, 230, 53}, {222, 224, 55}, {230, 216, 56}, {237, 208, 58},  {243, 200, 58},
    {248, 192, 58}, {251, 183, 56}, {253, 174, 53}, {254, 163, 49}, {254, 152, 44},  {253, 140, 39},
    {251, 128, 34}, {249, 116, 29}, {245, 104, 23}, {241, 93, 19},  {236, 82, 15},   {230, 73, 11},
    {224, 64, 9},   {217, 56, 7},   {210, 49, 5},   {202, 42, 4},   {192, 35, 2},    {183, 29, 2},
    {172, 23, 1},   {161, 17, 1},   {149, 13, 1},   {136, 8, 2},    {122, 4, 3}};
constexpr int kTurboSteps = 64;

// Below this map value the overlay fades out, so that cold regions show the radiograph.
constexpr double kFadeBelow = 0.2;
constexpr int kBarGap = 4;
constexpr int kBarWidth = 12;
constexpr uint8_t kBorderGrey = 128;

double unit(float v) { return std::isnan(v) ? 0.0 : std::clamp(static_cast<double>(v), 0.0, 1.0); }

uint8_t to_byte(double v) { return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 255.0))); }

}  // namespace

std::array<uint8_t, 3> colormap_turbo(double v) {
  v = std::isnan(v) ? 0.0 : std::clamp(v, 0.0, 1.0);
  const double t = v * kTurboSteps;
  const int i = std::min(static_cast<int>(t), kTurboSteps - 1);
  const double f = t - i;
  std::array<uint8_t, 3> out{};
  for (int c = 0; c < 3; ++c)
    out[c] = to_byte(kTurbo[i][c] + (kTurbo[i + 1][c] - kTurbo[i][c]) * f);
  return out;
}

Overlay overlay_heatmap(const std::vector<float>& grey, const std::vector<float>& cam, int width,
                        int height, float alpha, bool scale_bar) {
  const size_t n =
      width > 0 && height > 0 ? static_cast<size_t>(width) * static_cast<size_t>(height) : 0;
  if (n == 0 || grey.size() != n || cam.size() != n) {
    throw std::invalid_argument("overlay_heatmap: image is " + std::to_string(width) + "x" +
                                std::to_string(height) + " but grey holds " +
                                std::to_string(grey.size()) + " and cam " +
                                std::to_string(cam.size()) + " values");
  }
  if (!(alpha >= 0.0f && alpha <= 1.0f)) {
    throw std::invalid_argument("overlay_heatmap: alpha " + std::to_string(alpha) +
                                " is not in [0, 1]");
  }
  Overlay o;
  o.width = width + (scale_bar ? kBarGap + kBarWidth : 0);
  o.height = height;
  o.rgb.assign(static_cast<size_t>(o.width) * static_cast<size_t>(height) * 3, 255);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const size_t i = static_cast<size_t>(y) * static_cast<size_t>(width) + static_cast<size_t>(x);
      const double g = unit(grey[i]) * 255.0, c = unit(cam[i]);
      const double a = alpha * std::min(1.0, c / kFadeBelow);
      const std::array<uint8_t, 3> heat = colormap_turbo(c);
      uint8_t* p =
          &o.rgb[(static_cast<size_t>(y) * static_cast<size_t>(o.width) + static_cast<size_t>(x)) *
                 3];
      for (int k = 0; k < 3; ++k) p[k] = to_byte((1.0 - a) * g + a * heat[k]);
    }
  }
  if (scale_bar) {
    const int x0 = width + kBarGap;
    for (int y = 0; y < height; ++y) {
      // Inside the border, the first row is turbo(1) and the last turbo(0).
      const double v = height > 3 ? 1.0 - static_cast<double>(y - 1) / (height - 3) : 1.0;
      const std::array<uint8_t, 3> colour = colormap_turbo(v);
      for (int x = x0; x < x0 + kBarWidth; ++x) {
        const bool border = x == x0 || x == x0 + kBarWidth - 1 || y == 0 || y == height - 1;
        uint8_t* p = &o.rgb[(static_cast<size_t>(y) * static_cast<size_t>(o.width) +
                             static_cast<size_t>(x)) *
                            3];
        for (int k = 0; k < 3; ++k) p[k] = border ? kBorderGrey : colour[k];
      }
    }
  }
  return o;
}

void draw_box(Overlay& image, int x0, int y0, int x1, int y1, std::array<uint8_t, 3> colour,
              bool dashed, int thickness) {
  const int w = image.width, h = image.height;
  if (x1 <= x0 || y1 <= y0 || w <= 0 || h <= 0) return;
  const int t = std::max(1, thickness), dash = 3 * t;
  auto put = [&](int x, int y, std::array<uint8_t, 3> c) {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    uint8_t* p = &image.rgb[(static_cast<size_t>(y) * w + x) * 3];
    p[0] = c[0], p[1] = c[1], p[2] = c[2];
  };
  // Position along the outline decides dash or gap: running clockwise from the top-left corner.
  auto on = [&](int along) { return !dashed || (along / dash) % 2 == 0; };
  const std::array<uint8_t, 3> black = {0, 0, 0};
  // The dark rim first (one pixel outside), then the coloured band inside it.
  for (int layer = -1; layer < t; ++layer) {
    const std::array<uint8_t, 3> c = layer < 0 ? black : colour;
    const int l = x0 + layer, r = x1 - 1 - layer, top = y0 + layer, bottom = y1 - 1 - layer;
    if (l > r || top > bottom) break;
    for (int x = l; x <= r; ++x) {
      if (on(x - x0)) put(x, top, c), put(x, bottom, c);
    }
    for (int y = top; y <= bottom; ++y) {
      if (on(y - y0)) put(l, y, c), put(r, y, c);
    }
  }
}

}  // namespace wristssl::report
