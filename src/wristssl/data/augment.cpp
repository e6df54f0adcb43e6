#include "wristssl/data/augment.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

namespace wristssl::data {
namespace {

constexpr double kPi = 3.14159265358979323846;

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Uniform doubles from a seeded engine, identical on every platform (no std::distribution,
// whose output is implementation-defined).
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  double uniform() { return (engine_() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  bool chance(double p) { return p > 0 && uniform() < p; }
  double normal() {  // Box-Muller
    const double u1 = std::max(uniform(), 1e-300), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * kPi * u2);
  }

 private:
  std::mt19937_64 engine_;
};

void gaussian_blur(float* img, int n, double sigma) {
  const int radius = std::max(1, static_cast<int>(std::ceil(3 * sigma)));
  std::vector<float> k(2 * radius + 1);
  double sum = 0;
  for (int i = -radius; i <= radius; ++i)
    sum += k[i + radius] = static_cast<float>(std::exp(-0.5 * i * i / (sigma * sigma)));
  for (auto& v : k) v = static_cast<float>(v / sum);
  std::vector<float> tmp(static_cast<size_t>(n) * n);
  for (int y = 0; y < n; ++y) {  // rows, clamped borders
    const float* row = img + static_cast<size_t>(y) * n;
    for (int x = 0; x < n; ++x) {
      float acc = 0;
      for (int i = -radius; i <= radius; ++i)
        acc += k[i + radius] * row[std::clamp(x + i, 0, n - 1)];
      tmp[static_cast<size_t>(y) * n + x] = acc;
    }
  }
  for (int y = 0; y < n; ++y) {
    float* out = img + static_cast<size_t>(y) * n;
    std::fill(out, out + n, 0.0f);
    for (int i = -radius; i <= radius; ++i) {
      const float* src = tmp.data() + static_cast<size_t>(std::clamp(y + i, 0, n - 1)) * n;
      for (int x = 0; x < n; ++x) out[x] += k[i + radius] * src[x];
    }
  }
}

// The crop centre (cx, cy) as the guide asks: inside the allowed range so that a drawn box lies
// well within the crop, or the brightest of several random positions. The draws come from `rng`
// after the crop's size, so a guide-less view is unchanged.
void place_crop(const uint16_t* src, int size, double cw, double ch, const CropGuide& g, Rng& rng,
                double& cx, double& cy) {
  if (g.boxes && !g.boxes->empty()) {
    const Box& b =
        (*g.boxes)[static_cast<size_t>(rng.uniform() * g.boxes->size()) % g.boxes->size()];
    auto axis = [&](double lo_box, double hi_box, double side) {
      const double m = 0.15 * side;  // the box's far edge at least this far inside
      const double lo = std::max(side / 2, hi_box * size - side / 2 + m);
      const double hi = std::min(size - side / 2, lo_box * size + side / 2 - m);
      if (lo <= hi) return rng.uniform(lo, hi);
      // The box is larger than the crop allows (or at the image's edge): centred on it.
      return std::clamp((lo_box + hi_box) / 2 * size, side / 2, size - side / 2);
    };
    cx = axis(b.x0, b.x1, cw);
    cy = axis(b.y0, b.y1, ch);
    return;
  }
  if (g.bone_candidates <= 0) return;
  double best = -1;
  for (int k = 0; k < g.bone_candidates; ++k) {
    const double x = k == 0 ? cx : rng.uniform(cw / 2, size - cw / 2);
    const double y = k == 0 ? cy : rng.uniform(ch / 2, size - ch / 2);
    double sum = 0;  // mean brightness on an 8 x 8 grid over the window
    for (int j = 0; j < 8; ++j) {
      for (int i = 0; i < 8; ++i) {
        const int px = std::clamp(static_cast<int>(x - cw / 2 + (i + 0.5) * cw / 8), 0, size - 1);
        const int py = std::clamp(static_cast<int>(y - ch / 2 + (j + 0.5) * ch / 8), 0, size - 1);
        sum += src[static_cast<size_t>(py) * size + px];
      }
    }
    if (sum > best) {
      best = sum;
      cx = x;
      cy = y;
    }
  }
}

// 1 where output pixel (u, v), mapped through the view's affine map to the source, lies in a box.
void box_mask(const CropGuide& g, int size, int n, double a11, double a12, double a21, double a22,
              double b1, double b2) {
  for (int v = 0; v < n; ++v) {
    for (int u = 0; u < n; ++u) {
      // Source pixel-index coordinates -> normalised image coordinates (pixel centres at i + 0.5).
      const double x = (a11 * u + a12 * v + b1 + 0.5) / size;
      const double y = (a21 * u + a22 * v + b2 + 0.5) / size;
      bool in = false;
      if (g.boxes) {
        for (const Box& b : *g.boxes) in = in || (x >= b.x0 && x <= b.x1 && y >= b.y0 && y <= b.y1);
      }
      g.mask[static_cast<size_t>(v) * n + u] = in ? 1.0f : 0.0f;
    }
  }
}

}  // namespace

AugmentOptions AugmentOptions::none(int out_size) {
  AugmentOptions o;
  o.out_size = out_size;
  o.crop_scale_min = o.crop_scale_max = 1.0;
  o.crop_ratio_min = o.crop_ratio_max = 1.0;
  o.rotation_deg = o.translate = o.hflip_p = o.vflip_p = 0;
  o.brightness = o.contrast = 0;
  o.gamma_min = o.gamma_max = 1.0;
  o.blur_p = o.noise_p = 0;
  return o;
}

AugmentOptions AugmentOptions::paper(int out_size) {
  AugmentOptions o = none(out_size);
  o.rotation_deg = 15;
  o.translate = 0.1;
  o.hflip_p = 0.5;
  o.vflip_p = 0.5;
  o.brightness = 0.2;
  return o;
}

AugmentOptions AugmentOptions::xray(int out_size) {
  AugmentOptions o;
  o.out_size = out_size;
  return o;
}

AugmentOptions AugmentOptions::xray_clean(int out_size) {
  AugmentOptions o = xray(out_size);
  o.blur_p = o.noise_p = 0;
  return o;
}

AugmentOptions AugmentOptions::classifier(int out_size) {
  AugmentOptions o = none(out_size);
  o.crop_scale_min = 0.7;
  o.crop_ratio_min = 0.9;
  o.crop_ratio_max = 1.1;
  o.rotation_deg = 10;
  o.translate = 0.05;
  o.hflip_p = 0.5;
  o.brightness = 0.1;
  o.contrast = 0.1;
  return o;
}

AugmentOptions AugmentOptions::preset(const std::string& name, int out_size) {
  if (name == "none") return none(out_size);
  if (name == "paper") return paper(out_size);
  if (name == "xray") return xray(out_size);
  if (name == "xray-clean") return xray_clean(out_size);
  if (name == "classifier") return classifier(out_size);
  throw std::runtime_error("unknown augmentation preset '" + name +
                           "' (none, paper, xray, xray-clean, classifier)");
}

uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
  return splitmix64(splitmix64(splitmix64(splitmix64(a) ^ b) ^ c) ^ d);
}

void augment_view(const uint16_t* src, int size, float* dst, const AugmentOptions& o,
                  uint64_t seed) {
  augment_view(src, size, dst, o, seed, CropGuide{});
}

void augment_view(const uint16_t* src, int size, float* dst, const AugmentOptions& o, uint64_t seed,
                  const CropGuide& guide) {
  Rng rng(seed);
  const int n = o.out_size;
  // Geometry: the crop (in source pixels), then rotation, translation and flips about its centre.
  const double area = rng.uniform(o.crop_scale_min, o.crop_scale_max);
  const double ratio =
      std::exp(rng.uniform(std::log(o.crop_ratio_min), std::log(o.crop_ratio_max)));
  double cw = std::min(1.0, std::sqrt(area * ratio)) * size;
  double ch = std::min(1.0, std::sqrt(area / ratio)) * size;
  if (o.pixel_scale_max > 0) {
    const double side = n * rng.uniform(o.pixel_scale_min, o.pixel_scale_max);
    cw = std::min<double>(size, side * std::sqrt(ratio));
    ch = std::min<double>(size, side / std::sqrt(ratio));
  }
  double cx = rng.uniform(cw / 2, size - cw / 2);
  double cy = rng.uniform(ch / 2, size - ch / 2);
  place_crop(src, size, cw, ch, guide, rng, cx, cy);
  const double theta = rng.uniform(-o.rotation_deg, o.rotation_deg) * kPi / 180;
  const double tx = rng.uniform(-o.translate, o.translate) * size;
  const double ty = rng.uniform(-o.translate, o.translate) * size;
  const double fx = rng.chance(o.hflip_p) ? -1 : 1;
  const double fy = rng.chance(o.vflip_p) ? -1 : 1;
  // Output pixel (u, v) -> p = ((u + 0.5) / n - 0.5, ...) in [-0.5, 0.5]^2, flipped, rotated,
  // scaled by the crop, moved to the crop centre plus translation; minus 0.5 for pixel centres.
  const double c = std::cos(theta), s = std::sin(theta);
  const double a11 = c * cw * fx / n, a12 = -s * ch * fy / n;
  const double a21 = s * cw * fx / n, a22 = c * ch * fy / n;
  const double b1 = cx + tx - 0.5 - (a11 + a12) * (n / 2.0 - 0.5);
  const double b2 = cy + ty - 0.5 - (a21 + a22) * (n / 2.0 - 0.5);
  // Area-average when the crop is much larger than the output (keeps fine texture from aliasing):
  // sample a k x k grid per output pixel.
  const double shrink = std::max(cw, ch) / n;
  const int taps = std::clamp(static_cast<int>(std::ceil(shrink - 0.25)), 1, 4);
  constexpr float kScale = 1.0f / 65535.0f;
  if (taps == 1 && n == size && a11 == 1 && a12 == 0 && a21 == 0 && a22 == 1 && b1 == 0 &&
      b2 == 0) {
    // The identity (evaluation at the cached size): the bilinear pass below would return exactly
    // src * kScale.
    for (size_t i = 0; i < static_cast<size_t>(n) * n; ++i) dst[i] = src[i] * kScale;
  } else {
    for (int v = 0; v < n; ++v) {
      for (int u = 0; u < n; ++u) {
        float acc = 0;
        for (int ty_i = 0; ty_i < taps; ++ty_i) {
          for (int tx_i = 0; tx_i < taps; ++tx_i) {
            const double uu = u + (tx_i + 0.5) / taps - 0.5, vv = v + (ty_i + 0.5) / taps - 0.5;
            const double x = a11 * uu + a12 * vv + b1, y = a21 * uu + a22 * vv + b2;
            const int x0 = static_cast<int>(std::floor(x)), y0 = static_cast<int>(std::floor(y));
            const float wx = static_cast<float>(x - x0), wy = static_cast<float>(y - y0);
            auto at = [&](int xi, int yi) -> float {  // black outside the image
              return (xi < 0 || yi < 0 || xi >= size || yi >= size)
                         ? 0.0f
                         : src[static_cast<size_t>(yi) * size + xi] * kScale;
            };
            acc += (1 - wy) * ((1 - wx) * at(x0, y0) + wx * at(x0 + 1, y0)) +
                   wy * ((1 - wx) * at(x0, y0 + 1) + wx * at(x0 + 1, y0 + 1));
          }
        }
        dst[static_cast<size_t>(v) * n + u] = acc / static_cast<float>(taps * taps);
      }
    }
  }
  if (guide.mask) box_mask(guide, size, n, a11, a12, a21, a22, b1, b2);
  // Intensity: brightness, contrast about the mean, gamma; then blur and noise.
  const size_t count = static_cast<size_t>(n) * n;
  const float brightness = static_cast<float>(rng.uniform(-o.brightness, o.brightness));
  const float contrast = static_cast<float>(rng.uniform(1 - o.contrast, 1 + o.contrast));
  const double gamma = std::exp(rng.uniform(std::log(o.gamma_min), std::log(o.gamma_max)));
  const bool blur = rng.chance(o.blur_p);
  const double sigma = rng.uniform(0.1, std::max(0.1, o.blur_sigma_max));
  const bool noise = rng.chance(o.noise_p);
  if (brightness != 0 || contrast != 1 || gamma != 1) {
    double mean = 0;
    for (size_t i = 0; i < count; ++i) mean += dst[i];
    const float m = static_cast<float>(mean / count);
    for (size_t i = 0; i < count; ++i) {
      float x = std::clamp((dst[i] - m) * contrast + m + brightness, 0.0f, 1.0f);
      if (gamma != 1) x = static_cast<float>(std::pow(x, gamma));
      dst[i] = x;
    }
  }
  if (blur) gaussian_blur(dst, n, sigma);
  if (noise && o.noise_std > 0) {
    for (size_t i = 0; i < count; ++i)
      dst[i] = std::clamp(dst[i] + static_cast<float>(o.noise_std * rng.normal()), 0.0f, 1.0f);
  }
}

}  // namespace wristssl::data
