#include "wristssl/io/resize.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace wristssl::io {
namespace {

// Sparse 1-D resampling weights: output o takes sum_k w[k] * in[first[o] + k].
struct Kernel {
  std::vector<int> first;
  std::vector<int> count;
  std::vector<float> weights;  // count[o] weights per output, flattened
  std::vector<int> offset;
};

Kernel make_kernel(int in, int out) {
  Kernel k;
  k.first.resize(out);
  k.count.resize(out);
  k.offset.resize(out);
  const double scale = static_cast<double>(in) / out;
  for (int o = 0; o < out; ++o) {
    k.offset[o] = static_cast<int>(k.weights.size());
    if (out < in) {
      // Area: output pixel covers [o*scale, (o+1)*scale) of the input; weight = overlap / scale.
      const double lo = o * scale, hi = (o + 1) * scale;
      const int i0 = static_cast<int>(std::floor(lo));
      const int i1 = std::min(in, static_cast<int>(std::ceil(hi)));
      k.first[o] = i0;
      for (int i = i0; i < i1; ++i) {
        const double overlap = std::min<double>(hi, i + 1) - std::max<double>(lo, i);
        k.weights.push_back(static_cast<float>(overlap / scale));
      }
      k.count[o] = i1 - i0;
    } else {
      // Bilinear, half-pixel centres, clamped at the borders (align_corners = false).
      const double src = std::max(0.0, (o + 0.5) * scale - 0.5);
      const int i0 = std::min(static_cast<int>(src), in - 1);
      const int i1 = std::min(i0 + 1, in - 1);
      const float t = static_cast<float>(src - i0);
      k.first[o] = i0;
      if (i1 == i0) {
        k.weights.push_back(1.0f);
        k.count[o] = 1;
      } else {
        k.weights.push_back(1.0f - t);
        k.weights.push_back(t);
        k.count[o] = 2;
      }
    }
  }
  return k;
}

}  // namespace

std::vector<float> resize_image(const std::vector<float>& pixels, int width, int height, int out_width,
                                int out_height) {
  if (width <= 0 || height <= 0 || out_width <= 0 || out_height <= 0 ||
      pixels.size() != static_cast<size_t>(width) * height) {
    throw std::invalid_argument("resize_image: bad sizes " + std::to_string(width) + "x" +
                                std::to_string(height) + " -> " + std::to_string(out_width) + "x" +
                                std::to_string(out_height) + " with " + std::to_string(pixels.size()) +
                                " pixels");
  }
  if (width == out_width && height == out_height) return pixels;
  const Kernel kx = make_kernel(width, out_width);
  const Kernel ky = make_kernel(height, out_height);
  // Rows first: [height, out_width], then columns: [out_height, out_width].
  std::vector<float> tmp(static_cast<size_t>(height) * out_width);
  for (int y = 0; y < height; ++y) {
    const float* row = pixels.data() + static_cast<size_t>(y) * width;
    float* dst = tmp.data() + static_cast<size_t>(y) * out_width;
    for (int o = 0; o < out_width; ++o) {
      const float* w = kx.weights.data() + kx.offset[o];
      float acc = 0;
      for (int k = 0; k < kx.count[o]; ++k) acc += w[k] * row[kx.first[o] + k];
      dst[o] = acc;
    }
  }
  std::vector<float> out(static_cast<size_t>(out_height) * out_width, 0.0f);
  for (int o = 0; o < out_height; ++o) {
    float* dst = out.data() + static_cast<size_t>(o) * out_width;
    const float* w = ky.weights.data() + ky.offset[o];
    for (int k = 0; k < ky.count[o]; ++k) {
      const float* src = tmp.data() + static_cast<size_t>(ky.first[o] + k) * out_width;
      for (int x = 0; x < out_width; ++x) dst[x] += w[k] * src[x];
    }
  }
  return out;
}

std::vector<float> resize_letterbox(const std::vector<float>& pixels, int width, int height, int size,
                                    float pad_value, int content[4]) {
  const double s = std::min(static_cast<double>(size) / width, static_cast<double>(size) / height);
  const int w = std::max(1, static_cast<int>(std::lround(width * s)));
  const int h = std::max(1, static_cast<int>(std::lround(height * s)));
  const std::vector<float> inner = resize_image(pixels, width, height, w, h);
  std::vector<float> out(static_cast<size_t>(size) * size, pad_value);
  const int x0 = (size - w) / 2, y0 = (size - h) / 2;
  for (int y = 0; y < h; ++y) {
    std::copy_n(inner.data() + static_cast<size_t>(y) * w, w,
                out.data() + static_cast<size_t>(y + y0) * size + x0);
  }
  if (content) {
    content[0] = x0;
    content[1] = y0;
    content[2] = w;
    content[3] = h;
  }
  return out;
}

}  // namespace wristssl::io
